"""Stopping is clean: SIGINT (a terminal's Ctrl-C reaches the whole foreground process
group) or SIGTERM to the server's process group, many times in a row, idle and with a step
running (and a client long-polling its result): each stop ends every process of the
group, within the grace period, with the shutdown hook run and no runner left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

import psutil
import pytest
import requests
from shipyard_service.server import EXIT_RESERVE_S, GRACEFUL_TIMEOUT_S, HOOK_RESERVE_S

from ..helpers import Api, ServerProcess, create_step_http

SLOW = "import time\ndef run():\n    print('started', flush=True)\n    time.sleep(120)\n"
CYCLES = 50
HOOK_LINE = "shutdown hook:"


def _group_alive(pgid: int) -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive


def _wait_running(api: Api, execution_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = api.request("GET", f"/executions/{execution_id}").json()
        if body["status"] == "Running":
            return
        time.sleep(0.05)
    raise AssertionError(f"{execution_id} never ran: {body}")


def _runner_pids(data_dir) -> list[int]:
    """Runner processes of this server: their job file is under its data folder."""
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "shipyard_runner" in cmdline and str(data_dir) in cmdline:
            pids.append(proc.pid)
    return pids


@pytest.mark.slow  # 50 starts: once, in the default pass
@pytest.mark.timeout(900)
def test_fifty_stops_in_a_row_idle_and_busy(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    api = Api(server)
    create_step_http(api, "slow", {"main.py": SLOW}, kind="pipelines")
    server.stop()
    durations: list[float] = []
    previous_busy: str | None = None
    for cycle in range(CYCLES):
        sig = (signal.SIGINT, signal.SIGTERM)[cycle % 2]
        busy = cycle % 4 >= 2  # idle, idle, busy, busy: both signals in both states
        log_before = server.log_path.stat().st_size
        server.start()
        api = Api(server)
        if previous_busy:  # the execution the last stop interrupted was marked by its hook
            body = api.request("GET", f"/executions/{previous_busy}").json()
            assert body["status"] == "Failed" and "server stopped" in body["error"], body["error"]
            previous_busy = None
        poller = None
        if busy:
            r = api.request("POST", "/pipelines/slow/run", data={"json_inputs": "{}"})
            execution_id = r.json()["execution_id"]
            _wait_running(api, execution_id)
            runners = _runner_pids(data)
            assert runners
            # What the SDK's run_pipeline does meanwhile: a long-poll for the result.
            poller = threading.Thread(target=_long_poll, args=(api, execution_id), daemon=True)
            poller.start()
            time.sleep(0.2)
        pgid = server.proc.pid
        start = time.monotonic()
        os.killpg(pgid, sig)
        try:
            server.proc.wait(GRACEFUL_TIMEOUT_S + 5)
        except subprocess.TimeoutExpired:
            server.stop(signal.SIGKILL)
            raise AssertionError(f"cycle {cycle} ({sig.name}, busy={busy}): still running "
                                 f"after {GRACEFUL_TIMEOUT_S + 5} s") from None
        elapsed = time.monotonic() - start
        durations.append(elapsed)
        log = server.log_path.read_bytes()[log_before:].decode(errors="replace")
        where = f"cycle {cycle} ({sig.name}, busy={busy}, {elapsed:.2f} s)"
        assert elapsed < GRACEFUL_TIMEOUT_S, where + log[-2000:]
        assert HOOK_LINE in log, where + log[-2000:]
        assert "SIGKILL" not in log and "Traceback" not in log, where + log[-3000:]
        # No process left: nothing in the server's group, no runner of this server.
        deadline = time.monotonic() + 2
        while (_group_alive(pgid) or _runner_pids(data)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(pgid), where
        assert not _runner_pids(data), where
        if busy:
            previous_busy = execution_id
            poller.join(10)
    durations.sort()
    print(f"stops: {len(durations)}, median {durations[len(durations) // 2]:.2f} s, "
          f"max {durations[-1]:.2f} s")


def _long_poll(api: Api, execution_id: str) -> None:
    try:
        api.request("GET", f"/executions/{execution_id}/outputs?wait_for_completion=true",
                    timeout=30)
    except requests.RequestException:
        pass  # the server went away: expected


SLEEPER = "import time\ndef run():\n    time.sleep(60)\n    return {}\n"


def test_a_stop_with_a_low_latency_call_running_ends_within_the_hooks_deadline(tmp_path):
    """A low-latency replica drains its running calls for up to 25 s after SIGTERM. The
    orchestrator waited for it on its own grace (5 s, on top of the hook's other waits);
    it now waits until the shutdown hook's one deadline, then kills it, and says which
    phase of the stop was slow. (Without the sandbox: the replica is the runner itself,
    which drains; bubblewrap's own process ends at once and takes it along.)"""
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_SANDBOX": "off"}).start()
    api = Api(server)
    try:
        create_step_http(api, "sleeper", {"main.py": SLEEPER}, kind="pipelines")
        r = api.request("POST", "/endpoints", json={"pipeline_name": "sleeper", "name": "sl-ll",
                                                    "mode": "low_latency"})
        assert r.status_code in (200, 201), r.text
        token = r.json()["endpoint_token"]
        deadline = time.monotonic() + 120
        while api.request("GET", "/deployments/sl-ll").json()["status"] != "up":
            assert time.monotonic() < deadline, "the deployment never came up"
            time.sleep(0.2)
        r = requests.post(f"{api.env_url}/endpoints/sl-ll", timeout=30, allow_redirects=False,
                          headers={"Authorization": f"EndpointToken {token}",
                                   "craft-ai-client": "craft-ai-sdk@0.60.0"})
        assert r.status_code == 303, r.text
        _wait_running(api, r.json()["execution_id"])
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    log_before = server.log_path.stat().st_size
    pgid = server.proc.pid
    start = time.monotonic()
    os.kill(pgid, signal.SIGTERM)  # the server only: the replica hears it from the server
    server.proc.wait(GRACEFUL_TIMEOUT_S + 5)
    elapsed = time.monotonic() - start
    log = server.log_path.read_bytes()[log_before:].decode(errors="replace")
    assert HOOK_LINE in log and "SIGKILL" not in log, log[-3000:]
    # The replica's waits end at the hook's deadline (HOOK_RESERVE_S - EXIT_RESERVE_S =
    # 2.5 s after the hook began): they were its own STOP_GRACE_S, 5 s.
    replicas = re.search(r"stop phase 'resident replicas' took ([0-9.]+) s", log)
    assert replicas and float(replicas.group(1)) <= HOOK_RESERVE_S - EXIT_RESERVE_S + 0.2, log
    # Before the hook, gunicorn lets kept-alive connections (the replica's log shipper's)
    # linger up to 2 s: 2 + 2.5 s and the exit, against 2 + 5 s and more before.
    assert elapsed < 6.0, (elapsed, log[-3000:])
    deadline = time.monotonic() + 5
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(pgid)
