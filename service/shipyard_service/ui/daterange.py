"""The date range of monitoring pages: presets or `datetime-local` fields, in UTC."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..errors import BadRequest

PRESETS = {"1h": dt.timedelta(hours=1), "6h": dt.timedelta(hours=6),
           "24h": dt.timedelta(days=1), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}
_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True)
class DateRange:
    start: dt.datetime  # naive UTC
    end: dt.datetime
    preset: str | None

    @property
    def start_ms(self) -> int:
        return int(self.start.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)

    @property
    def start_field(self) -> str:
        return self.start.strftime(_FORMAT)

    @property
    def end_field(self) -> str:
        return self.end.strftime(_FORMAT)


def _parse(raw: str, name: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(raw.strip()[:16], _FORMAT)
    except ValueError as exc:
        raise BadRequest(f"'{name}' must be a date and time (YYYY-MM-DDTHH:MM, UTC)",
                         {"field": name}) from exc


def from_args(args, default: str) -> DateRange:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
    now += dt.timedelta(minutes=1)  # include the current minute's readings
    preset = args.get("range") or None
    if preset in PRESETS:
        return DateRange(now - PRESETS[preset], now, preset)
    if args.get("start") or args.get("end"):
        start = _parse(args["start"], "start") if args.get("start") else now - PRESETS[default]
        end = _parse(args["end"], "end") if args.get("end") else now
        if start > end:
            raise BadRequest("The start of the range is after its end", {"field": "start"})
        return DateRange(start, end, None)
    return DateRange(now - PRESETS[default], now, default)
