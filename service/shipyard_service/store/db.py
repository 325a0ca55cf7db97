"""Binding the models to a database chosen by URL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import peewee
from playhouse.db_url import connect

database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 10000,
    "foreign_keys": 1,
    "cache_size": -16000,
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def init_db(url: str) -> peewee.Database:
    """Connect, create missing tables, and bind the proxy."""
    from . import migrations, models

    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        db = peewee.SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    else:
        db = connect(url)
    database.initialize(db)
    with db.connection_context():
        db.create_tables(models.ALL_MODELS, safe=True)
        migrations.apply(db)
    return db


def close_db() -> None:
    if database.obj is not None and not database.is_closed():
        database.close()


class db_session:
    """Use the thread's connection; close it afterwards only if this opened it."""

    def __enter__(self):
        self._opened = database.connect(reuse_if_open=True)
        return database

    def __exit__(self, *exc):
        if self._opened:
            database.close()
