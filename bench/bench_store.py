"""A store that holds years (F15): 1,000,000 executions with their inputs, outputs, metrics
and logs, seeded in bulk straight into the store (SQLite, then PostgreSQL), then the pages
users read, each beside a baseline from the same run:

* through the API (real server on that store): a page of `get_metrics` / `get_list_metrics`
  filtered by pipeline or by deployment (the first page and one deep in the list, each), against
  the same call matching nothing;
* through domain/ in this process (no API route pages them): a page of the environment's,
  a pipeline's and a deployment's executions, newest first, against reading one execution
  by its id.

The seeding time and the store's size (per execution) are printed. Target: every page under
100 ms. Beside each API figure: the CPU time per call of the server's processes (gunicorn, and
PostgreSQL's when it is the store), which other work on a shared machine does not inflate.
SHIPYARD_BENCH_STORE_EXECUTIONS changes the count (e.g. 100000 for a quick look);
SHIPYARD_BENCH_STORE_BACKENDS=sqlite runs one backend only."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.common import ProcessCpu
from tests.backends.servers import PostgresServer
from tests.helpers import Api, ServerProcess
from tests.ui.seeding import copy_tables, settle_postgres

EXECUTIONS = int(os.environ.get("SHIPYARD_BENCH_STORE_EXECUTIONS", "1000000"))
BACKENDS = os.environ.get("SHIPYARD_BENCH_STORE_BACKENDS", "sqlite,postgres").split(",")
BATCH = 20_000
REPEATS = 5
CPU_CALLS = 10
TARGET_MS = 100
# A year of executions: a deployment fired every minute holds half of them.
PIPELINES = [("train", None, 0.2), ("etl", None, 0.2), ("report", "nightly", 0.1),
             ("serve", "every-minute", 0.5)]


def _rows(env_id: int, start: int, stop: int, t0: dt.datetime):
    """Rows of executions [start, stop) for each table, as column tuples."""
    executions, metrics, lists, chunks, logs = [], [], [], [], []
    for i in range(start, stop):
        pick = i % 10
        pipeline, deployment = (PIPELINES[0][:2] if pick < 2 else PIPELINES[1][:2]
                                if pick < 4 else PIPELINES[2][:2] if pick < 5
                                else PIPELINES[3][:2])
        execution_id = f"{pipeline}-{i:07d}"
        created = t0 + dt.timedelta(seconds=i * 31.5)
        ended = created + dt.timedelta(seconds=2)
        inputs = json.dumps([{"pipeline_input_name": "lr", "data_type": "number",
                              "value": 0.001 * (i % 100), "source": "endpoint"}])
        outputs = json.dumps([{"pipeline_output_name": "score", "data_type": "number",
                               "value": 0.5 + (i % 50) / 100}])
        executions.append((execution_id, env_id, pipeline, deployment, pipeline, "Succeeded",
                           inputs, outputs, '{"name": "%s"}' % pipeline, created, created,
                           ended, "bench-user", 0.05, 30_000_000))
        for name, value in (("accuracy", (i % 100) / 100), ("loss", 1 / (1 + i % 100))):
            metrics.append((env_id, execution_id, pipeline, deployment, name, value, ended))
        lists.append((i + 1, env_id, execution_id, pipeline, deployment, "curve", "[]", 10,
                      ended))
        chunks.append((i + 1, json.dumps([round(0.1 * k, 1) for k in range(10)])))
        logs.append((execution_id, created, "stdout", f"step {pipeline} started"))
        logs.append((execution_id, ended, "stdout", "done in 2.0 s"))
    return {
        "execution": (("execution_id", "environment_id", "pipeline_name", "deployment_name",
                       "step_name", "status", "inputs", "outputs", "step_info", "created_at",
                       "start_date", "end_date", "created_by", "cpu_time_s", "peak_rss_bytes"),
                      executions),
        "metric": (("environment_id", "execution_id", "pipeline_name", "deployment_name",
                    "name", "value", "created_at"), metrics),
        "listmetric": (("id", "environment_id", "execution_id", "pipeline_name",
                        "deployment_name", "name", "values", "count", "created_at"), lists),
        "listmetricchunk": (("list_metric_id", "values"), chunks),
        "executionlog": (("execution_id", "timestamp", "stream", "message"), logs),
    }


def _seed_sqlite(path: Path, env_id: int, t0: dt.datetime) -> None:
    import sqlite3

    conn = sqlite3.connect(path, timeout=60)
    conn.execute("PRAGMA synchronous=OFF")
    try:
        for start in range(0, EXECUTIONS, BATCH):
            tables = _rows(env_id, start, min(start + BATCH, EXECUTIONS), t0)
            with conn:
                for table, (columns, rows) in tables.items():
                    quoted = ", ".join(f'"{c}"' for c in columns)
                    marks = ", ".join("?" * len(columns))
                    conn.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})',
                                     [tuple(str(v) if isinstance(v, dt.datetime) else v
                                            for v in row) for row in rows])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _seed_postgres(url: str, env_id: int, t0: dt.datetime) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        for start in range(0, EXECUTIONS, BATCH):
            with conn, conn.cursor() as cur:
                copy_tables(cur, _rows(env_id, start, min(start + BATCH, EXECUTIONS), t0))
    finally:
        conn.close()
    settle_postgres(url)


def _store_size(backend: str, data_dir: Path, url: str | None) -> int:
    if backend == "sqlite":
        return sum(p.stat().st_size for p in data_dir.glob("shipyard.db*"))
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _ms(fn) -> float:
    """Median of REPEATS calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _server_cpu(server: ServerProcess, postgres: PostgresServer | None) -> ProcessCpu:
    """The server's processes and, for PostgreSQL, the database's (postmaster, backends)."""
    pids = [server.proc.pid]
    if postgres is not None:
        pids.append(int((postgres.data / "postmaster.pid").read_text().split()[0]))
    return ProcessCpu(pids)


