"""The one lifecycle of executions and of their step executions.

Every change of status goes through `transition`: a compare-and-set UPDATE (the row moves
only from a status the target may follow), then the wake-ups of whoever waits on it. The
elastic runner's /finish, the resident runner's answer, the Argo status sync and the
restart recovery all end here, so a result is recorded one way whatever carried it.

    Execution:       Pending -> Running -> Succeeded | Failed
                     Pending -> Succeeded | Failed   (a runner may answer before its
                                                      start is recorded)
    Step execution:  the same, plus Pending -> Skipped (an upstream step failed),
                     Pending -> Reused (a re-run takes the origin execution's result) and
                     Pending -> Cached (the step cache holds a result for the same code,
                     environment and inputs); neither runs the step.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from ..errors import ShipyardError
from ..store import database, prepared


class ExecutionStatus(str, Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class StepExecutionStatus(str, Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    REUSED = "Reused"
    CACHED = "Cached"


_E, _S = ExecutionStatus, StepExecutionStatus
ALLOWED: dict[type[Enum], dict[Enum, frozenset]] = {
    ExecutionStatus: {
        _E.PENDING: frozenset({_E.RUNNING, _E.SUCCEEDED, _E.FAILED}),
        _E.RUNNING: frozenset({_E.SUCCEEDED, _E.FAILED}),
    },
    StepExecutionStatus: {
        _S.PENDING: frozenset({_S.RUNNING, _S.SUCCEEDED, _S.FAILED, _S.SKIPPED, _S.REUSED,
                                _S.CACHED}),
        _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED}),
    },
}

# Plain strings (as stored and read back): an Enum member hashes by its name, so a set of
# members would not find the stored "Running".
ACTIVE: tuple[str, ...] = (_E.PENDING.value, _E.RUNNING.value)
FINAL: tuple[str, ...] = (_E.SUCCEEDED.value, _E.FAILED.value)
# A step whose outputs are there for its downstream steps: it ran, or its result was taken.
STEP_DONE: tuple[str, ...] = (_S.SUCCEEDED.value, _S.REUSED.value, _S.CACHED.value)
STEP_FINAL: tuple[str, ...] = (*STEP_DONE, _S.FAILED.value, _S.SKIPPED.value)


class IllegalTransition(ShipyardError):
    """A code path asked for a move the lifecycle does not have (a bug, not user input)."""

    name = "IllegalTransition"


def sources(target: Enum) -> tuple[str, ...]:
    """The statuses a row may leave for `target` (empty: nothing leads there)."""
    table = ALLOWED[type(target)]
    return tuple(sorted(s.value for s, targets in table.items() if target in targets))


def allowed(current: str, target: Enum) -> bool:
    return current in sources(target)


# Keyed by (enum, member): members of the two enums with one value compare equal.
_SOURCES = {(kind, t): sources(t) for kind in ALLOWED for t in kind}


def transition(svc, model: type, key: dict[str, Any], target: Enum, execution_id: str,
               changes: dict[str, Any] | None = None,
               with_move: Callable[[], Any] | None = None) -> bool:
    """Move the row of `model` found by `key` to `target` with `changes`, if its current
    status allows it; then wake the waiters of `execution_id`. True if the row moved.

    `with_move`: more writes that belong to the move (the log lines a resident runner's
    answer carries), made in the same transaction, only if the row moved."""
    guard = _SOURCES[type(target), target]
    if not guard:
        raise IllegalTransition(f"No status leads to {target.value}", {"target": target.value})
    values = {"status": target.value, **(changes or {})}
    if with_move is None:
        moved = prepared.update(model, values, key, guard=(model.status, guard)) > 0
    else:
        with database.atomic():
            moved = prepared.update(model, values, key, guard=(model.status, guard)) > 0
            if moved:
                with_move()
    # After the commit: a woken waiter reads the store.
    svc.events.notify(execution_id)
    return moved
