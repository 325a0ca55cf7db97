"""Shared by benchmarks: a real server in a temporary folder, percentiles."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import Api, ServerProcess

# The elastic starts a benchmark compares: the default (forked, each into a sandbox of its
# own, by a fork server per step environment) and a fresh interpreter per execution
# (docs/sandbox.md).
ELASTIC_MODES = [("fork server (default)", {}),
                 ("fresh interpreter (SHIPYARD_FORK_SERVERS=0)", {"SHIPYARD_FORK_SERVERS": "0"})]


def each_elastic_mode(measure: Callable[[dict, list[float]], None], baseline: list[float]) -> None:
    """`measure(server_env, baseline)` once per elastic start mode, each under its heading."""
    for mode, env in ELASTIC_MODES:
        print(f"-- {mode}")
        measure(env, baseline)


@contextmanager
def running_server(env: dict | None = None):
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        server = ServerProcess(Path(tmp) / "data", env=env).start()
        try:
            yield server, Api(server)
        finally:
            server.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values_ms: list[float]) -> str:
    return (f"{name}: n={len(values_ms)} p50={percentile(values_ms, 50):.1f} ms "
            f"p95={percentile(values_ms, 95):.1f} ms mean={statistics.mean(values_ms):.1f} ms")


def python_c_pass_ms(runs: int) -> list[float]:
    """The baseline of every elastic figure: a fresh interpreter doing nothing, in ms."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append((time.perf_counter() - start) * 1000)
    return times


def sdk_for(server: ServerProcess):
    """Our SDK, signed in with the credentials the server printed."""
    from shipyard import CraftAiSdk

    creds = server.credentials
    return CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                      control_url=creds["control_url"])


class ProcessCpu:
    """CPU seconds used so far by process trees (a server with its workers, a database):
    a figure that other work on a shared machine inflates far less than wall time."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self._psutil = psutil
        self.roots = [psutil.Process(pid) for pid in pids]

    def seconds(self) -> float:
        total = 0.0
        for root in self.roots:
            for process in (root, *root.children(recursive=True)):
                try:
                    times = process.cpu_times()
                except self._psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
        return total

    def ms_per_call(self, fn: Callable[[], object], calls: int) -> float:
        """CPU ms per call of `fn`, after one warm-up call."""
        fn()
        before = self.seconds()
        for _ in range(calls):
            fn()
        return (self.seconds() - before) * 1000 / calls
