"""Timing a server's stop, so that a slow one explains itself in the log.

A stop must end within the master's grace (server.GRACEFUL_TIMEOUT_S), or the worker is
SIGKILLed without a word. So each phase of the stop that takes over SLOW_PHASE_S is logged
by name, and if the process is still there STACKS_AFTER_S after the stop signal, every
thread's stack is written to the log (faulthandler's own watchdog thread: it also sees the
interpreter's exit, which waits for every thread-pool thread)."""

from __future__ import annotations

import faulthandler
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("shipyard")

SLOW_PHASE_S = 1.0
STACKS_AFTER_S = 5.0

_began: float | None = None


def stop_began() -> None:
    """At the stop signal (once; a second signal keeps the first's time)."""
    global _began
    if _began is not None:
        return
    _began = time.monotonic()
    try:
        faulthandler.dump_traceback_later(STACKS_AFTER_S, exit=False, file=sys.stderr)
    except (AttributeError, ValueError, io.UnsupportedOperation):
        pass  # no file descriptor behind stderr: no dump, the phases are still logged


def since_signal() -> float | None:
    """Seconds since the stop signal, None without one."""
    return None if _began is None else time.monotonic() - _began


def began() -> float | None:
    return _began


def time_left(deadline: float | None, default_s: float) -> float:
    """How long a stop may still wait: until `deadline` (time.monotonic()), or `default_s`
    without one."""
    if deadline is None:
        return default_s
    return max(0.0, min(default_s, deadline - time.monotonic()))


@contextmanager
def phase(name: str) -> Iterator[None]:
    """A named part of a stop, logged if it takes over SLOW_PHASE_S."""
    start = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - start
        if took > SLOW_PHASE_S:
            log.warning("stop phase '%s' took %.2f s", name, took)


def leave_by(deadline: float) -> None:
    """Make sure the process has left by `deadline` (time.monotonic()). The interpreter's
    exit, after the shutdown hook, joins every thread-pool thread and non-daemon thread with
    no time limit, past the master's SIGKILL; if it is still at it by then, the threads it
    waits for are named, every stack dumped, and the process leaves without them. (The
    watchdog is a daemon: it ends with the process, whose exit is its only job.)"""
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _leave_now)
    watchdog.name = "exit-watchdog"
    watchdog.daemon = True
    watchdog.start()


def _leave_now() -> None:
    stuck = [t.name for t in threading.enumerate()
             if t.is_alive() and not t.daemon and t is not threading.main_thread()]
    log.warning("stop: the process's exit still waits %.2f s after the stop signal, for: %s; "
                "leaving without them", since_signal() or 0.0, ", ".join(stuck) or "nothing")
    try:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        pass
    os._exit(0)
