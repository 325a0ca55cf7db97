"""Multi-step pipelines (issue 11): the step-to-step overhead of a 10-step chain of trivial
elastic steps (end of a step's code to the start of the next step's code, read from the
steps' own clocks) and the wall time of a 20-way fan-out against one single step, beside a
bare `python -c pass` measured in the same run."""

from __future__ import annotations

import time
from datetime import datetime

from bench.common import (
    each_elastic_mode,
    percentile,
    python_c_pass_ms,
    running_server,
    sdk_for,
    summary,
)
from tests.helpers import create_step_http

CHAIN = 10
FAN_OUT = 20
RUNS = 5
SPAWNS = 30
TIME_LIMIT_S = 240

CODE = '''
import time

def hop(trace):
    start = time.time()
    return {"trace": list(trace or []) + [start, time.time()]}
''' + "".join(f"""
def leaf_{i}(trace):
    return {{"n_{i}": len(trace or [])}}
""" for i in range(FAN_OUT))
ARRAY_IO = {"inputs[0][name]": "trace", "inputs[0][data_type]": "array",
            "inputs[0][is_required]": "False",
            "outputs[0][name]": "trace", "outputs[0][data_type]": "array"}


def _step(api, name: str, function_name: str, outputs: dict | None = None) -> None:
    fields = dict(ARRAY_IO)
    if outputs is not None:
        fields.update(outputs)
    body = create_step_http(api, name, {"main.py": CODE}, function_name=function_name,
                            fields=fields)
    assert body["creation_info"]["status"] == "ready", body


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> None:
    spawn = python_c_pass_ms(SPAWNS)
    print(summary("baseline  python -c pass", spawn))
    each_elastic_mode(_measure, spawn)


def _measure(env: dict, spawn: list[float]) -> None:
    with running_server(env) as (server, api):
        sdk = sdk_for(server)
        names = [f"hop-{i}" for i in range(CHAIN)]
        for name in names:
            _step(api, name, "hop")
        sdk.create_pipeline("chain", step_names=names,
                            connections=[(f"{a}.trace", f"{b}.trace")
                                         for a, b in zip(names, names[1:])])
        leaves = [f"leaf-{i}" for i in range(FAN_OUT)]
        for name in leaves:
            _step(api, name, name.replace("-", "_"), {"outputs[0][name]": f"n_{name[5:]}",
                                      "outputs[0][data_type]": "number"})
        sdk.create_pipeline("fan", step_names=[names[0], *leaves],
                            connections=[(f"{names[0]}.trace", f"{leaf}.trace")
                                         for leaf in leaves])
        sdk.create_pipeline("single", step_names=[names[0]])
        sdk.run_pipeline("single", {"trace": []})  # warm-up

        hops: list[float] = []
        scheduling: list[float] = []  # a step's code end -> the next step's launch recorded
        spawning: list[float] = []  # launch recorded -> the next step's code runs
        fan: list[float] = []
        single: list[float] = []
        deadline = time.monotonic() + TIME_LIMIT_S
        for _ in range(RUNS):
            if time.monotonic() > deadline:
                break
            run = sdk.run_pipeline("chain", {"trace": []})
            trace = run["outputs"]["trace"]
            ends, starts = trace[1::2], trace[0::2]
            hops += [(starts[i + 1] - ends[i]) * 1000 for i in range(len(ends) - 1)]
            steps = sdk.get_pipeline_execution(run["execution_id"])["steps"]
            launched = [_seconds(step["start_date"]) for step in steps]
            scheduling += [(launched[i + 1] - ends[i]) * 1000 for i in range(len(ends) - 1)]
            spawning += [(starts[i + 1] - launched[i + 1]) * 1000
                         for i in range(len(ends) - 1)]
            start = time.perf_counter()
            sdk.run_pipeline("single", {"trace": []})
            single.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            result = sdk.run_pipeline("fan", {"trace": []})
            fan.append((time.perf_counter() - start) * 1000)
            assert len(result["outputs"]) == FAN_OUT, result
    print(summary(f"step-to-step ({CHAIN}-step chain)", hops))
    print(summary("  of which: end -> next launched", scheduling))
    print(summary("  of which: launched -> code runs", spawning))
    print(summary("one single-step run          ", single))
    print(summary(f"{FAN_OUT}-way fan-out run           ", fan))
    print(f"step-to-step p50 / bare spawn p50: "
          f"{percentile(hops, 50) / percentile(spawn, 50):.1f}x (target p50 <= 100 ms)")
    print(f"fan-out wall / one step (p50): "
          f"{percentile(fan, 50) / percentile(single, 50):.1f}x "
          f"(a chain of {FAN_OUT + 1} would be about {FAN_OUT + 1}x)")
