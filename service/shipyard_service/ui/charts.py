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


def _gap_ticks(points: list[tuple[int, float]]) -> list[int]:
    """Midpoints of the holes in one series: a step over 3x its median step (at least
    the median of a regular sampler) means readings are missing there."""
    ticks = sorted(t for t, _ in points)
    steps = sorted(b - a for a, b in zip(ticks, ticks[1:]) if b > a)
    if len(steps) < 2:
        return []
    median = steps[len(steps) // 2]
    return [(a + b) // 2 for a, b in zip(ticks, ticks[1:]) if b - a > 3 * median]


def time_chart(title: str, series: dict[str, list[tuple[int, float]]], unit: str = "",
               y_max: float | None = None, x_range: tuple[int, int] | None = None) -> dict:
    """x = seconds since the epoch (union of every series' ticks), one series per label.
    A series' missing readings are `gaps` (x indexes where its line breaks); elsewhere an
    absent value only means another series was sampled then, and the line goes on.
    `x_range` (ms) is the chosen date range, shown whole even where nothing was read."""
    holes = {label: set(_gap_ticks(points)) for label, points in series.items()}
    ticks = sorted({t for points in series.values() for t, _ in points}
                   | {t for h in holes.values() for t in h})
    index = {t: i for i, t in enumerate(ticks)}
    out = []
    for label, points in series.items():
        values: list[float | None] = [None] * len(ticks)
        for t, v in points:
            values[index[t]] = v
        out.append({"label": label, "values": values,
                    "gaps": sorted(index[t] for t in holes[label])})
    chart = {"title": title, "time": True, "unit": unit, "y_max": y_max,
             "x": [t / 1000 for t in ticks], "series": out}
    if x_range is not None:
        chart["x_min"], chart["x_max"] = x_range[0] / 1000, x_range[1] / 1000
    return chart


def to_ms(value: dt.datetime) -> int:
    return int(value.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
