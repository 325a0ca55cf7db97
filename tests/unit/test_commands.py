"""run_logged: lines to the log, its time limit enforced on silent commands too, the whole
process group killed, its pipe closed."""

from __future__ import annotations

import os
import time

import psutil
import pytest
from shipyard_service.orchestrators.local.commands import run_logged


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_lines_and_exit_code():
    lines: list[str] = []
    code = run_logged(["bash", "-c", "echo one; printf 'two\\nthree'; exit 3"], dict(os.environ),
                      lines.append, 10)
    assert code == 3
    assert lines == ["one", "two", "three"]


def test_silent_command_is_stopped_at_its_limit():
    fds = _open_fds()
    start = time.monotonic()
    assert run_logged(["sleep", "30"], dict(os.environ), lambda _: None, 1.0) is None
    assert time.monotonic() - start < 3
    assert _open_fds() == fds  # the pipe is closed


def test_the_whole_group_is_killed(tmp_path):
    pid_file = tmp_path / "pid"
    lines: list[str] = []
    start = time.monotonic()
    # The grandchild is silent and holds the pipe: only the group kill ends it.
    code = run_logged(["bash", "-c", f"sleep 60 & echo $! > {pid_file}; echo started; wait"],
                      dict(os.environ), lines.append, 1.0)
    assert code is None and lines == ["started"]
    assert time.monotonic() - start < 3
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)


def test_child_exits_while_a_grandchild_holds_the_pipe(tmp_path):
    # The command is done; a background process it left must not hold the build up, and
    # does not outlive it.
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    code = run_logged(["bash", "-c", f"sleep 30 & echo $! > {pid_file}"], dict(os.environ),
                      lambda _: None, 20)
    assert code == 0
    assert time.monotonic() - start < 5
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)


def test_cannot_start():
    with pytest.raises(OSError):
        run_logged(["/nonexistent/command"], dict(os.environ), lambda _: None, 1)


def test_a_stop_kills_what_runs(tmp_path):
    import threading

    from shipyard_service.orchestrators.local.commands import kill_running

    pid_file = tmp_path / "pid"
    running: set = set()
    result: list = []
    thread = threading.Thread(target=lambda: result.append(run_logged(
        ["bash", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], dict(os.environ),
        lambda _: None, 120, running)))
    thread.start()
    deadline = time.monotonic() + 10
    while not (running and pid_file.exists() and pid_file.read_text().strip()) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running
    start = time.monotonic()
    kill_running(running)
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - start < 3
    assert result and result[0] != 0 and not running
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)
