"""A slow stop explains itself (stopwatch.py): slow phases are logged by name, every
thread's stack is dumped when a stop passes STACKS_AFTER_S, and an exit that waits for a
stuck thread leaves by its deadline. The orchestrator's own waits end at the stop's deadline."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time

from shipyard_service import stopwatch
from shipyard_service.orchestrators.local.spawner import STOP_TIMEOUT_S, Spawner


def test_a_slow_phase_is_logged_by_name(monkeypatch, caplog):
    monkeypatch.setattr(stopwatch, "SLOW_PHASE_S", 0.05)
    with caplog.at_level(logging.WARNING, logger="shipyard"):
        with stopwatch.phase("quick"):
            pass
        with stopwatch.phase("resident replicas"):
            time.sleep(0.1)
    assert [r.getMessage()[:36] for r in caplog.records] == ["stop phase 'resident replicas' took "]


EXIT = textwrap.dedent("""
    import threading, time
    from shipyard_service import stopwatch

    stopwatch.STACKS_AFTER_S = 0.5
    # What the interpreter's exit waits for with no limit: a pool thread still at work.
    threading.Thread(target=time.sleep, args=(60,), name="stuck-upload").start()
    stopwatch.stop_began()
    stopwatch.leave_by(time.monotonic() + 1.5)
    print("hook done", flush=True)
""")


def test_an_exit_waiting_for_a_stuck_thread_leaves_by_its_deadline():
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", EXIT], capture_output=True, text=True,
                          timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hook done\n"
    assert elapsed < 10, elapsed  # the thread sleeps 60 s
    # The stacks at STACKS_AFTER_S (faulthandler's watchdog), then the names at the deadline.
    assert "Timeout (0:00:00.500000)!" in proc.stderr, proc.stderr
    assert "for: stuck-upload; leaving without them" in proc.stderr, proc.stderr
    assert proc.stderr.count("(most recent call first)") >= 4, proc.stderr


def test_the_spawner_stop_ends_at_the_deadline():
    """A Popen in flight on the spawner's thread (here: a child slow to exec) held its stop
    for STOP_TIMEOUT_S (10 s); with the server's deadline it waits until then only."""
    spawner = Spawner()
    started = threading.Event()
    results: list = []

    def spawn() -> None:
        started.set()
        proc = spawner.popen(["true"], preexec_fn=lambda: time.sleep(8))
        results.append(proc.wait())

    caller = threading.Thread(target=spawn)
    caller.start()
    assert started.wait(5)
    time.sleep(0.3)  # the Popen is under way on the spawner's thread
    start = time.monotonic()
    spawner.stop(deadline=start + 1.0)
    elapsed = time.monotonic() - start
    assert 0.8 < elapsed < 2.5 < STOP_TIMEOUT_S, elapsed
    caller.join(20)
    assert results == [0]  # the runner it was starting still started (and is reaped)
