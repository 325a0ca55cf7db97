"""Fork servers: one warm parent per step environment (its interpreter and step code) that
forks a fresh runner process per elastic execution, instead of starting an interpreter.

Each fork server is `python -m shipyard_runner forkserver` in the step's environment, started
through the sandbox like any runner (the sandbox sees the step's environment and code, the
runner and SDK packages, its own work root and its socket folder). It imported only the
runner: each child imports the step's module for the first time, gets its own variables,
folder and session, and never ran another execution's code (shipyard_runner/forkserver.py).

What a shared sandbox changes: executions of one step that run at the same time share the
sandbox's view (each other's work folders, same user); executions of other steps do not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .sandbox import Sandbox

log = logging.getLogger(__name__)

START_TIMEOUT_S = 20.0
MAX_SERVERS = 16  # distinct step environments kept warm; the least recently used goes


class ForkServerError(RuntimeError):
    """The fork server could not start or take an execution: start a runner cold."""


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
    def __init__(self, python: Path, code_dir: Path, root: Path, socket_dir: Path,
                 sandbox: Sandbox, env: dict[str, str], read_only: list[Path]):
        self.python, self.code_dir, self.root = python, code_dir, root
        self.socket_path = socket_dir / "fork.sock"
        self.sandbox, self.env, self.read_only = sandbox, env, read_only
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self.sandbox.wrap(
            [str(self.python), "-s", "-m", "shipyard_runner", "forkserver", "--socket",
             str(self.socket_path)], self.root, read_only=self.read_only,
            writable=[self.socket_path.parent])
        with open(self.root / "forkserver.log", "wb") as out:
            self.proc = self.sandbox.popen(argv, cwd=self.root, env=self.env,
                                           stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ForkServerError(f"the fork server exited: {self._log_tail()}")
            if self.socket_path.exists():
                return
            time.sleep(0.01)
        self.stop()
        raise ForkServerError("the fork server did not start in time")

    def _log_tail(self) -> str:
        try:
            return (self.root / "forkserver.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self, job: Path, work: Path, env: dict[str, str], log_path: Path) -> ForkedRun:
        request = json.dumps({"job": str(job), "cwd": str(work), "env": env,
                              "log": str(log_path)}).encode("utf-8") + b"\n"
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(10)
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

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait(5)
        shutil.rmtree(self.socket_path.parent, ignore_errors=True)


class ForkServers:
    """The fork servers of this API process, one per (interpreter, step code)."""

    def __init__(self, work_root: Path, sandbox: Sandbox):
        self.work_root = work_root
        self.sandbox = sandbox
        self._servers: dict[tuple[str, str], ForkServer] = {}
        self._lock = threading.Lock()
        self._stopped = False
        # Unix socket paths are short (108 bytes): a private folder under the temp dir.
        self._socket_root: Path | None = None

    def get(self, python: Path, code_dir: Path, env: dict[str, str],
            read_only: list[Path]) -> ForkServer:
        key = (str(python), str(code_dir))
        with self._lock:
            if self._stopped:
                raise ForkServerError("the orchestrator is stopping")
            server = self._servers.pop(key, None)
            if server is not None and not server.alive:
                server.stop()
                server = None
            if server is None:
                if self._socket_root is None:
                    self._socket_root = Path(tempfile.mkdtemp(prefix="shipyard-fs-"))
                name = hashlib.sha256("\0".join(key).encode()).hexdigest()[:16]
                server = ForkServer(python, code_dir, self.work_root / f"fork-{name}",
                                    self._socket_root / name, self.sandbox, env, read_only)
                server.start()
            self._servers[key] = server  # most recently used last
            while len(self._servers) > MAX_SERVERS:
                oldest = next(iter(self._servers))
                self._servers.pop(oldest).stop()
            return server

    def stop_all(self) -> None:
        with self._lock:
            self._stopped = True
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            server.stop()
        if self._socket_root is not None:
            shutil.rmtree(self._socket_root, ignore_errors=True)
