"""Chart data for the pages' uPlot charts (rendered by static/charts.js): plain dicts,
embedded as JSON in the page."""

from __future__ import annotations

import datetime as dt


def list_metric_chart(name: str, lists: dict[str, list[float]]) -> dict:
    """One chart per list metric: x = position in the list, one series per execution."""
    length = max((len(v) for v in lists.values()), default=0)
    return {
        "title": name, "x_label": "step", "time": False,
        "x": list(range(1, length + 1)),
        "series": [{"label": label, "values": values + [None] * (length - len(values))}
                   for label, values in lists.items()],
    }


def time_chart(title: str, series: dict[str, list[tuple[int, float]]], unit: str = "",
               y_max: float | None = None) -> dict:
    """x = seconds since the epoch (union of every series' ticks), one series per label."""
    ticks = sorted({t for points in series.values() for t, _ in points})
    index = {t: i for i, t in enumerate(ticks)}
    out = []
    for label, points in series.items():
        values: list[float | None] = [None] * len(ticks)
        for t, v in points:
            values[index[t]] = v
        out.append({"label": label, "values": values})
    return {"title": title, "time": True, "unit": unit, "y_max": y_max,
            "x": [t / 1000 for t in ticks], "series": out}


def to_ms(value: dt.datetime) -> int:
    return int(value.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
