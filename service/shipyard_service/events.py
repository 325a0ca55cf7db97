"""In-process wake-ups for long-polls: a waiter sleeps until its object changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class _Key:
    __slots__ = ("cond", "version", "waiters")

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)
        self.version = 0
        self.waiters = 0


class Events:
    """Long-poll helper. Waiters re-check the store on every wake-up and at least every
    `recheck_s`, so a change made by another process is seen too, only later.

    A notification wakes only the waiters of its key: with one shared condition, each
    finished execution would wake every waiting caller, and each of them would re-read the
    store — quadratic work under concurrent endpoint calls."""

    def __init__(self, recheck_s: float = 0.5):
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._recheck_s = recheck_s
        self._closed = False

    def close(self) -> None:
        """The server stops: every wait returns now, and later ones at once. Called from a
        signal handler, so it never blocks on the lock (waiters re-check within
        `recheck_s` anyway)."""
        self._closed = True
        if self._lock.acquire(timeout=0.05):
            try:
                for entry in self._keys.values():
                    entry.cond.notify_all()
            finally:
                self._lock.release()

    def notify(self, key: str) -> None:
        with self._lock:
            entry = self._keys.get(key)
            if entry is not None:  # nobody waits: nothing to remember
                entry.version += 1
                entry.cond.notify_all()

    def wait_until(self, key: str, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                entry = self._keys[key] = _Key(self._lock)
            entry.waiters += 1
        try:
            while True:
                with self._lock:
                    seen = entry.version
                # Registered before this check: a change after it bumps the version.
                if done():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                with self._lock:
                    if entry.version == seen:
                        entry.cond.wait(min(remaining, self._recheck_s))
        finally:
            with self._lock:
                entry.waiters -= 1
                if entry.waiters == 0:
                    del self._keys[key]
