"""Low-latency calls whose execution row is written once, when the call ends.

A plain HTTP caller of a low-latency endpoint waits for the result in the same request: its
execution is inserted already finished, with its outputs and log lines, in one transaction
after the runner answers and before the HTTP answer leaves (one write and one commit per
call instead of two). Until then the row lives here, in memory.

Whoever needs the row before the end gets it written first, as Running (`materialize`):
a call still running after VISIBLE_AFTER_S (so lists and the UI show it, and a caller
whose hold ends before the answer can poll it), a runner callback during the call (log
lines of a long call, a file output, the step's SDK exchanging the execution token), a
runner that dies, a refused dispatch. After a `kill -9` of the server during a shorter
call nothing of it is in the store (and no execution is left Running); once the caller has
its answer, the row is committed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..store import database, prepared
from ..store.groupcommit import GroupCommit
from ..store.models import Execution, ExecutionLog

# Calls last milliseconds; one still running after this is written as Running at once.
# (So a row is inserted at most this long after its created_at, well within the sort
# indexer's store/sortindex.LAG.)
VISIBLE_AFTER_S = 0.2


@dataclass
class DeferredRow:
    """An execution not inserted yet, and the log lines to write with it."""

    execution: Execution
    notes: list[dict]
    written: bool = False
    # Held while the row is written: a materialization and the final write never race.
    lock: threading.Lock = field(default_factory=threading.Lock)


class DeferredRows:
    """The app's executions in flight without a row, by execution id and token hash."""

    def __init__(self) -> None:
        self._by_id: dict[str, DeferredRow] = {}
        self._by_token: dict[str, str] = {}
        self._lock = threading.Lock()
        self._commits = GroupCommit()

    def add(self, execution: Execution, notes: list[dict]) -> DeferredRow:
        row = DeferredRow(execution, notes)
        with self._lock:
            self._by_id[execution.execution_id] = row
            if execution.token_hash:
                self._by_token[execution.token_hash] = execution.execution_id
        return row

    def holds(self, execution_id: str) -> bool:
        with self._lock:
            return execution_id in self._by_id

    def _forget(self, row: DeferredRow) -> None:
        with self._lock:
            self._by_id.pop(row.execution.execution_id, None)
            self._by_token.pop(row.execution.token_hash, None)

    def materialize(self, execution_id: str) -> None:
        """The execution's row in the store as it stands (Running), if it is still only
        here; a no-op for any other id."""
        with self._lock:
            row = self._by_id.get(execution_id)
        if row is not None:
            self.write(row)

    def materialize_token(self, token_hash: str) -> None:
        with self._lock:
            execution_id = self._by_token.get(token_hash)
        if execution_id is not None:
            self.materialize(execution_id)

    def write(self, row: DeferredRow) -> bool:
        """Insert the row with its notes, unless written already; True if this call did."""
        with row.lock:
            if row.written:
                return False
            try:
                with database.atomic():
                    prepared.insert(row.execution)
                    prepared.insert_many(ExecutionLog, row.notes)
            finally:
                row.written = True  # or lost (the store refused it): not tried again
                self._forget(row)
        return True

    def write_final(self, row: DeferredRow, changes: dict, lines: list[dict]) -> bool:
        """The ended execution, its notes and log lines in one transaction, unless the row
        was written before (then False: the caller records the end as a transition)."""
        with row.lock:
            if row.written:
                return False
            execution = row.execution
            for name, value in changes.items():
                setattr(execution, name, value)

            def insert() -> None:
                prepared.insert(execution)
                prepared.insert_many(ExecutionLog, row.notes + lines)

            try:
                # Concurrent calls' rows share a commit (store/groupcommit.py).
                self._commits.run(insert)
            finally:
                row.written = True
                self._forget(row)
        return True
