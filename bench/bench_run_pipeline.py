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
        rounds, paired = [], []
        deadline = time.monotonic() + TIME_LIMIT_S
        for i in range(RUNS):
            if time.monotonic() > deadline:
                break
            # The baseline again, each just before a run: on a shared machine the load
            # changes within a run, and both figures then see the same.
            paired += python_c_pass_ms(1)
            start = time.perf_counter()
            result = sdk.run_pipeline("trivial", inputs={"x": i})
            rounds.append((time.perf_counter() - start) * 1000)
            assert result["outputs"]["y"] == i + 1, result
    print(summary("run_pipeline (our SDK)  ", rounds))
    print(summary("python -c pass, each just before a run", paired))
    ratio = percentile(rounds, 50) / percentile(spawn, 50)
    print(f"ratio p50 run_pipeline / p50 bare spawn: {ratio:.2f}x; "
          f"/ p50 of those interleaved: {percentile(rounds, 50) / percentile(paired, 50):.2f}x "
          f"(target <= 1)")
