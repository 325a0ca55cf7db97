"""In-process wake-ups for long-polls: a waiter sleeps until its object changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Events:
    """Long-poll helper. Waiters re-check the store on every wake-up and at least every
    `recheck_s`, so a change made by another process is seen too, only later."""

    def __init__(self, recheck_s: float = 0.5):
        self._cond = threading.Condition()
        self._version: dict[str, int] = {}
        self._recheck_s = recheck_s

    def notify(self, key: str) -> None:
        with self._cond:
            self._version[key] = self._version.get(key, 0) + 1
            self._cond.notify_all()

    def wait_until(self, key: str, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._cond:
                seen = self._version.get(key, 0)
            if done():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._cond:
                if self._version.get(key, 0) == seen:
                    self._cond.wait(min(remaining, self._recheck_s))
