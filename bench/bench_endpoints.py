"""Endpoint latency and throughput: a low-latency deployment against a bare Flask app
under gunicorn calling the same function in-process; the elastic endpoint round trip; the
lag between a cron tick and the start of its execution. All measured in this run."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from bench.common import percentile, python_c_pass_ms, running_server
from tests.helpers import create_step_http, free_port

CODE = "def add(a, b=1):\n    return {'total': a + b}\n"
FIELDS = {"inputs[0][name]": "a", "inputs[0][data_type]": "number",
          "inputs[1][name]": "b", "inputs[1][data_type]": "number",
          "inputs[1][default_value]": "1",
          "outputs[0][name]": "total", "outputs[0][data_type]": "number"}
SINGLE_CALLS = 600
CONCURRENCY = 16
THROUGHPUT_S = 6.0
# Shipyard and the baseline take turns, in rounds: this machine's speed drifts over a
# run (shared CPUs), and measuring one after the other would put the drift in the ratio.
ROUNDS = 6


def _latencies(call, n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def _alternating(ours, bare, measure, total, on_turn=None) -> tuple:
    """(ours, bare): `measure(call, share)` run in ROUNDS turns each, results pooled.
    `on_turn(side, measured)` wraps each turn (CPU accounting)."""
    got_ours, got_bare = [], []
    wrap = on_turn or (lambda side, run: run())
    for _ in range(ROUNDS):
        got_bare.append(wrap("bare", lambda: measure(bare, total / ROUNDS)))
        got_ours.append(wrap("ours", lambda: measure(ours, total / ROUNDS)))
    return got_ours, got_bare


class _CpuMeter:
    """CPU seconds (user + system) the processes of each side spend during its turns."""

    def __init__(self, sides: dict[str, dict[str, list[int]]]):
        import psutil

        self._psutil = psutil
        self.sides = sides  # side -> {label: [pids]}
        self.used = {side: dict.fromkeys(groups, 0.0) for side, groups in sides.items()}

    def _cpu(self, pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            times = self._psutil.Process(pid).cpu_times()
            total += times.user + times.system
        return total

    def __call__(self, side: str, run):
        before = {label: self._cpu(p) for label, p in self.sides[side].items()}
        result = run()
        for label, pids in self.sides[side].items():
            self.used[side][label] += self._cpu(pids) - before[label]
        return result


def _throughput(make_call, clients: int, seconds: float) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def worker(k: int) -> None:
        call = make_call()
        i = 0
        while time.monotonic() < stop:
            call(i)
            i += 1
        counts[k] = i

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    return sum(counts) / seconds


def _bare_server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--chdir", str(Path(__file__).parent), "-w", "1",
         "-k", "gthread", "--threads", "64", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         "bare_app:app"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/call"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.post(url, json={"a": 1}, timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("bare app did not start")


def _report(name: str, ours: list[float], bare: list[float]) -> None:
    for q in (50, 99):
        o, b = percentile(ours, q), percentile(bare, q)
        print(f"{name} p{q}: shipyard {o:.2f} ms, bare flask {b:.2f} ms, "
              f"overhead {o - b:.2f} ms, ratio {o / b:.1f}x")


def main() -> None:
    proc, bare_url = _bare_server()
    try:
        _measure(bare_url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def _processes(root_pid: int) -> dict[str, list[int]]:
    """A server's processes: its gunicorn ones, and resident runners (if any)."""
    import psutil

    procs = [psutil.Process(root_pid), *psutil.Process(root_pid).children(recursive=True)]
    runner = [p.pid for p in procs if "shipyard_runner" in " ".join(p.cmdline())]
    return {"server": [p.pid for p in procs if p.pid not in runner], "runner": runner}


