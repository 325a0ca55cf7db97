"""Warm spares: a runner per step environment started ahead of its execution, so that an
elastic execution does not wait for an interpreter to start (issue 16).

A spare is `python -m shipyard_runner spare` in the step's environment, started through the
sandbox exactly as a cold runner is: a bubblewrap sandbox of its own, a fresh work folder of
its own, a private /tmp, `nobody` when the server is root, and none of the server's
secrets in its variables. It imports the runner, says `ready`, and waits on its stdin for
ONE execution (its job file, written into the spare's folder, and its variables), runs it
and exits. So each execution still runs in a fresh process that never ran another
execution's code, in a sandbox that no other execution shares: the isolation of a cold
start, without waiting for the start.

After each elastic start of an environment a new spare for it is wanted. One thread starts
them one at a time, and only while fewer executions run than the machine has cores: a
spare's start then takes a core nothing else wanted, and a burst of executions (a graph's
fan-out) starts cold, as fast as before, instead of racing its own spares. At most `limit`
spares wait, one per environment; the least recently used one is stopped first, and only
a waiting spare is ever stopped. A spare whose environment or step code was replaced
since it started (another folder at the same path) is stopped instead of used.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0
READY_POLL_S = 0.01  # how soon the starter notices its spare was taken before it was ready
STOP_TIMEOUT_S = 10.0
IDLE_CHECK_S = 0.5  # how often the starter re-counts running executions while it waits

# (interpreter, step code): what a spare is started for.
SpareKey = tuple[str, str]
# Starts `python -m shipyard_runner spare` for (interpreter, step code) in a work folder.
Launcher = Callable[[Path, Path, Path], subprocess.Popen]


class SpareUnusable(RuntimeError):
    """The spare ended before it took its execution: start that execution cold."""


@dataclass
class Spare:
    key: SpareKey
    identity: tuple  # of the environment and step code folders it was started with
    work: Path  # its own work folder, already in its sandbox: the execution's folder
    proc: subprocess.Popen

    def hand(self, job: Path, env: dict[str, str]) -> None:
        """Give the spare its execution: the job file and exactly these variables."""
        request = json.dumps({"job": str(job), "env": env}).encode("utf-8") + b"\n"
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(request)
            self.proc.stdin.close()
        except (OSError, ValueError) as exc:
            raise SpareUnusable(f"the spare ended before its execution: {exc}") from exc

    def wait_ready(self, timeout_s: float, waiting: Callable[[], bool]) -> bool | None:
        """Whether it said `ready` (imported the runner) in time; None when it stopped
        `waiting` first (it was taken: its execution reports how it went). Closes its
        stdout either way."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        data = b""
        try:
            while b"\n" not in data:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if not select.select([fd], [], [], min(left, READY_POLL_S))[0]:
                    if not waiting():
                        return None
                    continue
                chunk = os.read(fd, 64)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"ready")
        except (OSError, ValueError):
            return False
        finally:
            self.proc.stdout.close()

    def log_tail(self) -> str:
        try:
            return (self.work / "runner.log").read_text(errors="replace")[-2000:].strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """End a spare that has no execution, and remove its folder."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # end of input: it exits by itself
        except (OSError, ValueError):
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("spare %s did not end", self.proc.pid)
        shutil.rmtree(self.work, ignore_errors=True)


class Spares:
    """The waiting spares of this API process and the thread that starts them."""

    def __init__(self, work_root: Path, limit: int, launch: Launcher,
                 running: Callable[[], int]):
        self.work_root = work_root
        self.limit = max(0, limit)
        self._launch = launch
        self._running = running  # executions running now
        self._cores = len(os.sched_getaffinity(0))
        self._idle: OrderedDict[SpareKey, Spare] = OrderedDict()  # least recently used first
        self._wanted: OrderedDict[SpareKey, tuple[Path, Path]] = OrderedDict()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._stopped = False

    def take(self, python: Path, code_dir: Path) -> Spare | None:
        """The spare waiting for this environment, if any (even one still starting)."""
        with self._cond:
            spare = self._idle.pop(_key(python, code_dir), None)
        if spare is None:
            return None
        if spare.proc.poll() is not None or spare.identity != _identity(python, code_dir):
            spare.stop()
            return None
        return spare

    def want(self, python: Path, code_dir: Path) -> None:
        """A spare for this environment, for its next execution."""
        key = _key(python, code_dir)
        with self._cond:
            if self._stopped or self.limit == 0:
                return
            if key in self._idle:
                self._idle.move_to_end(key)
                return
            self._wanted[key] = (Path(python), Path(code_dir))
            self._wanted.move_to_end(key)
            while len(self._wanted) > self.limit:
                self._wanted.popitem(last=False)
            self._ensure_thread()
            self._cond.notify_all()

    def wake(self) -> None:
        """An execution ended: a core may be free for a spare."""
        with self._cond:
            self._cond.notify_all()

    def _ensure_thread(self) -> None:
        # Started on first use, in the process that uses it: a thread does not survive a
        # fork (gunicorn workers are forked from a master that may have built the app).
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._serve, name="spare-starter",
                                            daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._wanted
                                             or self._running() >= self._cores):
                    self._cond.wait(IDLE_CHECK_S)
                if self._stopped:
                    return
                key, (python, code_dir) = self._wanted.popitem()  # the latest wanted first
            try:
                spare = self._start(key, python, code_dir)
            except Exception as exc:  # noqa: BLE001 - its execution starts cold; say why
                log.warning("no spare for %s: %s", code_dir, exc)
                continue
            evicted = []
            with self._cond:
                if self._stopped:
                    evicted.append(spare)
                else:
                    evicted += [s for s in [self._idle.pop(key, None)] if s is not None]
                    self._idle[key] = spare
                    while len(self._idle) > self.limit:
                        evicted.append(self._idle.popitem(last=False)[1])
            for old in evicted:
                old.stop()
            # One spare starts at a time, unless the one starting is taken: its successor
            # is already wanted.
            if spare.wait_ready(READY_TIMEOUT_S, functools.partial(self._waiting, key, spare)) is False:
                with self._cond:
                    failed = self._idle.get(key) is spare
                    if failed:
                        del self._idle[key]
                if failed:
                    log.warning("the spare for %s did not start: %s", code_dir, spare.log_tail())
                    spare.stop()

    def _waiting(self, key: SpareKey, spare: Spare) -> bool:
        with self._cond:
            return self._idle.get(key) is spare and not self._stopped

    def _start(self, key: SpareKey, python: Path, code_dir: Path) -> Spare:
        identity = _identity(python, code_dir)
        work = self.work_root / f"spare-{secrets.token_hex(8)}"
        work.mkdir(parents=True)
        try:
            proc = self._launch(python, code_dir, work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return Spare(key, identity, work, proc)

    def stop_all(self) -> None:
        with self._cond:
            self._stopped = True
            spares = list(self._idle.values())
            self._idle.clear()
            self._wanted.clear()
            thread, mine = self._thread, self._pid == os.getpid()
            self._cond.notify_all()
        for spare in spares:
            spare.stop()
        if thread is not None and mine and thread is not threading.current_thread():
            thread.join(READY_TIMEOUT_S)
            if thread.is_alive():
                log.warning("the spare starter thread did not end")


def _key(python: Path, code_dir: Path) -> SpareKey:
    return (str(python), str(code_dir))


def _identity(python: Path, code_dir: Path) -> tuple:
    """Which folders are at these paths: replaced ones (a step updated, an environment
    rebuilt) are new folders, which a spare started before cannot see."""
    identity = []
    for folder in (Path(python).parent.parent, Path(code_dir)):
        try:
            st = os.stat(folder)
            identity.append((st.st_dev, st.st_ino, st.st_ctime_ns))
        except OSError:
            identity.append(None)
    return tuple(identity)
