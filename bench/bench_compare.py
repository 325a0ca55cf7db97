"""The execution comparison page at scale (issues 15 and 16): 1,000,000 executions written
in bulk straight to the store (tests/ui/seeding.py), on SQLite then PostgreSQL, then the
page's server answer timed over HTTP with a logged-in session: the default view, a filter
+ a status, sorts by an input in the JSON, a metric and a list metric's aggregate (also
filtered by pipeline or status, page 200 and the last page), a deep page and the tracking
page.
Baseline: the environment's home page on the same server (a UI page with no execution
listing). The seeding time and the store's growth per execution are
printed. Target < 100 ms each. SHIPYARD_BENCH_COMPARE_EXECUTIONS changes the count;
SHIPYARD_BENCH_COMPARE_BACKENDS=sqlite runs one backend only."""

from __future__ import annotations

import html
import os
import re
import sqlite3
import tempfile
import time
from pathlib import Path

import requests

from bench.bench_store import _backend, _server_cpu, _store_size
from bench.common import percentile
from tests.helpers import ServerProcess
from tests.ui.seeding import seed, seed_postgres

EXECUTIONS = int(os.environ.get("SHIPYARD_BENCH_COMPARE_EXECUTIONS", "1000000"))
BACKENDS = os.environ.get("SHIPYARD_BENCH_COMPARE_BACKENDS", "sqlite,postgres").split(",")
REPEATS = 5
INDEX_WAIT_S = 3600
SLOW_S = 5.0
TARGET_MS = 100
ENV = "/ui/projects/default/environments/dev"
VIEWS = {
    "default (newest 50)": "/compare",
    "filter pipeline + status": "/compare?pipeline=train-b&status=Failed",
    "sort by input lr": "/compare?pipeline=train-a&sort=in:lr&dir=asc",
    "sort by input lr, page 200": "/compare?pipeline=train-a&sort=in:lr&dir=asc&page=200",
    "sort by output label, desc": "/compare?sort=out:label",
    "sort by metric": "/compare?sort=m:accuracy",
    "sort by list metric mean": "/compare?sort=lm:loss&agg=mean",
    "page 1000 of 100-row pages": "/compare?per_page=100&page=1000",
    "last page of 100-row pages": f"/compare?per_page=100&page={-(-EXECUTIONS // 100)}",
    "last page, sort by input lr": "/compare?pipeline=train-a&sort=in:lr&dir=asc&per_page=100"
                                   f"&page={-(-EXECUTIONS // 200)}",
    "sort by metric, pipeline, page 200": "/compare?pipeline=train-a&sort=m:accuracy&page=200",
    "last page, sort by metric, pipeline": "/compare?pipeline=train-a&sort=m:accuracy"
                                           f"&per_page=100&page={-(-EXECUTIONS // 200)}",
    "sort by list mean, pipeline, page 200": "/compare?pipeline=train-a&sort=lm:loss&agg=mean"
                                             "&page=200",
    "last page, sort by list mean, pipeline": "/compare?pipeline=train-a&sort=lm:loss&agg=mean"
                                              f"&per_page=100&page={-(-EXECUTIONS // 200)}",
    "sort by metric, status, page 200": "/compare?status=Succeeded&sort=m:accuracy&page=200",
    "last page, sort by metric, pipeline + status":
        "/compare?pipeline=train-a&status=Succeeded&sort=m:accuracy&per_page=100"
        f"&page={-(-(EXECUTIONS // 2 - 1) // 100)}",
    "sort by list mean, Failed": "/compare?status=Failed&sort=lm:loss&agg=mean",
    "tracking, page 500": "/executions?per_page=100&page=500",
}


