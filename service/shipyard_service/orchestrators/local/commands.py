"""Commands whose output goes to a build log line by line, within a time limit."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable

# How often a command that prints nothing is checked for having exited.
_POLL_S = 0.5


def run_logged(cmd: list[str], env: dict, log: Callable[[str], None],
               timeout_s: float, running: set | None = None) -> int | None:
    """Run `cmd` with each output line sent to `log`: its exit code, or None when it ran
    past `timeout_s`, silent or not; its whole process group is then killed (uv and apt-get
    start children of their own; what a finished command leaves in it is killed as well).
    While it runs, its process is in `running`, for its owner's `kill_running` at stop.
    OSError when it cannot start."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    if running is not None:
        running.add(proc)
    try:
        return _follow(proc, log, timeout_s)
    finally:
        if running is not None:
            running.discard(proc)


def kill_running(running: set) -> None:
    """End the commands of `running` now, with their process groups (a server stopping)."""
    for proc in list(running):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _follow(proc: subprocess.Popen, log: Callable[[str], None], timeout_s: float) -> int | None:
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    with proc.stdout, selectors.DefaultSelector() as selector:
        fd = proc.stdout.fileno()
        selector.register(fd, selectors.EVENT_READ)
        pending = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(proc)
                return None
            if not selector.select(min(remaining, _POLL_S)):
                # Silent: a child that exited while a grandchild still holds the pipe
                # open must not keep us waiting for an end of file.
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                log(line.decode(errors="replace").rstrip("\r"))
        if pending:
            log(pending.decode(errors="replace"))
    try:
        code = proc.wait(max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None
    # What it left behind in its group (a daemon detaches into a session of its own).
    _kill_group(proc)
    return code


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
