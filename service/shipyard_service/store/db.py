"""Binding the models to a database chosen by URL."""

from __future__ import annotations

import datetime as dt
import threading
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


class LockedSqliteDatabase(peewee.SqliteDatabase):
    """SQLite with one writer at a time inside this process.

    SQLite allows a single writer; concurrent writers on other connections get SQLITE_BUSY
    and sleep in the busy handler with growing back-offs (1, 2, 5, 10... ms), which caps
    throughput under concurrent requests. Queueing writers on a lock here instead keeps
    them back to back. Readers (WAL) never wait. Other processes still meet busy_timeout."""

    _READS = ("SELECT", "PRAGMA", "WITH", "EXPLAIN")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._write_lock = threading.RLock()

    def execute_sql(self, sql, params=None):
        if self.transaction_depth() > 0 or sql.lstrip()[:7].upper().startswith(self._READS):
            return super().execute_sql(sql, params)
        with self._write_lock:
            return super().execute_sql(sql, params)

    def begin(self, lock_type=None):
        self._write_lock.acquire()
        try:
            super().begin(lock_type)
        except BaseException:
            self._write_lock.release()
            raise

    def commit(self):
        try:
            super().commit()
        finally:
            self._write_lock.release()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._write_lock.release()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def init_db(url: str) -> peewee.Database:
    """Connect, create missing tables, and bind the proxy."""
    from . import migrations, models

    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        db = LockedSqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, check_same_thread=False)
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
