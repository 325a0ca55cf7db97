"""A stop while a fork server is still starting: stop_all returns at once, the starting
fork server killed (it waited for that start, up to START_TIMEOUT_S, before)."""

from __future__ import annotations

import os
import time

import psutil
from shipyard_service.orchestrators.local.forkservers import START_TIMEOUT_S, ForkServers
from shipyard_service.orchestrators.local.sandbox import Sandbox


def test_a_stop_does_not_wait_for_a_fork_server_still_starting(tmp_path):
    # An "interpreter" that never opens the fork server's socket: a start that hangs.
    python = tmp_path / "env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexec sleep 60\n")
    python.chmod(0o755)
    forks = ForkServers(tmp_path / "work", tmp_path / "code", Sandbox(tmp_path, mode="off"), 2)
    assert forks.get(python, {"PATH": os.environ["PATH"]}, []) is None  # started in background
    me = psutil.Process()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not [
            p for p in me.children(recursive=True) if p.name() == "sleep"]:
        time.sleep(0.02)
    starting = [p for p in me.children(recursive=True) if p.name() == "sleep"]
    assert starting, "the fork server never started"
    start = time.monotonic()
    forks.stop_all()
    elapsed = time.monotonic() - start
    assert elapsed < 3.0 < START_TIMEOUT_S, elapsed
    gone, alive = psutil.wait_procs(starting, timeout=5)
    assert not alive
