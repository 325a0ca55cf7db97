"""Executions dispatched to resident runners by this process, until their end is recorded.

A low-latency call is an insert, a call to the runner and an update: reading the row back
to record the result, then again to answer the waiting caller, would double the store's
work on the hottest path. The store stays the record (the row is written before dispatch
and updated at the end); this only hands the same object from the dispatching thread to
the one recording the result and to the caller waiting for it."""

from __future__ import annotations

import threading

from ..store.models import Execution


class _Run:
    __slots__ = ("execution", "ended")

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.ended = threading.Event()


_runs: dict[str, _Run] = {}
_lock = threading.Lock()


def add(execution: Execution) -> None:
    with _lock:
        _runs[execution.execution_id] = _Run(execution)


def get(execution_id: str) -> Execution | None:
    with _lock:
        run = _runs.get(execution_id)
    return run.execution if run is not None else None


def ended(execution_id: str, **changes) -> None:
    """The end is in the store: update the object the same way, wake its waiter."""
    with _lock:
        run = _runs.pop(execution_id, None)
    if run is not None:
        for name, value in changes.items():
            setattr(run.execution, name, value)
        run.ended.set()


def wait(execution_id: str, timeout_s: float) -> tuple[bool, Execution | None]:
    """(known, execution): known is False when this process holds no such run (never
    dispatched here, or already ended — then the store has its end)."""
    with _lock:
        run = _runs.get(execution_id)
    if run is None:
        return False, None
    run.ended.wait(timeout_s)
    return True, run.execution


def release_all() -> None:
    """The server stops: every waiter answers now with the execution as it stands."""
    with _lock:
        runs = list(_runs.values())
    for run in runs:
        run.ended.set()
