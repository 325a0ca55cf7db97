"""F17 resource metrics: the psutil sampler of a real server, the JSON and CSV of
contract §6.10 through plain HTTP and our SDK, retention, GPU readings (a stand-in
`nvidia-smi`, since this machine has no GPU), the cumulated series over several workers,
and each execution's own CPU time and peak memory."""

from __future__ import annotations

import csv
import io
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from ..helpers import Api, ServerProcess, assert_error, create_step_http, run_and_wait

BASE_METRICS = {"cpu_usage", "disk_usage", "ram_usage", "network_input_usage",
                "network_output_usage"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _wait_for_ticks(api: Api, count: int, timeout_s: float = 60) -> dict:
    """Poll (bounded) until `count` distinct ticks have been seen since the first poll."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    body = {}
    while time.monotonic() < deadline:
        r = api.request("GET", "/resource-metrics", params={
            "start": 0, "end": _now_ms() + 60_000, "download": "False"})
        assert r.status_code == 200, r.text
        body = r.json()
        for entry in body["metrics"]["cpu_usage"]:
            seen.update(t for t, _ in entry["values"])
        if len(seen) >= count:
            return body
        time.sleep(0.1)
    raise AssertionError(f"only {len(seen)} resource ticks in {timeout_s} s")


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("resources"), env={
        "SHIPYARD_RESOURCE_SAMPLE_S": "0.2", "SHIPYARD_RESOURCE_MAX_ROWS": "20",
        "SHIPYARD_WORKER_NAME": "worker-a"}).start()
    yield server, Api(server)
    server.stop()


def test_json_shape_per_worker_and_cumulated(sampled):
    server, api = sampled
    start = _now_ms() - 60_000
    body = _wait_for_ticks(api, 3)
    assert set(body) == {"additional_data", "metrics"}
    assert set(body["metrics"]) == BASE_METRICS  # no GPU here: no gpu/vram keys
    assert set(body["additional_data"]) == {"total_disk", "total_ram"}
    assert body["additional_data"]["total_ram"] > 0 and body["additional_data"]["total_disk"] > 0
    for metric, entries in body["metrics"].items():
        workers = {e["metric"]["worker"] for e in entries}
        assert workers == {"worker-a", "All cumulate"}, (metric, workers)
        for entry in entries:
            assert entry["values"], metric
            for tick, value in entry["values"]:
                assert isinstance(tick, int) and start <= tick <= _now_ms() + 1000
                assert value >= 0
                if metric.endswith("_usage") and "network" not in metric:
                    assert value <= 100
    # One worker: the cumulated series is that worker's.
    ram = {e["metric"]["worker"]: e["values"] for e in body["metrics"]["ram_usage"]}
    assert ram["worker-a"] == ram["All cumulate"]
    # A range before any sample is empty, not an error.
    empty = api.request("GET", "/resource-metrics", params={"start": 0, "end": 1000}).json()
    assert all(entries == [] for entries in empty["metrics"].values())
    # One worker asked for: no cumulated series.
    only = api.request("GET", "/resource-metrics", params={
        "start": 0, "end": _now_ms(), "worker": "worker-a"}).json()
    assert {e["metric"]["worker"] for e in only["metrics"]["cpu_usage"]} == {"worker-a"}


def test_csv_download(sampled):
    server, api = sampled
    _wait_for_ticks(api, 2)
    params = {"start": 0, "end": _now_ms(), "download": "True"}
    r = api.request("GET", "/resource-metrics", params=params)
    assert r.status_code == 200 and "text/csv" in r.headers["Content-Type"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and set(rows[0]) == {"timestamp", "timestamp_ms", "worker", "metric", "value"}
    assert {row["metric"] for row in rows} == BASE_METRICS
    assert {row["worker"] for row in rows} == {"worker-a", "All cumulate"}
    assert all(row["timestamp"].endswith("Z") and float(row["value"]) >= 0 for row in rows)


def test_retention_keeps_at_most_max_rows(sampled):
    server, api = sampled
    body = _wait_for_ticks(api, 30)
    [worker] = [e for e in body["metrics"]["cpu_usage"] if e["metric"]["worker"] == "worker-a"]
    # 30 ticks were taken; at most 20 rows are kept (one more may land between the
    # prune and the read).
    assert 10 <= len(worker["values"]) <= 21, len(worker["values"])


def test_our_sdk_dict_and_csv(sampled):
    from shipyard import CraftAiSdk

    server, api = sampled
    _wait_for_ticks(api, 2)
    creds = server.credentials
    sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                     control_url=creds["control_url"])
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    begin = end - timedelta(hours=1)
    result = sdk.get_resource_metrics(begin, end)
    assert set(result["metrics"]) == BASE_METRICS and result["additional_data"]["total_ram"] > 0
    data = sdk.get_resource_metrics(begin, end, csv=True)
    assert isinstance(data, bytes) and data.startswith(b"timestamp,timestamp_ms,worker,metric,value")


def test_bad_ranges_and_tokens(sampled):
    import requests

    server, api = sampled
    for params in ({}, {"start": 0}, {"end": 10}, {"start": "abc", "end": 10},
                   {"start": 10, "end": 5}, {"start": -1, "end": 5},
                   {"start": 1.5, "end": 5}, {"start": 0, "end": 10**20}):
        assert_error(api.request("GET", "/resource-metrics", params=params), 400)
    url = api.env_url + "/api/v1/resource-metrics?start=0&end=10"
    assert_error(requests.get(url, timeout=10), 401)
    assert_error(requests.get(url, headers={"Authorization": "Bearer x.y.z"}, timeout=10), 401)
    other_env = server.url + "/environments/default/nope/api/v1/resource-metrics?start=0&end=1"
    assert_error(requests.get(other_env, headers={"Authorization": f"Bearer {api.token()}"},
                              timeout=10), 404)


def test_gpu_readings_where_a_gpu_is_visible(tmp_path):
    """No GPU on this machine: a stand-in `nvidia-smi` prints what the real one prints for
    `--query-gpu=utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '37, 2048, 8192'\necho '63, 1024, 8192'\n")
    fake.chmod(0o755)
    server = ServerProcess(tmp_path / "data", env={
        "SHIPYARD_RESOURCE_SAMPLE_S": "0.2", "SHIPYARD_WORKER_NAME": "gpu-worker",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}).start()
    try:
        body = _wait_for_ticks(Api(server), 2)
    finally:
        server.stop()
    assert set(body["metrics"]) == BASE_METRICS | {"gpu_usage", "vram_usage"}
    assert body["additional_data"]["total_vram"] == 16384 * 1024 * 1024
    gpu = {e["metric"]["worker"]: e["values"] for e in body["metrics"]["gpu_usage"]}
    vram = {e["metric"]["worker"]: e["values"] for e in body["metrics"]["vram_usage"]}
    assert {v for _, v in gpu["gpu-worker"]} == {50.0}  # mean of 37 and 63
    assert {v for _, v in vram["gpu-worker"]} == {18.75}  # 3072 MiB of 16384 MiB
    assert gpu["All cumulate"] == gpu["gpu-worker"]


def test_each_execution_records_its_cpu_time_and_peak_memory(api):
    code = ("def run():\n    data = bytearray(64 * 1024 * 1024)\n    total = 0\n"
            "    for i in range(3_000_000):\n        total += i\n    return {'n': len(data)}\n")
    create_step_http(api, "resource-hungry", {"main.py": code}, kind="pipelines",
                     fields={"outputs[0][name]": "n", "outputs[0][data_type]": "number"})
    execution_id, out = run_and_wait(api, "resource-hungry")
    assert out.status_code == 200, out.text
    resources = api.request("GET", f"/executions/{execution_id}").json()["resources"]
    assert resources["cpu_time_s"] > 0
    assert resources["peak_rss_bytes"] >= 64 * 1024 * 1024


def test_cumulated_series_over_several_workers(tmp_path):
    """The read side with two workers (the embedded mode has one): weighted CPU, summed
    RAM and network, worker filter, bucketing of long ranges, age retention, CSV."""
    from shipyard_service.domain import resources
    from shipyard_service.store import db_session, init_db

    init_db(f"sqlite:///{tmp_path / 'r.db'}")
    base = 1_700_000_000_000
    with db_session():
        for i in range(10):
            tick = base + i * 1000
            resources.record_sample(dict(
                timestamp_ms=tick, worker="w1", cpu_percent=10.0, cpu_count=2,
                ram_used=1 * 2**30, ram_total=4 * 2**30, disk_used=10, disk_total=100,
                net_in_bytes=100, net_out_bytes=5))
            resources.record_sample(dict(
                timestamp_ms=tick, worker="w2", cpu_percent=40.0, cpu_count=6,
                ram_used=3 * 2**30, ram_total=4 * 2**30, disk_used=30, disk_total=100,
                net_in_bytes=300, net_out_bytes=7))
        resources.record_sample(dict(  # a duplicate tick of w1 is ignored
            timestamp_ms=base, worker="w1", cpu_percent=99.0, cpu_count=2, ram_used=0,
            ram_total=1, disk_used=0, disk_total=1))
        result = resources.query(base, base + 60_000)
        series = {m: {e["metric"]["worker"]: e["values"] for e in entries}
                  for m, entries in result["metrics"].items()}
        assert set(series["cpu_usage"]) == {"w1", "w2", "All cumulate"}
        assert series["cpu_usage"]["w1"][0] == [base, 10.0]
        assert series["cpu_usage"]["All cumulate"][0] == [base, 32.5]  # (10*2 + 40*6) / 8
        assert series["ram_usage"]["All cumulate"][0][1] == 50.0
        assert series["disk_usage"]["All cumulate"][0][1] == 20.0
        assert series["network_input_usage"]["All cumulate"][0][1] == 400
        assert result["additional_data"] == {"total_disk": 200, "total_ram": 8 * 2**30}
        only = resources.query(base, base + 60_000, "w2")
        assert [e["metric"]["worker"] for e in only["metrics"]["cpu_usage"]] == ["w2"]
        cumulated = resources.query(base, base + 60_000, resources.CUMULATED)
        assert [e["metric"]["worker"] for e in cumulated["metrics"]["cpu_usage"]] == ["All cumulate"]
        bucketed = resources.query(base, base + 60_000, max_points=5)
        w1 = [e for e in bucketed["metrics"]["cpu_usage"] if e["metric"]["worker"] == "w1"][0]
        assert len(w1["values"]) == 5 and w1["values"][0] == [base, 10.0]
        text = resources.to_csv(only)
        assert text.splitlines()[1].startswith("2023-11-14T22:13:20.000Z,1700000000000,w2,cpu_usage,40.0")
        cards = {c["metric"]: c for c in resources.overuse_cards(result)}
        assert cards["cpu_usage"]["peak"] == 32.5 and not cards["cpu_usage"]["overused"]
        assert resources.prune(base + 5_000 + 2_000, max_age_s=2, max_rows=1000) == 10
        assert resources.workers() == ["w1", "w2"]
        assert resources.prune(base + 20_000, max_age_s=3600, max_rows=4) == 6
        left = resources.query(base, base + 60_000, "w1")["metrics"]["cpu_usage"][0]["values"]
        assert [t for t, _ in left] == [base + 8_000, base + 9_000]
