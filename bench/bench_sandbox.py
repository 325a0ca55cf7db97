"""The elastic round trip (run_pipeline on a trivial step) with the step code sandbox
(bubblewrap, docs/sandbox.md) and without it, two servers measured in the same run,
alternating so that machine load falls on both alike."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import percentile, summary
from tests.helpers import Api, ServerProcess, create_step_http

RUNS = 30
TIME_LIMIT_S = 180
TRIVIAL = "def run(x):\n    return {'y': x + 1}\n"
FIELDS = {"inputs[0][name]": "x", "inputs[0][data_type]": "number",
          "outputs[0][name]": "y", "outputs[0][data_type]": "number"}


def _client(server: ServerProcess):
    from shipyard import CraftAiSdk

    creds = server.credentials
    create_step_http(Api(server), "trivial", {"main.py": TRIVIAL}, kind="pipelines",
                     fields=FIELDS)
    sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                     control_url=creds["control_url"])
    sdk.run_pipeline("trivial", inputs={"x": 0})  # warm-up: environment built, caches hot
    return sdk


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-sandbox-") as tmp:
        servers = {mode: ServerProcess(Path(tmp) / mode, env={"SHIPYARD_SANDBOX": mode})
                   for mode in ("off", "bwrap")}
        try:
            clients = {mode: _client(server.start()) for mode, server in servers.items()}
            rounds: dict[str, list[float]] = {mode: [] for mode in servers}
            deadline = time.monotonic() + TIME_LIMIT_S
            for i in range(RUNS):
                if time.monotonic() > deadline:
                    break
                for mode, sdk in clients.items():
                    start = time.perf_counter()
                    result = sdk.run_pipeline("trivial", inputs={"x": i})
                    rounds[mode].append((time.perf_counter() - start) * 1000)
                    assert result["outputs"]["y"] == i + 1, result
        finally:
            for server in servers.values():
                server.stop()
    print(summary("baseline  run_pipeline, SHIPYARD_SANDBOX=off  ", rounds["off"]))
    print(summary("sandboxed run_pipeline, SHIPYARD_SANDBOX=bwrap", rounds["bwrap"]))
    extra = percentile(rounds["bwrap"], 50) - percentile(rounds["off"], 50)
    ratio = percentile(rounds["bwrap"], 50) / percentile(rounds["off"], 50)
    print(f"sandbox cost: p50 +{extra:.1f} ms ({ratio:.2f}x the unsandboxed round trip)")
