"""Fork servers: one warm parent per step environment that forks a fresh runner per elastic
execution, each in a sandbox of its own, instead of starting an interpreter (issue 16).

A fork server is `python -m shipyard_runner forkserver` in the step's environment, started
through the sandbox like any runner. Its sandbox sees the environment, the runner and SDK
packages, every step's code (read-only), its own work root and its socket's folder; it
never runs step code itself. Each execution is forked by it into a sandbox of its own
(`--isolate`, shipyard_runner/forkserver.py): new user, mount, IPC and pid namespaces, a
fresh /tmp and /dev/shm, and of the folders above only its own work folder and its own
step's code. Two executions running at the same time cannot see each other's files or
signal each other; each is a process that never ran another execution's code, and the
fork server never reads an execution's variables (its children would inherit them).

- The first execution of an environment starts cold and asks for a fork server, which
  one thread starts in the background: no execution waits for a fork server, and a burst
  (a graph's fan-out) is never slower than cold starts.
- At most `limit` fork servers stay warm. The least recently used one is *retired*: it
  takes no new execution and exits once those it runs have ended (none is killed).
- A fork server whose environment folder was replaced (rebuilt) is retired too.
- Where a per-execution sandbox cannot be made (user namespaces forbidden), the fork
  server refuses to start and executions start cold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ...stopwatch import time_left
from .sandbox import Sandbox

log = logging.getLogger(__name__)

# A fork server's work root: fork-<pid of the API process that started it>-<20 hex>
# (executions' work folders, beside them, are named <step>-<5 characters>).
ROOT_NAME = re.compile(r"fork-(\d+)-[0-9a-f]{20}")

START_TIMEOUT_S = 20.0
RETRY_AFTER_S = 60.0  # after a fork server failed to start for an environment
LAUNCH_TIMEOUT_S = 10.0


class ForkServerError(RuntimeError):
    """The fork server could not take an execution: start it cold."""


@dataclass
class ForkedRun:
    """One execution handed to a fork server: its connection carries the exit code."""

    conn: socket.socket
    pid: int  # in the fork server's pid namespace: not a pid of this machine's
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self) -> tuple[int, str]:
        """(exit code, why when the fork server could not say)."""
        data = b""
        try:
            self.conn.settimeout(None)
            while not data.endswith(b"\n"):
                chunk = self.conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            return -signal.SIGKILL, f"lost the fork server: {exc}"
        finally:
            self.conn.close()
        try:
            return int(json.loads(data)["exit"]), ""
        except (ValueError, KeyError, TypeError):
            return -signal.SIGKILL, "the fork server stopped before the runner ended"

    def kill(self) -> None:
        with self._lock:
            try:
                self.conn.sendall(b'{"kill": true}\n')
            except OSError:
                pass


class ForkServer:
    def __init__(self, python: Path, root: Path, socket_dir: Path, sandbox: Sandbox,
                 env: dict[str, str], read_only: list[Path], code_root: Path):
        self.python, self.root, self.code_root = python, root, code_root
        self.socket_path = socket_dir / "fork.sock"
        self.sandbox, self.env, self.read_only = sandbox, env, read_only
        self.identity = _identity(python)
        self.proc: subprocess.Popen | None = None

    def start(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Start it and wait (START_TIMEOUT_S at most) for its socket; `cancelled()` true
        meanwhile (the API process is stopping) ends the wait at once, the server killed."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        socket_dir = self.socket_path.parent
        socket_dir.mkdir(parents=True, exist_ok=True)
        command = [str(self.python), "-s", "-m", "shipyard_runner", "forkserver",
                   "--socket", str(self.socket_path)]
        if self.sandbox.active:  # each execution in a sandbox of its own, inside this one
            command += ["--isolate"]
            for folder in (self.root, socket_dir, self.code_root):
                command += ["--hide", str(folder)]
        argv = self.sandbox.wrap(command, self.root, read_only=self.read_only,
                                 writable=[socket_dir])
        with open(self.root / "forkserver.log", "wb") as out:
            self.proc = self.sandbox.popen(argv, cwd=self.root, env=self.env,
                                           stdin=subprocess.PIPE, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self._log_tail()
                self.stop()
                raise ForkServerError(f"the fork server exited: {tail}")
            if self.socket_path.exists():
                return
            if cancelled():
                self.stop()
                raise ForkServerError("the API process is stopping")
            time.sleep(0.01)
        self.stop()
        raise ForkServerError("the fork server did not start in time")

    def _log_tail(self) -> str:
        try:
            return (self.root / "forkserver.log").read_text(errors="replace")[-2000:].strip()
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self, job: Path, work: Path, code_dir: Path, env: dict[str, str],
               log_path: Path) -> ForkedRun:
        request = json.dumps({"job": str(job), "cwd": str(work), "code_dir": str(code_dir),
                              "env": env, "log": str(log_path)}).encode("utf-8") + b"\n"
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(LAUNCH_TIMEOUT_S)
            conn.connect(str(self.socket_path))
            conn.sendall(request)
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            answer = json.loads(data) if data else {}
        except (OSError, ValueError) as exc:
            conn.close()
            raise ForkServerError(f"the fork server did not take the execution: {exc}") from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("pid"), int):
            conn.close()
            raise ForkServerError(f"the fork server refused the execution: {answer}")
        return ForkedRun(conn, answer["pid"])

    def retire(self) -> None:
        """No new execution; it exits once those it runs have ended (end of its stdin)."""
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def stop(self, deadline: float | None = None) -> None:
        """Now, with whatever it runs (its exit waited for until `deadline`, 5 s at most)."""
        self.retire()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(time_left(deadline, 5.0))
            except subprocess.TimeoutExpired:
                log.warning("fork server %s not reaped by the stop's deadline", self.proc.pid)
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.socket_path.parent, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


class ForkServers:
    """The fork servers of this API process, one per step environment (interpreter), and
    the thread that starts them."""

    def __init__(self, work_root: Path, code_root: Path, sandbox: Sandbox, limit: int):
        self.work_root, self.code_root = work_root, code_root
        self.sandbox = sandbox
        self.limit = max(1, limit)
        self._servers: OrderedDict[str, ForkServer] = OrderedDict()  # least recent first
        self._retired: list[ForkServer] = []
        self._wanted: OrderedDict[str, tuple[Path, dict[str, str], list[Path]]] = OrderedDict()
        self._failed: dict[str, float] = {}  # environment -> when its fork server failed
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._stopped = False
        # Unix socket paths are short (108 bytes): a private folder under the temp dir.
        self._socket_root: Path | None = None
        _remove_stale_roots(work_root)

    def get(self, python: Path, env: dict[str, str], read_only: list[Path],
            tenant: str = "") -> ForkServer | None:
        """The fork server of a step environment for one tenant (a project's environment)
        when it is up; else None, and it is started in the background (the caller starts
        its runner cold). Tenants never share one: a program a step starts is dumpable
        again after its exec, so its /proc entries are open to the fork server's other
        children (docs/sandbox.md)."""
        key = f"{python}\0{tenant}"
        finished = []
        with self._cond:
            if self._stopped:
                return None
            finished = [s for s in self._retired if not s.alive]
            self._retired = [s for s in self._retired if s.alive]
            server = self._servers.get(key)
            if server is not None and (not server.alive or server.identity != _identity(python)):
                del self._servers[key]
                self._retired.append(server)
                server.retire()
                server = None
            if server is not None:
                self._servers.move_to_end(key)
            elif time.monotonic() - self._failed.get(key, -RETRY_AFTER_S) >= RETRY_AFTER_S:
                self._wanted[key] = (Path(python), env, read_only)
                self._ensure_thread()
                self._cond.notify_all()
        for old in finished:
            old.cleanup()
        return server

    def _ensure_thread(self) -> None:
        # Started on first use, in the process that uses it: a thread does not survive a
        # fork (gunicorn workers are forked from a master that may have built the app).
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._serve, name="fork-server-starter",
                                            daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not self._wanted:
                    self._cond.wait()
                if self._stopped:
                    return
                key, (python, env, read_only) = self._wanted.popitem(last=False)
                if key in self._servers:
                    continue
                if self._socket_root is None:
                    self._socket_root = Path(tempfile.mkdtemp(prefix="shipyard-fs-"))
                # Its own folders: a retired one of the same environment may still drain.
                name = hashlib.sha256(key.encode()).hexdigest()[:12] + secrets.token_hex(4)
                server = ForkServer(python, self.work_root / f"fork-{os.getpid()}-{name}",
                                    self._socket_root / name, self.sandbox, env, read_only,
                                    self.code_root)
            try:
                # Not waited for past a stop: stop_all joins this thread.
                server.start(cancelled=lambda: self._stopped)
            except Exception as exc:  # noqa: BLE001 - its executions start cold; say why
                if self._stopped:
                    return
                log.warning("no fork server for %s (executions start cold): %s", python, exc)
                with self._cond:
                    self._failed[key] = time.monotonic()
                continue
            retired = []
            with self._cond:
                stopped = self._stopped
                if not stopped:
                    self._failed.pop(key, None)
                    self._servers[key] = server
                    while len(self._servers) > self.limit:
                        retired.append(self._servers.popitem(last=False)[1])
                    self._retired += retired
            if stopped:
                server.stop()
            for old in retired:
                old.retire()

    def stop_all(self, deadline: float | None = None) -> None:
        with self._cond:
            self._stopped = True
            servers = list(self._servers.values()) + self._retired
            self._servers.clear()
            self._retired = []
            self._wanted.clear()
            thread, mine = self._thread, self._pid == os.getpid()
            self._cond.notify_all()
        for server in servers:
            server.stop(deadline)
        if thread is not None and mine and thread is not threading.current_thread():
            thread.join(time_left(deadline, START_TIMEOUT_S + 5))
        if self._socket_root is not None:
            shutil.rmtree(self._socket_root, ignore_errors=True)


def _remove_stale_roots(work_root: Path) -> None:
    """Remove the work roots of fork servers whose API process is gone (a server killed
    hard: its fork servers died with it, their folders stayed). A root is named after the
    pid of the process that started it; any process of that pid (the same one, another
    worker, or a reused pid) keeps it."""
    try:
        folders = list(Path(work_root).iterdir())
    except OSError:  # no work root yet
        return
    for folder in folders:
        owner = ROOT_NAME.fullmatch(folder.name)
        if owner and folder.is_dir() and not psutil.pid_exists(int(owner.group(1))):
            shutil.rmtree(folder, ignore_errors=True)


def _identity(python: Path) -> tuple | None:
    """Which folder the environment is: a rebuilt one is a new folder, which a fork server
    started before cannot see."""
    try:
        st = os.stat(Path(python).parent.parent)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns)
