"""Group commit: the writes of concurrent requests committed in one transaction.

A commit costs more than a small insert (SQLite writes every page the transaction touched
to its WAL, each index's included; PostgreSQL flushes its log). Requests that each insert
a row at the same moment share one: while one commits, the next ones queue their writes;
the first of them then commits the whole queue, and each caller returns once its own
write is committed. A lone caller commits at once in its own thread (no hand-off, no
thread to own), so one client pays nothing for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .db import database


class _Write:
    __slots__ = ("write", "ready", "done", "error")

    def __init__(self, write: Callable[[], object]) -> None:
        self.write = write
        self.ready = threading.Event()  # set once: done, or this caller leads next
        self.done = False
        self.error: Exception | None = None


class GroupCommit:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Write] = []
        self._leading = False

    def run(self, write: Callable[[], object]) -> None:
        """Call `write()` (statements through `database`) in a transaction shared with
        concurrent callers'; return once it is committed, or raise its error. Each write
        is in a savepoint of its own: one that fails leaves the others."""
        item = _Write(write)
        with self._lock:
            self._queue.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            item.ready.wait()
        if not item.done:  # this caller leads: commit what has queued up (its own first)
            with self._lock:
                batch, self._queue = self._queue, []
            try:
                self._commit(batch)
            finally:
                with self._lock:
                    if self._queue:
                        self._queue[0].ready.set()  # the next leader
                    else:
                        self._leading = False
        if item.error is not None:
            raise item.error

    @staticmethod
    def _commit(batch: list[_Write]) -> None:
        try:
            with database.atomic():
                if len(batch) == 1:
                    batch[0].write()
                else:
                    for item in batch:
                        try:
                            with database.atomic():  # a savepoint
                                item.write()
                        except Exception as exc:  # that caller's to raise
                            item.error = exc
        except Exception as exc:  # the transaction failed as a whole
            for item in batch:
                item.error = item.error or exc
        finally:
            for item in batch:
                item.done = True
                item.ready.set()
