"""The execution comparison table, as plain data: columns by group, filters, sorting,
list-metric aggregation, "only columns that differ". No Flask, no store: the view feeds
it `browse.comparison_data` rows."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..domain.metrics import AGGREGATIONS, aggregate

GROUPS = {"metadata": "Metadata", "inputs": "Inputs", "outputs": "Outputs",
          "metrics": "Metrics", "list_metrics": "List metrics", "resources": "Resource usage"}
DEFAULT_GROUPS = ("metadata", "inputs", "metrics", "list_metrics", "resources")
_METADATA = (("pipeline_name", "Pipeline", False), ("deployment_name", "Deployment", False),
             ("status", "Status", False), ("created_at", "Created (UTC)", False),
             ("duration_s", "Duration (s)", True))
_RESOURCES = (("cpu_time_s", "CPU time (s)"), ("peak_rss_mb", "Peak memory (MiB)"))


@dataclass(frozen=True)
class Column:
    key: str
    group: str
    label: str
    numeric: bool
    aggregation: str | None = None  # list metrics only


def _scalar(item: dict | None):
    """An I/O cell: the value itself, JSON text for lists/objects, 'file' for files."""
    if item is None:
        return None
    if item.get("data_type") == "file":
        return item.get("value") or "file"
    value = item.get("value")
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def _numeric(values) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 for v in present)


def build(executions: list[dict], groups: list[str], default_aggregation: str = "last",
          aggregations: dict[str, str] | None = None) -> tuple[list[Column], list[dict]]:
    """Columns for the chosen groups and one row per execution ({execution_id, cells})."""
    aggregations = aggregations or {}
    if default_aggregation not in AGGREGATIONS:
        default_aggregation = "last"
    columns: list[Column] = []
    rows = [{"execution_id": e["execution_id"], "status": e["status"],
             "pipeline_name": e["pipeline_name"], "deployment_name": e["deployment_name"],
             "has_lists": bool(e["list_metrics"]), "cells": {}} for e in executions]

    def add(key: str, group: str, label: str, values: list, numeric: bool | None = None,
            aggregation: str | None = None) -> None:
        columns.append(Column(key, group, label, _numeric(values) if numeric is None else numeric,
                              aggregation))
        for row, value in zip(rows, values):
            row["cells"][key] = value

    if "metadata" in groups:
        for name, label, numeric in _METADATA:
            add(f"meta:{name}", "metadata", label, [e.get(name) for e in executions], numeric)
    for group, field, prefix in (("inputs", "inputs", "in"), ("outputs", "outputs", "out")):
        if group in groups:
            for name in sorted({n for e in executions for n in e[field]}):
                add(f"{prefix}:{name}", group, name,
                    [_scalar(e[field].get(name)) for e in executions])
    if "metrics" in groups:
        for name in sorted({n for e in executions for n in e["metrics"]}):
            add(f"m:{name}", "metrics", name, [e["metrics"].get(name) for e in executions], True)
    if "list_metrics" in groups:
        for name in sorted({n for e in executions for n in e["list_metrics"]}):
            mode = aggregations.get(name, default_aggregation)
            mode = mode if mode in AGGREGATIONS else default_aggregation
            values = [aggregate(e["list_metrics"][name], mode) if name in e["list_metrics"]
                      else None for e in executions]
            add(f"lm:{name}", "list_metrics", name, values, True, mode)
    if "resources" in groups:
        add("res:cpu_time_s", "resources", _RESOURCES[0][1],
            [e.get("cpu_time_s") for e in executions], True)
        add("res:peak_rss_mb", "resources", _RESOURCES[1][1],
            [round(e["peak_rss_bytes"] / 2**20, 1) if e.get("peak_rss_bytes") else None
             for e in executions], True)
    return columns, rows


def filter_rows(rows: list[dict], pipeline: str | None = None, deployment: str | None = None,
                status: str | None = None, text: str | None = None) -> list[dict]:
    text = (text or "").strip().lower()
    return [r for r in rows
            if (not pipeline or r["pipeline_name"] == pipeline)
            and (not deployment or r["deployment_name"] == deployment)
            and (not status or r["status"] == status)
            and (not text or text in r["execution_id"].lower())]


def sort_rows(rows: list[dict], columns: list[Column], key: str | None,
              descending: bool) -> list[dict]:
    """Empty cells always go last; numbers compare as numbers, the rest as text."""
    column = next((c for c in columns if c.key == key), None)
    if column is None:
        return rows
    present = [r for r in rows if r["cells"].get(key) is not None]
    missing = [r for r in rows if r["cells"].get(key) is None]
    if column.numeric:
        present.sort(key=lambda r: float(r["cells"][key]), reverse=descending)
    else:
        present.sort(key=lambda r: str(r["cells"][key]), reverse=descending)
    return present + missing


def differing(columns: list[Column], rows: list[dict]) -> list[Column]:
    """Columns whose shown values are not all the same."""
    kept = []
    for column in columns:
        values = {json.dumps(r["cells"].get(column.key), sort_keys=True, default=str) for r in rows}
        if len(values) > 1:
            kept.append(column)
    return kept


def next_aggregation(mode: str | None) -> str:
    order = list(AGGREGATIONS)
    return order[(order.index(mode) + 1) % len(order)] if mode in order else order[0]
