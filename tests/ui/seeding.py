"""Executions written straight into a running server's store (no runner), for the
comparison page at scale: the browser test (hundreds, SQLite) and `make bench` (1,000,000,
SQLite and PostgreSQL).

Two pipelines: `train-a` (inputs `lr` number and a long JSON `config`, metric `accuracy`,
list metric `loss`, resource usage) and `train-b` (input `text`, output `label`). The
oldest execution of each is Failed; `train-a`'s oldest has the smallest `lr`."""

from __future__ import annotations

import datetime as dt
import io
import json
import sqlite3
from pathlib import Path

LONG_CONFIG = {"layers": [{"units": 64 * (i + 1), "activation": "relu", "dropout": 0.1}
                          for i in range(12)], "optimizer": {"name": "adam", "beta": [0.9, 0.999]}}


def _io(name: str, kind: str, data_type: str, value) -> dict:
    return {f"pipeline_{kind}_name": name, "data_type": data_type, "value": value,
            "mapping_type": "constant", "mapping_value": {}}


EXECUTION_COLUMNS = ("execution_id", "environment_id", "pipeline_name", "deployment_name",
                     "step_name", "status", "error", "inputs", "outputs", "step_info",
                     "cpu_time_s", "peak_rss_bytes", "created_at", "start_date", "end_date")
METRIC_COLUMNS = ("environment_id", "execution_id", "pipeline_name", "name", "value",
                  "created_at")
LIST_COLUMNS = ("environment_id", "execution_id", "pipeline_name", "name", "values", "count",
                "value_min", "value_max", "value_sum", "value_last", "created_at")
ENVIRONMENT_ID = ("SELECT e.id FROM environment e JOIN project p ON p.id = e.project_id "
                  "WHERE p.name = {mark} AND e.name = {mark}")


def batches(env_id: int, count: int, facts: dict, batch: int = 5_000):
    """Rows of `count` executions, `batch` at a time: {table: (columns, rows)}, with the
    facts tests check against filled in as they are made."""
    start = dt.datetime(2026, 1, 1)
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
        yield {"execution": (EXECUTION_COLUMNS, executions),
               "metric": (METRIC_COLUMNS, metrics), "listmetric": (LIST_COLUMNS, lists)}


def _facts() -> dict:
    return {"train-a": 0, "train-b": 0, "failed": [], "smallest_lr": None}


def seed(db_path: Path, count: int, project: str = "default", environment: str = "dev",
         batch: int = 5_000) -> dict:
    """Writes `count` executions into a SQLite store (half per pipeline, alternating,
    oldest first); returns the facts tests check against."""
    connection = sqlite3.connect(str(db_path), timeout=30)
    try:
        env_id = connection.execute(ENVIRONMENT_ID.format(mark="?"),
                                    (project, environment)).fetchone()[0]
        facts = _facts()
        for tables in batches(env_id, count, facts, batch):
            with connection:
                for table, (columns, rows) in tables.items():
                    quoted = ", ".join(f'"{c}"' for c in columns)
                    marks = ", ".join("?" * len(columns))
                    connection.executemany(
                        f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})', rows)
        return facts
    finally:
        connection.close()


def seed_postgres(url: str, count: int, project: str = "default", environment: str = "dev",
                  batch: int = 20_000) -> dict:
    """`seed` into a PostgreSQL store, by COPY."""
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(ENVIRONMENT_ID.format(mark="%s"), (project, environment))
            env_id = cursor.fetchone()[0]
        facts = _facts()
        for tables in batches(env_id, count, facts, batch):
            with connection, connection.cursor() as cursor:
                copy_tables(cursor, tables)
    finally:
        connection.close()
    settle_postgres(url)
    return facts


def copy_tables(cursor, tables: dict) -> None:
    """{table: (columns, rows)} into PostgreSQL by COPY."""
    for table, (columns, rows) in tables.items():
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(copy_text(v) for v in row) + "\n")
        buffer.seek(0)
        quoted = ", ".join(f'"{c}"' for c in columns)
        cursor.copy_expert(f'COPY "{table}" ({quoted}) FROM STDIN', buffer)


def settle_postgres(url: str) -> None:
    """After a bulk load: the list metrics' id sequence past the ids given, and the
    planner's statistics (as a store in service for a while has them)."""
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('listmetric', 'id'), "
                           "(SELECT COALESCE(MAX(id), 1) FROM listmetric))")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    finally:
        connection.close()


def copy_text(value: object) -> str:
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