def _measure(bare_url: str, bare_pid: int) -> None:
    def bare_call_factory():
        session = requests.Session()
        return lambda i: session.post(bare_url, json={"a": i}).json()

    with running_server() as (server, api):
        create_step_http(api, "add", {"main.py": CODE}, kind="pipelines",
                         function_path="main.py", function_name="add", fields=FIELDS)
        r = api.request("POST", "/endpoints", json={
            "pipeline_name": "add", "name": "add-ll", "mode": "low_latency",
            "enable_parallel_executions": True, "max_parallel_executions_per_pod": CONCURRENCY})
        token = r.json()["endpoint_token"]
        deadline = time.monotonic() + 120
        while api.request("GET", "/deployments/add-ll?wait_for_completion=true").json()["status"] != "up":
            if time.monotonic() > deadline:
                raise RuntimeError("low-latency deployment not up")
        url = f"{api.env_url}/endpoints/add-ll"
        headers = {"Authorization": f"EndpointToken {token}"}

        def ours_factory(endpoint_url=url):
            session = requests.Session()

            def call(i: int):
                # One call as a plain HTTP client makes it: trigger, follow 303 to the result.
                body = session.post(endpoint_url, json={"a": i}, headers=headers).json()
                assert body["outputs"]["total"] == i + 1, body
                return body
            return call

        ours_call, bare_call = ours_factory(), bare_call_factory()
        for i in range(20):  # warm both: connections, caches, the runner's first calls
            ours_call(i)
            bare_call(i)
        meter = _CpuMeter({"ours": _processes(server.proc.pid),
                           "bare": {"server": _processes(bare_pid)["server"]}})
        ours_runs, bare_runs = _alternating(
            ours_call, bare_call, lambda call, n: _latencies(call, int(n)), SINGLE_CALLS,
            on_turn=meter)
        ours_single = [x for run in ours_runs for x in run]
        bare_single = [x for run in bare_runs for x in run]
        ours_counts, bare_counts = _alternating(
            ours_factory, bare_call_factory,
            lambda factory, seconds: _throughput(factory, CONCURRENCY, seconds), THROUGHPUT_S)
        ours_tput = sum(ours_counts) / len(ours_counts)
        bare_tput = sum(bare_counts) / len(bare_counts)
        _report("low-latency endpoint, 1 client", ours_single, bare_single)
        per_call = {side: {label: used / SINGLE_CALLS * 1e6 for label, used in groups.items()}
                    for side, groups in meter.used.items()}
        ours_cpu = sum(per_call["ours"].values())
        print(f"CPU per call, 1 client: shipyard {ours_cpu:.0f} us (API "
              f"{per_call['ours']['server']:.0f} + resident runner "
              f"{per_call['ours']['runner']:.0f}), bare flask "
              f"{per_call['bare']['server']:.0f} us, ratio "
              f"{ours_cpu / per_call['bare']['server']:.1f}x")
        print(f"throughput with {CONCURRENCY} clients: shipyard {ours_tput:.0f} calls/s, "
              f"bare flask {bare_tput:.0f} calls/s, ratio {ours_tput / bare_tput:.0%}")

        r = api.request("POST", "/endpoints", json={"pipeline_name": "add", "name": "add-el"})
        el_token = r.json()["endpoint_token"]
        el_url = f"{api.env_url}/endpoints/add-el"
        session = requests.Session()
        elastic = []
        for i in range(20):
            start = time.perf_counter()
            body = session.post(el_url, json={"a": i},
                                headers={"Authorization": f"EndpointToken {el_token}"}).json()
            assert body["outputs"]["total"] == i + 1
            elastic.append((time.perf_counter() - start) * 1000)
        spawn = python_c_pass_ms(20)
        print(f"elastic endpoint round trip: p50 {percentile(elastic, 50):.1f} ms, "
              f"p95 {percentile(elastic, 95):.1f} ms (a fresh runner process per call, "
              f"forked by the fork server); python -c pass p50 "
              f"{percentile(spawn, 50):.1f} ms, ratio "
              f"{percentile(elastic, 50) / percentile(spawn, 50):.2f}x (target <= 1)")

        api.request("POST", "/periodic-deployment", json={
            "pipeline_name": "add", "name": "add-cron", "schedule": "* * * * *",
            "inputs_mapping": [{"pipeline_input_name": "a", "constant_value": 1},
                               {"pipeline_input_name": "b", "constant_value": 1}],
            "outputs_mapping": [{"pipeline_output_name": "total", "is_null": True}]})
        deadline = time.monotonic() + 75
        lag = None
        while time.monotonic() < deadline and lag is None:
            runs = [e for e in api.request("GET", "/pipelines/add/executions").json()
                    if e["deployment_name"] == "add-cron" and e["start_date"]]
            if runs:
                started = dt.datetime.fromisoformat(runs[0]["start_date"].rstrip("Z"))
                tick = started.replace(second=0, microsecond=0)
                lag = (started - tick).total_seconds() * 1000
            time.sleep(0.5)
        print(f"cron tick to execution start: {lag:.0f} ms" if lag is not None
              else "cron tick: none within 75 s")


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    main()
