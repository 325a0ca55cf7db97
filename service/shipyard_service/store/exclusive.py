"""Background passes that one server at a time makes on a shared store.

Several servers may share one store (PostgreSQL, or a SQLite file on one machine); each runs
the sort indexer and the retention sweeper. Two passes at once do the same work twice, and
two indexers move the same mark past each other's batches. A pass first takes its lock
without waiting; the server that does not get it skips that pass (the holder does the
work). The lock is the database's (a PostgreSQL session advisory lock) or the store file's
(`flock` beside the SQLite file), so a server that dies, even by `kill -9`, releases it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from collections.abc import Iterator

import peewee

from .db import database

# pg_advisory_lock keys are 64-bit: this namespace in the high half, the pass's name below.
_NAMESPACE = 0x5348_4950  # "SHIP"


def _pg_key(name: str) -> int:
    return (_NAMESPACE << 32) | zlib.crc32(name.encode())


@contextlib.contextmanager
def only_one(name: str) -> Iterator[bool]:
    """Within the block, whether this server holds pass `name` (False: another one does).
    Call inside a `db_session()`: on PostgreSQL the lock belongs to its connection."""
    db = database.obj
    if isinstance(db, peewee.PostgresqlDatabase):
        key = _pg_key(name)
        [(held,)] = db.execute_sql("SELECT pg_try_advisory_lock(%s)", (key,)).fetchall()
        try:
            yield bool(held)
        finally:
            if held:
                with contextlib.suppress(peewee.DatabaseError):  # a lost connection freed it
                    db.execute_sql("SELECT pg_advisory_unlock(%s)", (key,))
        return
    path = getattr(db, "database", "")
    if not isinstance(db, peewee.SqliteDatabase) or not path or path == ":memory:":
        yield True
        return
    fd = os.open(f"{path}-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the file releases its lock
