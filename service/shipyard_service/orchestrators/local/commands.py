"""Commands whose output goes to a build log line by line, within a time limit."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def run_logged(cmd: list[str], env: dict, log: Callable[[str], None],
               timeout_s: float) -> int | None:
    """Run `cmd` with each output line sent to `log`: its exit code, or None when it ran
    past `timeout_s` and was killed. OSError when it cannot start."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    for line in proc.stdout:
        log(line.rstrip("\n"))
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return None
    return proc.wait()