def _row(label: str, value_ms: float, baseline_ms: float, cpu_ms: float | None = None) -> str:
    verdict = "ok" if value_ms < TARGET_MS else f"OVER {TARGET_MS} ms"
    cpu = "" if cpu_ms is None else f"  server CPU {cpu_ms:6.1f} ms/call"
    return (f"  {label:<52} {value_ms:7.1f} ms  baseline {baseline_ms:6.1f} ms  "
            f"ratio {value_ms / baseline_ms:5.1f}x{cpu}  {verdict}")


@contextmanager
def _backend(backend: str, folder: Path):
    if backend == "sqlite":
        yield {}, None, None
        return
    postgres = PostgresServer().start()
    try:
        url = postgres.create_database("bench_store")
        yield {"SHIPYARD_DATABASE_URL": url}, url, postgres
    finally:
        postgres.stop()


def _environment_id(backend: str, data_dir: Path, url: str | None) -> int:
    sql = ("SELECT e.id FROM environment e JOIN project p ON p.id = e.project_id "
           "WHERE p.name = 'default' AND e.name = 'dev'")
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(data_dir / "shipyard.db")
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        conn.close()


def _measure_api(server: ServerProcess, cpu: ProcessCpu) -> None:
    api = Api(server)

    def page(kind: str, scope: str, name: str, number: int = 1):
        def call():
            response = api.request("GET", f"/metrics/{kind}", params={
                f"filters[{scope}]": name, "items_per_page": 5000, "page": number})
            assert response.status_code == 200, response.text
            return response
        return call

    nothing = page("single-value", "pipeline_name", "nothing-here")
    empty = _ms(nothing)
    total = page("single-value", "pipeline_name", "serve")().json()["total_count"]
    deep = max(1, total // 5000 // 2)
    print(f"  API baseline: get_metrics matching nothing {empty:.1f} ms, server CPU "
          f"{cpu.ms_per_call(nothing, CPU_CALLS):.1f} ms/call")
    for kind, label in (("single-value", "get_metrics"), ("list-values", "get_list_metrics")):
        for scope, name, number in (("pipeline_name", "train", 1),
                                    ("deployment_name", "every-minute", 1),
                                    ("pipeline_name", "serve", deep),
                                    ("deployment_name", "every-minute", deep)):
            call = page(kind, scope, name, number)
            print(_row(f"{label} page {number} of {scope}={name}", _ms(call), empty,
                       cpu.ms_per_call(call, CPU_CALLS)), flush=True)


def _measure_domain(database_url: str) -> None:
    from shipyard_service.domain import browse, executions
    from shipyard_service.store import db_session, init_db
    from shipyard_service.store.models import Environment, Project

    init_db(database_url)
    with db_session():
        env = (Environment.select().join(Project)
               .where((Project.name == "default") & (Environment.name == "dev")).get())
        one = _ms(lambda: executions.get_execution(env, "train-0000000"))
        print(f"  domain baseline: one execution by id {one:.2f} ms")
        for label, kwargs in (("environment", {}), ("pipeline train", {"pipeline_name": "train"}),
                              ("deployment every-minute",
                               {"deployment_name": "every-minute"})):
            print(_row(f"page of 50 executions of the {label}",
                       _ms(lambda kw=kwargs: browse.list_executions(env, limit=50, **kw)),
                       one), flush=True)


def _run(backend: str, root: Path) -> None:
    folder = root / backend
    with _backend(backend, folder) as (env, url, postgres):
        server = ServerProcess(folder / "data", env=env).start()
        try:
            data_dir = server.data_dir
            env_id = _environment_id(backend, data_dir, url)
            before = _store_size(backend, data_dir, url)
            t0 = dt.datetime(2025, 11, 30)
            started = time.monotonic()
            if backend == "sqlite":
                _seed_sqlite(data_dir / "shipyard.db", env_id, t0)
            else:
                _seed_postgres(url, env_id, t0)
            seeded = time.monotonic() - started
            size = _store_size(backend, data_dir, url) - before
            print(f"{backend}: seeded {EXECUTIONS:,} executions (2 metrics, a 10-value list "
                  f"metric and 2 log lines each) in {seeded:.1f} s; store grew "
                  f"{size / 1e6:.0f} MB = {size / EXECUTIONS:.0f} bytes per execution",
                  flush=True)
            _measure_api(server, _server_cpu(server, postgres))
        finally:
            server.stop()
        _measure_domain(url or f"sqlite:///{folder / 'data' / 'shipyard.db'}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-store-") as tmp:
        for backend in BACKENDS:
            _run(backend.strip(), Path(tmp))


if __name__ == "__main__":
    main()
