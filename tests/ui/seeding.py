"""Executions written straight into a running server's SQLite store (no runner), for the
comparison page at scale: the browser test (hundreds) and `make bench` (100,000).

Two pipelines: `train-a` (inputs `lr` number and a long JSON `config`, metric `accuracy`,
list metric `loss`, resource usage) and `train-b` (input `text`, output `label`). The
oldest execution of each is Failed; `train-a`'s oldest has the smallest `lr`."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

LONG_CONFIG = {"layers": [{"units": 64 * (i + 1), "activation": "relu", "dropout": 0.1}
                          for i in range(12)], "optimizer": {"name": "adam", "beta": [0.9, 0.999]}}


def _io(name: str, kind: str, data_type: str, value) -> dict:
    return {f"pipeline_{kind}_name": name, "data_type": data_type, "value": value,
            "mapping_type": "constant", "mapping_value": {}}


def seed(db_path: Path, count: int, project: str = "default", environment: str = "dev",
         batch: int = 5_000) -> dict:
    """Writes `count` executions (half per pipeline, alternating, oldest first); returns
    the facts tests check against."""
    connection = sqlite3.connect(str(db_path), timeout=30)
    try:
        env_id = connection.execute(
            "SELECT e.id FROM environment e JOIN project p ON p.id = e.project_id "
            "WHERE p.name = ? AND e.name = ?", (project, environment)).fetchone()[0]
        start = dt.datetime(2026, 1, 1)
        facts = {"train-a": 0, "train-b": 0, "failed": [], "smallest_lr": None}
        config = json.dumps(LONG_CONFIG)
        for first in range(0, count, batch):
            executions, metrics, lists = [], [], []
            for i in range(first, min(first + batch, count)):
                pipeline = "train-a" if i % 2 == 0 else "train-b"
                facts[pipeline] += 1
                execution_id = f"{pipeline}-{i:06d}"
                created = (start + dt.timedelta(seconds=i)).isoformat(" ")
                ended = (start + dt.timedelta(seconds=i + 1 + i % 5)).isoformat(" ")
                failed = i < 2
                status = "Failed" if failed else "Succeeded"
                if failed:
                    facts["failed"].append(execution_id)
                if pipeline == "train-a":
                    lr = 0.0001 if i == 0 else round(0.001 + (i % 97) * 0.001, 4)
                    if i == 0:
                        facts["smallest_lr"] = execution_id
                    inputs = [_io("lr", "input", "number", lr),
                              _io("config", "input", "json", json.loads(config))]
                    outputs = [_io("model", "output", "string", f"m-{i}")]
                    metrics.append((env_id, execution_id, pipeline, "accuracy",
                                    0.5 + (i % 50) / 100, created))
                    lists.append((env_id, execution_id, pipeline, "loss", "[]", 3, 0.1, 0.9,
                                  1.5, 0.1, created))
                    cpu, rss = 1.0 + (i % 7), 50_000_000 + i
                else:
                    inputs = [_io("text", "input", "string", f"sample text {i}")]
                    outputs = [_io("label", "output", "string", "positive" if i % 3 else "no")]
                    cpu, rss = None, None
                executions.append((
                    execution_id, env_id, pipeline, None, pipeline, status,
                    "boom" if failed else None, json.dumps(inputs), json.dumps(outputs), "{}",
                    cpu, rss, created, created, ended))
            with connection:
                connection.executemany(
                    "INSERT INTO execution (execution_id, environment_id, pipeline_name, "
                    "deployment_name, step_name, status, error, inputs, outputs, step_info, "
                    "cpu_time_s, peak_rss_bytes, created_at, start_date, end_date) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", executions)
                connection.executemany(
                    "INSERT INTO metric (environment_id, execution_id, pipeline_name, name, "
                    "value, created_at) VALUES (?, ?, ?, ?, ?, ?)", metrics)
                connection.executemany(
                    "INSERT INTO listmetric (environment_id, execution_id, pipeline_name, name, "
                    "\"values\", count, value_min, value_max, value_sum, value_last, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", lists)
        return facts
    finally:
        connection.close()