# A deep page reached the way the UI does: the "Next" link of the page before (a keyset
# cursor). Page 1000 at 1,000,000 executions (train-a holds half of them).
DEEP = min(999, EXECUTIONS // 200 - 1)
NEXT_VIEWS = {
    f"page {DEEP + 1} by Next, newest first": f"/compare?per_page=100&page={DEEP}",
    f"page {DEEP + 1} by Next, sort by metric":
        f"/compare?sort=m:accuracy&per_page=100&page={DEEP}",
    f"page {DEEP + 1} by Next, sort by input lr":
        f"/compare?pipeline=train-a&sort=in:lr&dir=asc&per_page=100&page={DEEP}",
}


def _next_link(session: requests.Session, url: str) -> str:
    page = session.get(url)
    page.raise_for_status()
    href = re.search(r'<a href="([^"]+)" class="button small" data-page="next"', page.text)
    return html.unescape(href.group(1))


def _session(server) -> requests.Session:
    session = requests.Session()
    login = session.get(server.url + "/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    creds = server.credentials
    answer = session.post(server.url + "/ui/login", data={
        "csrf_token": token, "email": creds["admin_email"],
        "password": creds["admin_password"], "next": ""})
    answer.raise_for_status()
    return session


def _timed(session: requests.Session, url: str, cpu) -> tuple[list[float], int, float]:
    """Wall times of the calls, the page's size, and the server's (and database's) CPU
    ms per call: a figure other work on a shared machine inflates far less."""
    times, size = [], 0
    start = time.perf_counter()
    session.get(url).raise_for_status()  # warm-up
    slow = time.perf_counter() - start > SLOW_S  # over target by far: once is enough
    used = cpu.seconds()
    for _ in range(1 if slow else REPEATS):
        start = time.perf_counter()
        answer = session.get(url)
        times.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
        size = len(answer.content)
    return times, size, (cpu.seconds() - used) * 1000 / len(times)


def _seed(backend: str, data_dir: Path, url: str | None) -> dict:
    """The executions, then the planner's statistics, as a store in service for a while
    has them (bench_store does the same; seed_postgres settles PostgreSQL)."""
    if backend == "sqlite":
        facts = seed(data_dir / "shipyard.db", EXECUTIONS, batch=20_000)
        connection = sqlite3.connect(data_dir / "shipyard.db", timeout=60)
        try:
            connection.execute("ANALYZE")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
        return facts
    return seed_postgres(url, EXECUTIONS)


def _query(backend: str, data_dir: Path, url: str | None, sql: str):
    if backend == "sqlite":
        connection = sqlite3.connect(data_dir / "shipyard.db", timeout=60)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def _wait_indexed(backend: str, data_dir: Path, url: str | None) -> float:
    """Seconds until the sort indexer (which runs while the store is seeded) has passed
    the newest execution."""
    newest = _query(backend, data_dir, url, "SELECT execution_id FROM execution "
                    "ORDER BY created_at DESC, execution_id DESC LIMIT 1")[0][0]
    started = time.monotonic()
    while time.monotonic() - started < INDEX_WAIT_S:
        if [(newest,)] == _query(backend, data_dir, url, "SELECT execution_id FROM sortmark"):
            break
        time.sleep(1)
    else:
        print(f"  the sort indexer had not caught up after {INDEX_WAIT_S} s", flush=True)
    return time.monotonic() - started


def _run(backend: str, root: Path) -> None:
    folder = root / backend
    with _backend(backend, folder) as (env, url, postgres):
        server = ServerProcess(folder / "data", env=env).start()
        try:
            before = _store_size(backend, server.data_dir, url)
            started = time.monotonic()
            facts = _seed(backend, server.data_dir, url)
            seeded = time.monotonic() - started
            size = _store_size(backend, server.data_dir, url) - before
            print(f"{backend}: seeded {EXECUTIONS:,} executions in {seeded:.1f} s "
                  f"({facts['train-a']:,} train-a with metrics, {facts['train-b']:,} train-b); "
                  f"store grew {size / 1e6:.0f} MB = {size / EXECUTIONS:.0f} bytes per "
                  "execution", flush=True)
            behind = _wait_indexed(backend, server.data_dir, url)
            if backend == "sqlite":  # the WAL's pages into the file, as after seeding
                _query(backend, server.data_dir, url, "PRAGMA wal_checkpoint(TRUNCATE)")
            indexed = _store_size(backend, server.data_dir, url) - before
            print(f"  sort indexer caught up {behind:.1f} s after the seeding ended "
                  f"(it indexes while the store is seeded); store then "
                  f"{indexed / EXECUTIONS:.0f} bytes per execution", flush=True)
            session = _session(server)
            cpu = _server_cpu(server, postgres)
            base, _, base_cpu = _timed(session, server.url + ENV + "/", cpu)
            print(f"  baseline  environment page:               p50 "
                  f"{percentile(base, 50):7.1f} ms  server CPU {base_cpu:6.1f} ms/call  "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
            views = {label: server.url + ENV + path for label, path in VIEWS.items()}
            for label, path in NEXT_VIEWS.items():
                views[label] = server.url + _next_link(session, server.url + ENV + path)
            for label, url_ in views.items():
                try:
                    times, size, used = _timed(session, url_, cpu)
                except requests.HTTPError as exc:  # say which view, with the server's reason
                    log = (server.data_dir / "server.log").read_text()
                    print(f"  {label:<40} FAILED {exc}\n{log[-3000:]}", flush=True)
                    continue
                p50 = percentile(times, 50)
                verdict = "ok" if p50 < TARGET_MS else f"OVER {TARGET_MS} ms"
                print(f"  {label:<40} p50 {p50:7.1f} ms  max {max(times):7.1f} ms  "
                      f"{size / 1000:6.0f} kB  ratio {p50 / percentile(base, 50):5.1f}x  "
                      f"server CPU {used:6.1f} ms/call  {verdict}", flush=True)
        finally:
            server.stop()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-compare-") as tmp:
        for backend in BACKENDS:
            _run(backend.strip(), Path(tmp))


if __name__ == "__main__":
    main()
