"""Re-runs and the step cache (issue 12): re-running the last step of a 10-step chain
against the whole chain and one step alone, and a fully cached 10-step run against a fresh
one (use_cache=False), all in the same run, beside `python -c pass`. Each step does 100 ms
of work (a sleep) so that a step's cost is visible beside the platform's own overhead."""

from __future__ import annotations

import time

from bench.common import percentile, python_c_pass_ms, running_server, sdk_for, summary
from tests.helpers import create_step_http

CHAIN = 10
RUNS = 5
SPAWNS = 30
TIME_LIMIT_S = 240

CODE = '''
import time

def hop(trace):
    time.sleep(0.1)
    return {"trace": list(trace or []) + [len(trace or [])]}
'''
ARRAY_IO = {"inputs[0][name]": "trace", "inputs[0][data_type]": "array",
            "inputs[0][is_required]": "False",
            "outputs[0][name]": "trace", "outputs[0][data_type]": "array"}


def _chain(api, sdk, prefix: str, cache: bool) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(CHAIN)]
    fields = {**ARRAY_IO, **({"cache_results": "true"} if cache else {})}
    for name in names:
        body = create_step_http(api, name, {"main.py": CODE}, function_name="hop",
                                fields=fields)
        assert body["creation_info"]["status"] == "ready", body
    sdk.create_pipeline(prefix, step_names=names,
                        connections=[(f"{a}.trace", f"{b}.trace")
                                     for a, b in zip(names, names[1:])])
    return names


def _timed(call, *args, **kwargs) -> tuple[float, dict]:
    start = time.perf_counter()
    result = call(*args, **kwargs)
    return (time.perf_counter() - start) * 1000, result


def main() -> None:
    spawn = python_c_pass_ms(SPAWNS)
    print(summary("baseline  python -c pass", spawn))
    with running_server() as (server, api):
        sdk = sdk_for(server)
        names = _chain(api, sdk, "chain", cache=False)
        _chain(api, sdk, "cached", cache=True)
        sdk.create_pipeline("single", step_names=[names[0]])
        sdk.run_pipeline("single", {"trace": []})  # warm-up
        whole: list[float] = []
        rerun: list[float] = []
        single: list[float] = []
        fresh: list[float] = []
        cached: list[float] = []
        deadline = time.monotonic() + TIME_LIMIT_S
        for run in range(RUNS):
            if time.monotonic() > deadline:
                break
            took, first = _timed(sdk.run_pipeline, "chain", {"trace": [run]})
            whole.append(took)
            took, again = _timed(sdk.rerun_pipeline_execution, first["execution_id"],
                                 from_step=names[-1])
            rerun.append(took)
            assert again["outputs"] == first["outputs"], (again, first)
            steps = sdk.get_pipeline_execution(again["execution_id"])["steps"]
            assert [s["status"] for s in steps] == ["Reused"] * (CHAIN - 1) + ["Succeeded"]
            single.append(_timed(sdk.run_pipeline, "single", {"trace": [run]})[0])
            fresh.append(_timed(sdk.run_pipeline, "cached", {"trace": [0]},
                                use_cache=False)[0])
            took, hit = _timed(sdk.run_pipeline, "cached", {"trace": [0]})
            cached.append(took)
            steps = sdk.get_pipeline_execution(hit["execution_id"])["steps"]
            assert all(s["status"] == "Cached" for s in steps), steps
    print(summary(f"whole {CHAIN}-step chain run          ", whole))
    print(summary("re-run from its last step          ", rerun))
    print(summary("one single-step run                ", single))
    print(f"re-run from the last step / one step (p50): "
          f"{percentile(rerun, 50) / percentile(single, 50):.1f}x; whole chain / one step: "
          f"{percentile(whole, 50) / percentile(single, 50):.1f}x")
    print(summary(f"fresh {CHAIN}-step run (use_cache=False)", fresh))
    print(summary(f"fully cached {CHAIN}-step run         ", cached))
    print(f"fully cached / fresh (p50): {percentile(cached, 50) / percentile(fresh, 50):.2f}x; "
          f"fully cached / python -c pass (p50): "
          f"{percentile(cached, 50) / percentile(spawn, 50):.1f}x")
