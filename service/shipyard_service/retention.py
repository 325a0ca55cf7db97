"""The retention sweeper: a thread owned by the serving process that applies environments'
retention policies (domain/retention.py) every `settings.retention_interval_s`."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("shipyard.retention")


class RetentionSweeper:
    def __init__(self, services, interval_s: float) -> None:
        self.services = services
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            from .appstate import owned_thread

            # started within the app's binding: sweeps that app's store
            self._thread = owned_thread(self._run, "retention-sweeper")
            self._thread.start()

    def sweep_once(self) -> int:
        from .domain import retention
        from .store import db_session

        with db_session():
            return retention.sweep(self.services, should_stop=self._stop.is_set)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                removed = self.sweep_once()
                if removed:
                    log.info("retention: removed %d executions", removed)
            except Exception:  # a failed pass is retried at the next one
                log.exception("retention sweep failed")

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
