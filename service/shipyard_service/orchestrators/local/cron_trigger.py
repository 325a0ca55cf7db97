"""APScheduler cron triggers from standard 5-field cron expressions.

Two differences with cron are bridged here:
* APScheduler 3 counts numeric day-of-week from Monday=0 (upstream issue #286), unlike cron
  (Sunday=0 or 7): numeric day-of-week fields are translated to names before handing over.
* With both day-of-month and day-of-week restricted, cron fires when *either* matches;
  APScheduler's CronTrigger requires both. Such an expression becomes an OrTrigger of a
  day-of-month trigger and a day-of-week trigger. "Restricted" means "not `*`", as in
  croniter, which validates, describes and catches up schedules (`domain/schedules.py`):
  the fire times here are croniter's."""

from __future__ import annotations

import re

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _day(token: str) -> str:
    return _DAYS[int(token)] if token.isdigit() else token


def translate_day_of_week(field: str) -> str:
    """`0` -> `sun`, `1-5` -> `mon-fri`, `*/2` stays, `5,0` -> `fri,sun`, `7` -> `sun`."""
    parts = []
    for part in field.split(","):
        step = ""
        if "/" in part:
            part, step = part.split("/", 1)
            step = "/" + step
        if re.fullmatch(r"\d+-\d+", part):
            low, high = part.split("-")
            if int(high) == 7 and int(low) > 0:
                # `5-7` means Fri..Sun: split it since APScheduler ranges cannot wrap.
                parts.append(f"{_day(low)}-sat{step}")
                parts.append("sun")
                continue
            parts.append(f"{_day(low)}-{_day(high)}{step}")
        else:
            parts.append(f"{_day(part)}{step}")
    return ",".join(parts)


def cron_trigger(expr: str) -> BaseTrigger:
    minute, hour, day, month, day_of_week = expr.split()

    def trigger(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=translate_day_of_week(day_of_week), timezone="UTC")

    if day != "*" and day_of_week != "*":
        return OrTrigger([trigger(day, "*"), trigger("*", day_of_week)])
    return trigger(day, day_of_week)
