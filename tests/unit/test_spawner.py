"""The runner spawner (orchestrators/local/spawner.py): every Popen on one long-lived thread,
the caller seeing its result or its error as if it had called Popen itself."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from shipyard_service.orchestrators.local.spawner import Spawner, SpawnerStopped


def test_processes_start_on_one_thread_that_outlives_the_callers():
    spawner = Spawner()
    procs: list[subprocess.Popen] = []

    def start() -> None:
        procs.append(spawner.popen([sys.executable, "-c", "import time; time.sleep(0.5)"],
                                   stdin=subprocess.DEVNULL))

    callers = [threading.Thread(target=start) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(30)
    assert len(procs) == 4
    names = {t.name for t in threading.enumerate()}
    assert "runner-spawner" in names  # the callers are gone, the spawner's thread is not
    assert [p.wait(30) for p in procs] == [0, 0, 0, 0]
    spawner.stop()
    assert "runner-spawner" not in {t.name for t in threading.enumerate()}


def test_errors_reach_the_caller_and_a_stopped_spawner_refuses():
    spawner = Spawner()
    with pytest.raises(FileNotFoundError):
        spawner.popen(["/nonexistent/shipyard-binary"])
    proc = spawner.popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert proc.wait(30) == 3
    spawner.stop()
    with pytest.raises(SpawnerStopped):
        spawner.popen([sys.executable, "-c", "pass"])
