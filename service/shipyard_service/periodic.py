"""A pass of background work repeated every interval on a thread owned by the serving
process (started within the app's binding, so it works on that app's store; stopped with
the app's background work). The retention sweeper and the sort indexer are two."""

from __future__ import annotations

import logging
import threading


class PeriodicWork:
    name = "periodic"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One pass; returns how much it did (logged when not 0)."""
        raise NotImplementedError

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        if self._thread is None:
            from .appstate import owned_thread

            self._thread = owned_thread(self._run, self.name)
            self._thread.start()

    def _run(self) -> None:
        log = logging.getLogger(f"shipyard.{self.name}")
        while not self._stop.wait(self.interval_s):
            try:
                done = self.run_once()
                if done:
                    log.info("%s: %d", self.name, done)
            except Exception:  # a failed pass is retried at the next one
                log.exception("%s: pass failed", self.name)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
