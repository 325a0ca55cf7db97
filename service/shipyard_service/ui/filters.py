"""Jinja filters: dates, durations, sizes, JSON values."""

from __future__ import annotations

import datetime as dt
import json
import re

from flask import Flask

from ..domain.names import ENV_VAR_NAME, RESOURCE_NAME


def when(value) -> str:
    """ISO strings (…Z) or datetimes, shown as `YYYY-MM-DD HH:MM:SS` UTC."""
    if not value:
        return "—"
    if isinstance(value, str):
        return value.replace("T", " ")[:19]
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {rest:02d}s" if hours else f"{minutes}m {rest:02d}s"


def size(value) -> str:
    if value is None:
        return "—"
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def jsonvalue(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def pct(value) -> str:
    return "—" if value is None else f"{float(value):.1f} %"


def html_pattern(regex: re.Pattern) -> str:
    """A domain name rule as an HTML `pattern`: browsers anchor it themselves and compile it
    with the `v` flag, where a `-` inside a class must be escaped."""
    return regex.pattern.removeprefix("^").removesuffix("$").replace("-]", "\\-]")


def register_filters(app: Flask) -> None:
    app.jinja_env.globals.update(name_pattern=html_pattern(RESOURCE_NAME),
                                 env_var_pattern=html_pattern(ENV_VAR_NAME))
    app.jinja_env.filters.update(when=when, duration=duration, size=size, jsonvalue=jsonvalue,
                                 number=number, pct=pct)
