"""run_pipeline round trip on a trivial step with a cached environment, against the cost of
starting a bare `python -c pass` subprocess, both measured now."""

from __future__ import annotations

import time

from bench.common import (
    each_elastic_mode,
    percentile,
    python_c_pass_ms,
    running_server,
    sdk_for,
    summary,
)
from tests.helpers import create_step_http

RUNS = 40
TIME_LIMIT_S = 120


def main() -> None:
    spawn = python_c_pass_ms(RUNS)
    print(summary("baseline  python -c pass", spawn))
    each_elastic_mode(_measure, spawn)


def _measure(env: dict, spawn: list[float]) -> None:
    with running_server(env) as (server, api):
        sdk = sdk_for(server)
        create_step_http(api, "trivial", {"main.py": "def run(x):\n    return {'y': x + 1}\n"},
                         kind="pipelines", fields={
                             "inputs[0][name]": "x", "inputs[0][data_type]": "number",
                             "outputs[0][name]": "y", "outputs[0][data_type]": "number"})
        sdk.run_pipeline("trivial", inputs={"x": 0})  # warm-up
        rounds = []
        deadline = time.monotonic() + TIME_LIMIT_S
        for i in range(RUNS):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            result = sdk.run_pipeline("trivial", inputs={"x": i})
            rounds.append((time.perf_counter() - start) * 1000)
            assert result["outputs"]["y"] == i + 1, result
    print(summary("run_pipeline (our SDK)  ", rounds))
    ratio = percentile(rounds, 50) / percentile(spawn, 50)
    print(f"ratio p50 run_pipeline / p50 bare spawn: {ratio:.1f}x "
          f"(target p50 <= 300 ms, goal 50 ms)")
