"""Cron schedules of periodic deployments: 5 fields, UTC; and the catch-up policy."""

from __future__ import annotations

import datetime as dt

from cron_descriptor import ExpressionDescriptor, FormatException
from croniter import croniter

from ..errors import BadRequest

# Catch-up policy (the same number drives Argo's startingDeadlineSeconds): after downtime,
# only the most recent missed tick runs, and only if it is at most this old. Older missed
# ticks are skipped: a periodic job is about "now", not a backlog.
CATCH_UP_WINDOW_S = 3600


def check_schedule(expr: object) -> str:
    if not isinstance(expr, str) or not expr.strip():
        raise BadRequest("A periodic deployment needs a 'schedule' (5-field cron, UTC)",
                         {"field": "schedule"})
    expr = " ".join(expr.split())
    if len(expr.split(" ")) != 5:
        raise BadRequest(
            f"Invalid schedule {expr!r}: use 5 fields 'minute hour day-of-month month day-of-week'",
            {"field": "schedule", "value": expr})
    if not croniter.is_valid(expr):
        raise BadRequest(f"Invalid schedule {expr!r}", {"field": "schedule", "value": expr})
    try:
        describe(expr)
    except FormatException as exc:
        raise BadRequest(f"Invalid schedule {expr!r}: {exc}", {"field": "schedule"}) from exc
    return expr


def describe(expr: str) -> str:
    return str(ExpressionDescriptor(expr, use_24hour_time_format=True))


def latest_tick(expr: str, now: dt.datetime) -> dt.datetime:
    """The last tick at or before `now` (naive UTC)."""
    return croniter(expr, now + dt.timedelta(seconds=1)).get_prev(dt.datetime)


def missed_tick(expr: str, since: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The tick to catch up after downtime, by the policy above, or None."""
    tick = latest_tick(expr, now)
    if tick <= since:
        return None
    if (now - tick).total_seconds() > CATCH_UP_WINDOW_S:
        return None
    return tick


def next_runs(expr: str, now: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next `count` ticks after `now` (naive UTC)."""
    ticks = croniter(expr, now)
    return [ticks.get_next(dt.datetime) for _ in range(count)]
