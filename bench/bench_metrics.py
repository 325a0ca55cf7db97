"""Metrics (F16): recording 50,000 list values from a step, and get_metrics /
get_list_metrics over 10,000 executions, each beside a baseline measured in the same run.

* Recording: inside one execution, 50,000 values through the SDK (5 calls of 10,000),
  against 5 single-value recordings (the same number of calls, tiny bodies). Then 2,000
  appends of one value each: the last 200 cost what the first 200 cost, because an append
  adds a chunk instead of rewriting the list.
* Reading: 10,000 executions with 2 single metrics and a 20-value list each are written to
  the store, then read back by the SDK (pages in columns, `format=columns`), against the same
  call matching nothing (the fixed cost of a round trip), and as the official client reads
  them (pages of 5,000 objects). Beside the wall times: the CPU per call of the
  server's processes and of this (the SDK's) process, and their sum's ratio, which load
  from other work on a shared machine inflates far less."""

from __future__ import annotations

import datetime as dt
import json
import time

from bench.common import ProcessCpu, running_server, sdk_for
from tests.helpers import create_step_http, run_and_wait

EXECUTIONS = 10_000
TIME_LIMIT_S = 300

RECORDER = '''
import time
from shipyard import CraftAiSdk

def run():
    sdk = CraftAiSdk()
    values = [i * 0.5 for i in range(50_000)]
    start = time.perf_counter()
    sdk.record_list_metric_values("bulk", values)
    bulk = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(5):
        sdk.record_metric_value(f"single{i}", i)
    singles = time.perf_counter() - start
    appends = []
    for i in range(2_000):
        t = time.perf_counter()
        sdk.record_list_metric_values("one_by_one", i)
        appends.append(time.perf_counter() - t)
    return {"timings": {"bulk_s": bulk, "singles_s": singles, "appends_s": appends}}
'''


def _seed(data_dir, environment_name: str = "dev", project: str = "default") -> None:
    """10,000 finished executions with metrics, written straight to the bench's store."""
    from shipyard_service.store import db_session, init_db
    from shipyard_service.store.db import database
    from shipyard_service.store.models import (
        Environment,
        Execution,
        ListMetric,
        ListMetricChunk,
        Metric,
        Project,
    )

    init_db(f"sqlite:///{data_dir / 'shipyard.db'}")
    with db_session():
        env = (Environment.select().join(Project)
               .where((Project.name == project) & (Environment.name == environment_name)).get())
        now = dt.datetime.utcnow()
        for start in range(0, EXECUTIONS, 500):
            ids = [f"seeded-{i:05d}" for i in range(start, min(start + 500, EXECUTIONS))]
            with database.atomic():
                Execution.insert_many([
                    {"execution_id": e, "environment": env.id, "pipeline_name": "seeded",
                     "status": "Succeeded", "created_at": now, "end_date": now}
                    for e in ids]).execute()
                Metric.insert_many([
                    {"environment": env.id, "execution_id": e, "pipeline_name": "seeded",
                     "name": name, "value": float(i), "created_at": now}
                    for i, e in enumerate(ids) for name in ("accuracy", "loss")]).execute()
                for e in ids:
                    header = ListMetric.create(environment=env.id, execution_id=e,
                                               pipeline_name="seeded", name="curve", values=[],
                                               count=20, created_at=now)
                    ListMetricChunk.create(list_metric=header, values=[0.1 * k for k in range(20)])


