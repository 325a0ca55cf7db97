"""Resource metrics (contract §6.10): samples per worker, the cumulated series, retention.

Percentages for CPU, RAM, disk, GPU and VRAM; bytes per sampling period for the network.
The sampler (monitoring/) writes samples; this module only reads, aggregates and prunes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import defaultdict

from ..errors import BadRequest
from ..store.models import ResourceSample

CUMULATED = "All cumulate"  # the documentation's name for the all-workers series
METRICS = ("cpu_usage", "disk_usage", "ram_usage", "network_input_usage",
           "network_output_usage")
GPU_METRICS = ("gpu_usage", "vram_usage")
MAX_POINTS = 2_000  # per series: a longer range is averaged into buckets
_NUMERIC = ("cpu_percent", "cpu_count", "ram_used", "ram_total", "disk_used", "disk_total",
            "net_in_bytes", "net_out_bytes", "gpu_percent", "vram_used", "vram_total")


def record_sample(sample: dict) -> None:
    """Store one reading; a second reading of the same worker and tick is ignored."""
    ResourceSample.insert(**sample).on_conflict_ignore().execute()


def prune(now_ms: int, max_age_s: float, max_rows: int) -> int:
    """Retention: drop samples older than max_age_s, then the oldest beyond max_rows."""
    removed = ResourceSample.delete().where(
        ResourceSample.timestamp_ms < now_ms - int(max_age_s * 1000)
    ).execute()
    count = ResourceSample.select().count()
    if count > max_rows:
        cutoff = (ResourceSample.select(ResourceSample.timestamp_ms)
                  .order_by(ResourceSample.timestamp_ms.desc())
                  .offset(max_rows).limit(1).scalar())
        if cutoff is not None:
            removed += ResourceSample.delete().where(
                ResourceSample.timestamp_ms <= cutoff).execute()
    return removed


def workers() -> list[str]:
    query = ResourceSample.select(ResourceSample.worker).distinct()
    return sorted(row.worker for row in query)


def parse_range(start: object, end: object) -> tuple[int, int]:
    """`start`/`end` are integer milliseconds since the epoch (query strings)."""
    values = []
    for name, raw in (("start", start), ("end", end)):
        if raw in (None, ""):
            raise BadRequest(f"'{name}' is required (milliseconds since the epoch)",
                             {"field": name})
        try:
            value = int(str(raw))
        except ValueError as exc:
            raise BadRequest(f"'{name}' must be an integer number of milliseconds",
                             {"field": name, "value": str(raw)[:50]}) from exc
        if not 0 <= value <= 253402300799999:  # year 9999
            raise BadRequest(f"'{name}' is out of range", {"field": name})
        values.append(value)
    if values[0] > values[1]:
        raise BadRequest("'start' must not be after 'end'", {"start": values[0], "end": values[1]})
    return values[0], values[1]


def _rows(start_ms: int, end_ms: int, worker: str | None) -> list[ResourceSample]:
    query = ResourceSample.select().where(ResourceSample.timestamp_ms.between(start_ms, end_ms))
    if worker and worker != CUMULATED:
        query = query.where(ResourceSample.worker == worker)
    return list(query.order_by(ResourceSample.timestamp_ms, ResourceSample.worker))


def _bucketed(rows: list[ResourceSample], max_points: int) -> dict[tuple[int, str], dict]:
    """{(tick, worker): averaged fields}; ticks widen only when there are too many."""
    ticks = sorted({r.timestamp_ms for r in rows})
    width = 1
    if len(ticks) > max_points:
        width = math.ceil((ticks[-1] - ticks[0] + 1) / max_points)
    groups: dict[tuple[int, str], list[ResourceSample]] = defaultdict(list)
    for row in rows:
        tick = row.timestamp_ms - (row.timestamp_ms - ticks[0]) % width
        groups[(tick, row.worker)].append(row)
    out = {}
    for key, members in groups.items():
        averaged = {}
        for name in _NUMERIC:
            present = [getattr(m, name) for m in members if getattr(m, name) is not None]
            averaged[name] = sum(present) / len(present) if present else None
        out[key] = averaged
    return out


def _percent(used: float | None, total: float | None) -> float | None:
    if used is None or not total:
        return None
    return 100.0 * used / total


def _values(sample: dict) -> dict[str, float | None]:
    return {
        "cpu_usage": sample["cpu_percent"],
        "ram_usage": _percent(sample["ram_used"], sample["ram_total"]),
        "disk_usage": _percent(sample["disk_used"], sample["disk_total"]),
        "network_input_usage": sample["net_in_bytes"],
        "network_output_usage": sample["net_out_bytes"],
        "gpu_usage": sample["gpu_percent"],
        "vram_usage": _percent(sample["vram_used"], sample["vram_total"]),
    }


def _cumulated(samples: list[dict]) -> dict[str, float | None]:
    def total(name: str) -> float | None:
        present = [s[name] for s in samples if s[name] is not None]
        return sum(present) if present else None

    cores = sum(s["cpu_count"] or 1 for s in samples)
    gpus = [s["gpu_percent"] for s in samples if s["gpu_percent"] is not None]
    return {
        "cpu_usage": sum(s["cpu_percent"] * (s["cpu_count"] or 1) for s in samples) / cores,
        "ram_usage": _percent(total("ram_used"), total("ram_total")),
        "disk_usage": _percent(total("disk_used"), total("disk_total")),
        "network_input_usage": total("net_in_bytes"),
        "network_output_usage": total("net_out_bytes"),
        "gpu_usage": sum(gpus) / len(gpus) if gpus else None,
        "vram_usage": _percent(total("vram_used"), total("vram_total")),
    }


def query(start_ms: int, end_ms: int, worker: str | None = None,
          max_points: int = MAX_POINTS) -> dict:
    """The documented dict: per-worker series plus "All cumulate", and the totals."""
    rows = _rows(start_ms, end_ms, worker)
    has_gpu = any(r.gpu_percent is not None or r.vram_total for r in rows)
    names = METRICS + (GPU_METRICS if has_gpu else ())
    series: dict[str, dict[str, list]] = {name: defaultdict(list) for name in names}
    by_tick: dict[int, list[dict]] = defaultdict(list)
    latest: dict[str, dict] = {}
    for (tick, name_of_worker), sample in sorted(_bucketed(rows, max_points).items()):
        by_tick[tick].append(sample)
        latest[name_of_worker] = sample
        for metric, value in _values(sample).items():
            if metric in series and value is not None:
                series[metric][name_of_worker].append([tick, round(value, 4)])
    if worker in (None, "", CUMULATED):
        for tick, samples in sorted(by_tick.items()):
            for metric, value in _cumulated(samples).items():
                if metric in series and value is not None:
                    series[metric][CUMULATED].append([tick, round(value, 4)])
    totals = {
        "total_disk": int(sum(s["disk_total"] or 0 for s in latest.values())),
        "total_ram": int(sum(s["ram_total"] or 0 for s in latest.values())),
    }
    if has_gpu:
        totals["total_vram"] = int(sum(s["vram_total"] or 0 for s in latest.values()))
    if worker == CUMULATED:
        series = {m: {CUMULATED: per[CUMULATED]} for m, per in series.items() if CUMULATED in per}
        series.update({m: {} for m in names if m not in series})
    return {
        "additional_data": totals,
        "metrics": {
            metric: [{"metric": {"worker": w}, "values": values} for w, values in per.items()]
            for metric, per in series.items()
        },
    }


def to_csv(result: dict) -> str:
    """timestamp (ISO 8601 UTC), timestamp_ms, worker, metric, value: one line per point."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "timestamp_ms", "worker", "metric", "value"])
    for metric, entries in result["metrics"].items():
        for entry in entries:
            for tick, value in entry["values"]:
                when = dt.datetime.fromtimestamp(tick / 1000, dt.timezone.utc)
                writer.writerow([when.strftime("%Y-%m-%dT%H:%M:%S.")
                                 + f"{when.microsecond // 1000:03d}Z", tick,
                                 entry["metric"]["worker"], metric, value])
    return out.getvalue()


# Thresholds of the over-use cards of the monitoring page, in percent.
OVERUSE_THRESHOLDS = {"cpu_usage": 85.0, "ram_usage": 85.0, "disk_usage": 90.0,
                      "gpu_usage": 90.0, "vram_usage": 90.0}


def overuse_cards(result: dict) -> list[dict]:
    """Per percentage metric: latest and peak of the cumulated series, and whether any
    worker went over the threshold in the range."""
    cards = []
    for metric, threshold in OVERUSE_THRESHOLDS.items():
        entries = result["metrics"].get(metric)
        if entries is None:
            continue
        cumulated = next((e["values"] for e in entries if e["metric"]["worker"] == CUMULATED), [])
        over = sorted({e["metric"]["worker"] for e in entries
                       if e["metric"]["worker"] != CUMULATED
                       and any(v > threshold for _, v in e["values"])})
        cards.append({
            "metric": metric, "threshold": threshold,
            "latest": cumulated[-1][1] if cumulated else None,
            "peak": max((v for _, v in cumulated), default=None),
            "over_workers": over, "overused": bool(over),
        })
    return cards
