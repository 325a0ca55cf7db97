"""The execution comparison table, as plain data: candidate columns, the ones chosen (by
group or one by one), cells of one page, list-metric aggregation, "only columns that
differ". No Flask, no store: the store work (filters, sort, page) is in
`domain.comparison`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..domain.metrics import AGGREGATIONS

GROUPS = {"metadata": "Metadata", "inputs": "Inputs", "outputs": "Outputs",
          "metrics": "Metrics", "list_metrics": "List metrics", "resources": "Resource usage"}
DEFAULT_GROUPS = ("metadata", "inputs", "metrics", "list_metrics", "resources")
_METADATA_LABELS = (("pipeline_name", "Pipeline"), ("deployment_name", "Deployment"),
                    ("status", "Status"), ("created_at", "Created (UTC)"),
                    ("duration_s", "Duration (s)"))
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


def candidates(available: dict[str, list[str]]) -> list[Column]:
    """Every column that holds something for the current filter, in group order."""
    labels = dict(_METADATA_LABELS)
    columns = [Column(f"meta:{n}", "metadata", labels[n], n == "duration_s")
               for n in available["metadata"]]
    columns += [Column(f"in:{n}", "inputs", n, False) for n in available["inputs"]]
    columns += [Column(f"out:{n}", "outputs", n, False) for n in available["outputs"]]
    columns += [Column(f"m:{n}", "metrics", n, True) for n in available["metrics"]]
    columns += [Column(f"lm:{n}", "list_metrics", n, True) for n in available["list_metrics"]]
    columns += [Column(f"res:{n}", "resources", dict(_RESOURCES)[n], True)
                for n in available["resources"]]
    return columns


def chosen(columns: list[Column], groups: list[str], keys: list[str]) -> list[Column]:
    """Columns of the ticked groups plus the columns ticked one by one."""
    keys_set = set(keys)
    return [c for c in columns if c.group in groups or c.key in keys_set]


def build(executions: list[dict], values: dict[str, dict], columns: list[Column],
          default_aggregation: str = "last",
          aggregations: dict[str, str] | None = None) -> tuple[list[Column], list[dict]]:
    """One row per execution of the page ({execution_id, cells}); list-metric columns get
    their aggregation."""
    aggregations = aggregations or {}
    if default_aggregation not in AGGREGATIONS:
        default_aggregation = "last"
    out_columns = []
    for column in columns:
        if column.group == "list_metrics":
            mode = aggregations.get(column.label, default_aggregation)
            column = Column(column.key, column.group, column.label, True,
                            mode if mode in AGGREGATIONS else default_aggregation)
        out_columns.append(column)
    rows = []
    for e in executions:
        found = values.get(e["execution_id"], {"metrics": {}, "lists": {}})
        inputs = {i["pipeline_input_name"]: i for i in e["inputs"]}
        outputs = {o["pipeline_output_name"]: o for o in e["outputs"]}
        cells = {}
        for column in out_columns:
            group, _, name = column.key.partition(":")
            if group == "meta":
                cells[column.key] = e.get(name)
            elif group == "in":
                cells[column.key] = _scalar(inputs.get(name))
            elif group == "out":
                cells[column.key] = _scalar(outputs.get(name))
            elif group == "m":
                cells[column.key] = found["metrics"].get(name)
            elif group == "lm":
                summary = found["lists"].get(name)
                cells[column.key] = summary.get(column.aggregation) if summary else None
            elif name == "cpu_time_s":
                cells[column.key] = e.get("cpu_time_s")
            else:
                rss = e.get("peak_rss_bytes")
                cells[column.key] = round(rss / 2**20, 1) if rss else None
        rows.append({"execution_id": e["execution_id"], "status": e["status"],
                     "has_lists": bool(found["lists"]), "cells": cells})
    typed = []
    for column in out_columns:
        if column.group in ("inputs", "outputs"):
            column = Column(column.key, column.group, column.label,
                            _numeric([r["cells"][column.key] for r in rows]), column.aggregation)
        typed.append(column)
    return typed, rows


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
