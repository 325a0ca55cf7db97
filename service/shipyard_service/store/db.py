"""Binding the models to a database chosen by URL.

The models' `database` resolves, on each use, to the database bound in the current context
(an app binds its own for its requests and for the threads it owns, see appstate.py), else
to the process default (`init_db`: the admin commands, the serving process's one app). So two
apps live side by side in one process, each with its own store, while every module keeps
importing the one `database` name."""

from __future__ import annotations

import contextvars
import datetime as dt
import os
import threading
from pathlib import Path

import peewee
from playhouse.db_url import connect

from ..binding import Binding

_bound: contextvars.ContextVar[peewee.Database | None] = contextvars.ContextVar(
    "shipyard_database", default=None)


class BoundDatabase(peewee.DatabaseProxy):
    """A peewee proxy whose target is the context's database, else the process default."""

    __slots__ = ("_default",)
    # peewee's Proxy only lets its own slots be set; `obj` is a property here.
    __setattr__ = object.__setattr__

    @property
    def obj(self) -> peewee.Database | None:
        db = _bound.get()
        return db if db is not None else self._default

    @obj.setter
    def obj(self, value: peewee.Database | None) -> None:
        self._default = value  # Proxy.initialize(): the process default


database = BoundDatabase()


def bind_database(db: peewee.Database) -> Binding[peewee.Database]:
    """Within the block (this thread, this context), the models use `db`."""
    return Binding(_bound, db)

# Integers SQLite and PostgreSQL can hold (64-bit signed).
MAX_INT = 2**63 - 1

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 10000,
    "foreign_keys": 1,
    "cache_size": -16000,
    # Checkpoints (copying the WAL into the database, with an fsync) run in the server's
    # checkpointer thread, not inside whichever request commits the 1000th page: in the
    # request they tripled the cost of a commit. Short-lived processes (admin commands)
    # checkpoint when their last connection closes.
    "wal_autocheckpoint": 0,
}
CHECKPOINT_INTERVAL_S = 1.0


class LockedSqliteDatabase(peewee.SqliteDatabase):
    """SQLite with one writer at a time inside this process.

    SQLite allows a single writer; concurrent writers on other connections get SQLITE_BUSY
    and sleep in the busy handler with growing back-offs (1, 2, 5, 10... ms), which caps
    throughput under concurrent requests. Queueing writers on a lock here instead keeps
    them back to back. Readers (WAL) never wait. Other processes still meet busy_timeout.

    A transaction takes SQLite's write lock when it begins (BEGIN IMMEDIATE), not at its
    first write: one that reads then writes (a status check, then the row it allows) would
    otherwise fail with "database is locked" at that write whenever another process (a
    second server, an admin command) wrote in between, as SQLite cannot move its snapshot."""

    _READS = ("SELECT", "PRAGMA", "WITH", "EXPLAIN")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("lock_type", "IMMEDIATE")
        super().__init__(*args, **kwargs)
        self._write_lock = threading.RLock()
        # As long as SQLite's own busy_timeout would let a writer of another process wait:
        # then the same error. Without a limit, one stuck writer held every other (and a
        # server's stop) for good.
        self._lock_timeout_s = dict(self._pragmas).get("busy_timeout", 10_000) / 1000

    def _acquire_write(self) -> None:
        if not self._write_lock.acquire(timeout=self._lock_timeout_s):
            raise peewee.OperationalError(
                f"database is locked (another writer of this process held it for "
                f"{self._lock_timeout_s:g} s)")

    def execute_sql(self, sql, params=None):
        if self.transaction_depth() > 0 or sql.lstrip()[:7].upper().startswith(self._READS):
            return super().execute_sql(sql, params)
        self._acquire_write()
        try:
            return super().execute_sql(sql, params)
        finally:
            self._write_lock.release()

    def begin(self, lock_type=None):
        self._acquire_write()
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
    """Open the store and make it the process default (one store per process: the admin
    commands, the tools). An app opens its own with `open_db` instead."""
    db = open_db(url)
    database.initialize(db)
    return db


def open_db(url: str) -> peewee.Database:
    """Connect, create missing tables and run the migrations; the process default is left
    as it was."""
    from . import migrations, models

    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        _owner_only(path)
        db = LockedSqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    else:
        # Pooled: requests and background threads return their connection instead of
        # closing it, so the next one skips the connection handshake.
        scheme, sep, rest = url.partition("://")
        if scheme in ("postgres", "postgresql"):
            # Below PostgreSQL's default max_connections (100); past it, wait for one.
            db = connect(f"{scheme}+pool{sep}{rest}", max_connections=80, stale_timeout=300,
                         timeout=30)
        else:
            db = connect(url)
    with bind_database(db), db.connection_context():
        db.create_tables(models.ALL_MODELS, safe=True)
        migrations.apply(db)
    return db


def _owner_only(path: Path) -> None:
    """The database file readable by the server's user only (0600), created so if new;
    SQLite gives its -wal and -shm files the database file's mode. A file from an older
    version (0644) is tightened too."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            os.chmod(file, 0o600)


class Checkpointer:
    """Background WAL checkpoints for a SQLite store (a no-op for other databases): the
    store bound when it is made (the app's), which its thread binds."""

    def __init__(self, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.db = database.obj
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if isinstance(self.db, peewee.SqliteDatabase) and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        import logging

        while not self._stop.wait(self.interval_s):
            try:
                with bind_database(self.db), db_session():
                    # PASSIVE: never waits for readers or writers; what is left goes next time.
                    database.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except peewee.DatabaseError as exc:
                logging.getLogger("shipyard").warning("WAL checkpoint failed: %s", exc)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None


def close_db() -> None:
    if database.obj is not None and not database.is_closed():
        database.close()


def release_connection() -> None:
    """End of a unit of work: a pooled connection goes back to its pool; a SQLite one
    stays open with its thread (opening one costs a file open and five pragmas)."""
    if not isinstance(database.obj, peewee.SqliteDatabase):
        close_db()


class db_session:
    """Use the thread's connection; release it afterwards only if this opened it."""

    def __enter__(self):
        self._opened = database.connect(reuse_if_open=True)
        return database

    def __exit__(self, *exc):
        if self._opened:
            release_connection()
