"""The sort indexer: a thread owned by the serving process that writes the comparison
view's input and output sort keys for executions that ended (store/sortindex.py), every
`settings.sort_index_interval_s`, in batches, resuming from its stored mark."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("shipyard.sortindex")


class SortIndexer:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            from .appstate import owned_thread

            # started within the app's binding: indexes that app's store
            self._thread = owned_thread(self._run, "sort-indexer")
            self._thread.start()

    def index_once(self) -> int:
        """One pass over every environment, until each is caught up (or the indexer is
        stopped); returns how many executions it passed or took off the pending list.
        Each batch is its own short transaction: writers wait for one batch at most."""
        from .domain.lifecycle import FINAL
        from .store import db_session, sortindex
        from .store.db import utcnow
        from .store.models import Environment

        passed = 0
        with db_session():
            environments = {e for (e,) in Environment.select(Environment.id).tuples()}
            sortindex.forget(environments)
            for environment_id in sorted(environments):
                passed += sortindex.index_pending(environment_id, FINAL)
                while not self._stop.is_set():
                    count = sortindex.index_batch(environment_id, FINAL,
                                                  utcnow() - sortindex.LAG)
                    passed += count
                    if count < sortindex.BATCH:
                        break
        return passed

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.index_once()
            except Exception:  # a failed pass is retried at the next one
                log.exception("sort index pass failed")

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