def _timed(fn, repeats: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _cpu_ms(server_cpu: ProcessCpu, fn, calls: int = 5) -> tuple[float, float]:
    """(server, client) CPU ms per call of `fn`, after one warm-up call."""
    fn()
    server_before, client_before = server_cpu.seconds(), time.process_time()
    for _ in range(calls):
        fn()
    return ((server_cpu.seconds() - server_before) * 1000 / calls,
            (time.process_time() - client_before) * 1000 / calls)


def _official_pages(sdk, kind: str) -> list[dict]:
    """What the official client reads: `{metrics, total_count}` pages of 5,000 objects."""
    params = {"filters[pipeline_name]": "seeded", "items_per_page": 5000, "page": 1}
    page = sdk._get(sdk._env(f"metrics/{kind}"), params=params)
    found = page["metrics"]
    while len(found) < page["total_count"]:
        params["page"] += 1
        page = sdk._get(sdk._env(f"metrics/{kind}"), params=params)
        found += page["metrics"]
    return found


def main() -> None:
    with running_server() as (server, api):
        sdk = sdk_for(server)
        create_step_http(api, "recorder", {"main.py": RECORDER}, kind="pipelines", fields={
            "outputs[0][name]": "timings", "outputs[0][data_type]": "json"})
        _, out = run_and_wait(api, "recorder")
        assert out.status_code == 200, out.text
        timings = {o["pipeline_output_name"]: o["value"] for o in out.json()["outputs"]}["timings"]
        bulk, singles = timings["bulk_s"] * 1000, timings["singles_s"] * 1000
        print(f"baseline  5 single-value recordings:        {singles:8.1f} ms")
        print(f"record 50,000 list values (5 calls):        {bulk:8.1f} ms  "
              f"ratio {bulk / singles:.1f}x")
        appends = [a * 1000 for a in timings["appends_s"]]
        first, last = sum(appends[:200]) / 200, sum(appends[-200:]) / 200
        print(f"2,000 appends of one value: first 200 {first:.2f} ms/call, last 200 "
              f"{last:.2f} ms/call  ratio {last / first:.2f}x (flat = linear appends)")

        started = time.monotonic()
        _seed(server.data_dir)
        print(f"(seeded {EXECUTIONS} executions in {time.monotonic() - started:.1f} s)")
        empty, _ = _timed(lambda: sdk.get_metrics(pipeline_name="nothing-here"))
        singles_t, found = _timed(lambda: sdk.get_metrics(pipeline_name="seeded"))
        assert len(found) == 2 * EXECUTIONS, len(found)
        lists_t, found_lists = _timed(lambda: sdk.get_list_metrics(pipeline_name="seeded"))
        assert len(found_lists) == EXECUTIONS and len(found_lists[-1]["values"]) == 20
        official_t, official = _timed(lambda: _official_pages(sdk, "single-value"))
        official_lists_t, official_lists = _timed(lambda: _official_pages(sdk, "list-values"))
        assert official == found and official_lists == found_lists
        size = len(json.dumps(found)) / 1e6
        server_cpu = ProcessCpu([server.proc.pid])
        # CPU times tick every 10 ms: many calls of the cheap baseline, a few of the others.
        cpu_empty = _cpu_ms(server_cpu, lambda: sdk.get_metrics(pipeline_name="nothing-here"),
                            calls=100)
        cpu_singles = _cpu_ms(server_cpu, lambda: sdk.get_metrics(pipeline_name="seeded"))
        cpu_lists = _cpu_ms(server_cpu, lambda: sdk.get_list_metrics(pipeline_name="seeded"))
        cpu_official = _cpu_ms(server_cpu, lambda: _official_pages(sdk, "single-value"))
        cpu_official_lists = _cpu_ms(server_cpu, lambda: _official_pages(sdk, "list-values"))

        def cpu(figures: tuple[float, float]) -> str:
            return (f"CPU server {figures[0]:6.1f} + client {figures[1]:6.1f} ms/call, "
                    f"ratio {sum(figures) / sum(cpu_empty):5.1f}x")

        print(f"baseline  get_metrics matching nothing:     {empty * 1000:8.1f} ms  "
              f"{cpu(cpu_empty)}")
        print(f"get_metrics, {EXECUTIONS} executions ({2 * EXECUTIONS} metrics, {size:.1f} MB): "
              f"{singles_t * 1000:8.1f} ms  ratio {singles_t / empty:.1f}x  {cpu(cpu_singles)}")
        print(f"get_list_metrics, {EXECUTIONS} lists of 20:     {lists_t * 1000:8.1f} ms  "
              f"ratio {lists_t / empty:.1f}x  {cpu(cpu_lists)}")
        print(f"  the same as the official client reads them (pages of 5,000 objects): "
              f"metrics {official_t * 1000:.1f} ms ({official_t / empty:.1f}x, "
              f"{cpu(cpu_official)}), lists {official_lists_t * 1000:.1f} ms "
              f"({official_lists_t / empty:.1f}x, {cpu(cpu_official_lists)})")


if __name__ == "__main__":
    main()
