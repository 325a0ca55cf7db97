"""Low-latency deployments in embedded mode: supervised resident runner processes.

Each replica ("pod") is `python -m shipyard_runner serve` on a loopback port. A supervisor
thread per replica starts it, waits for its health check, restarts it when it dies (its
in-flight executions end failed) and reports state changes. Executions go to the runner
over its Unix socket (`--socket`, authenticated with the deployment's runner token) on
kept-open connections: HTTP parsing on both ends cost more than a trivial call itself."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection
from pathlib import Path

from ...stopwatch import time_left
from ..base import (
    Answer,
    Callbacks,
    DeploymentSpec,
    DeploymentState,
    Launch,
    Pod,
    answer_once,
    combined_state,
)
from .processes import PASSED_THROUGH, RUNNER_PATH, SDK_PATH, job_document, runner_read_only
from .sandbox import Sandbox

START_TIMEOUT_S = 300.0
MAX_START_FAILURES = 3
BACKOFF_S = (0.5, 1, 2, 5, 10, 30)
DISPATCH_WAIT_S = 120.0
STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Replica:
    pod_id: str
    status: str = "Pending"  # Pending | Running | Restarting | Failed
    port: int = 0
    proc: subprocess.Popen | None = None
    inflight: dict = field(default_factory=dict)  # run key -> future of its Answer
    ever_ready: bool = False
    socket_path: str = ""
    generation: int = 0  # of the process: connections to an earlier one are dropped
    idle: list = field(default_factory=list)  # (generation, open connection)

    def connection(self, authkey: bytes) -> tuple[int, Connection]:
        """An idle connection to the current process, or a new one (the key handshake
        and, in the runner, a thread are paid once per connection, not per call)."""
        generation = self.generation
        while True:
            try:
                made_for, conn = self.idle.pop()
            except IndexError:
                break
            if made_for == generation:
                return generation, conn
            conn.close()
        return generation, Client(self.socket_path, family="AF_UNIX", authkey=authkey)

    def keep(self, generation: int, conn: Connection) -> None:
        if generation == self.generation and len(self.idle) < 64:
            self.idle.append((generation, conn))
        else:
            conn.close()


class ResidentDeployment:
    def __init__(self, spec: DeploymentSpec, python: Path, root: Path, callbacks: Callbacks,
                 sandbox: Sandbox):
        self.spec = spec
        self.sandbox = sandbox
        self.python = python
        self.root = root
        self.callbacks = callbacks
        self.lock = threading.Condition()
        self.stopping = False
        self._stopped_procs: list = []
        self.failed_detail: str | None = None
        # A step's runners carry its name ('.' is in no resource name: no clash).
        base = spec.name if spec.step_name is None else f"{spec.name}.{spec.step_name}"
        self.replicas = [Replica(pod_id=f"{base}-{i}") for i in range(spec.replicas)]
        # Each runner's socket is in a folder of its own, the one folder it may write
        # besides its work folder. Unix socket paths are limited to ~107 bytes: a private
        # short folder if needed.
        self._socket_dir = None
        if len(str(root / f"{base}-{spec.replicas}" / "sockets" / "r.sock")) > 100:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="shipyard-"))
        for i, replica in enumerate(self.replicas):
            folder = (self._socket_dir / str(i) if self._socket_dir
                      else root / replica.pod_id / "sockets")
            replica.socket_path = str(folder / "r.sock")
        self._next = itertools.cycle(range(spec.replicas))
        self.threads = [threading.Thread(target=self._supervise, args=(r,), daemon=True,
                                         name=f"resident-{r.pod_id}") for r in self.replicas]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _environment(self, replica: Replica) -> dict[str, str]:
        spec = self.spec
        env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
        env.update({
            "PYTHONPATH": os.pathsep.join([RUNNER_PATH, SDK_PATH]),
            "PYTHONUNBUFFERED": "1",
            "SHIPYARD_API_URL": spec.environment_url,
            "SHIPYARD_DEPLOYMENT_TOKEN": spec.runner_token,
            "SHIPYARD_POD_ID": replica.pod_id,
            "SHIPYARD_ENVIRONMENT_URL": spec.environment_url,
            "CRAFT_AI_ENVIRONMENT_URL": spec.environment_url,
            "SHIPYARD_CONTROL_URL": spec.control_url,
            "CRAFT_AI_CONTROL_URL": spec.control_url,
            "SDK_VERBOSE_LOG": "false",
        })
        return env

    def _spawn(self, replica: Replica) -> subprocess.Popen:
        spec = self.spec
        replica.port = _free_port()
        replica.generation += 1
        work = self.root / replica.pod_id
        work.mkdir(parents=True, exist_ok=True)
        socket_dir = Path(replica.socket_path).parent
        socket_dir.mkdir(parents=True, exist_ok=True)
        log = open(work / "runner.log", "ab")
        argv = self.sandbox.wrap(
            [str(self.python), "-s", "-m", "shipyard_runner", "serve", "--host", "127.0.0.1",
             "--port", str(replica.port), "--code-dir", str(spec.code_dir),
             "--function-path", spec.function_path, "--function-name", spec.function_name,
             "--max-parallel", str(spec.max_parallel), "--api-url", spec.environment_url,
             "--socket", replica.socket_path],
            work, read_only=runner_read_only(self.python, spec.code_dir),
            writable=[socket_dir])
        try:
            proc = self.sandbox.popen(
                argv, cwd=work, env=self._environment(replica), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        (self.root / f"{replica.pod_id}.pid").write_text(str(proc.pid))
        return proc

    def _healthy(self, replica: Replica) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=2)
            conn.request("GET", "/health")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def _set(self, replica: Replica, status: str) -> None:
        with self.lock:
            replica.status = status
            self.lock.notify_all()
        self.callbacks.deployment_state_changed(self.spec.deployment_id)

    def _tail(self, replica: Replica) -> str:
        try:
            data = (self.root / replica.pod_id / "runner.log").read_bytes()[-3000:]
            return data.decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def _supervise(self, replica: Replica) -> None:
        failures = 0
        attempt = 0
        while not self.stopping:
            proc = self._spawn(replica)
            with self.lock:
                replica.proc = proc
                stopped_meanwhile = self.stopping
            if stopped_meanwhile:  # not in the list stop() signals: end it here
                self._kill(proc)
                proc.wait()
                return
            deadline = time.monotonic() + START_TIMEOUT_S
            ready = False
            while not self.stopping and proc.poll() is None and time.monotonic() < deadline:
                if self._healthy(replica):
                    ready = True
                    break
                time.sleep(0.05)
            if ready:
                replica.ever_ready = True
                failures = 0
                attempt = 0
                self._set(replica, "Running")
                proc.wait()
            if self.stopping:
                break
            if proc.poll() is None:  # never became healthy in time
                self._kill(proc)
            code = proc.wait()
            detail = self._tail(replica)
            self._fail_inflight(replica, code, detail)
            if not ready:
                failures += 1
            self.callbacks.deployment_log(
                self.spec.deployment_id, replica.pod_id, "stderr",
                f"Resident runner {replica.pod_id} exited with code {code}; restarting")
            if failures >= MAX_START_FAILURES and not replica.ever_ready:
                self.failed_detail = (f"The resident runner could not start (exit code {code}): "
                                      f"{detail[-1500:]}")
                self._set(replica, "Failed")
                return
            self._set(replica, "Restarting")
            time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1

    def _fail_inflight(self, replica: Replica, code: int, detail: str) -> None:
        with self.lock:
            lost = list(replica.inflight.values())
            replica.inflight.clear()
        for future in lost:
            answer_once(future, Answer(None, code, f"the resident runner {replica.pod_id} died"))

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        self.signal_stop()
        self.finish_stop(time.monotonic() + STOP_GRACE_S)

    def signal_stop(self) -> None:
        """SIGTERM to every replica at once; `finish_stop` waits for them. (One by one, a
        server stopping many deployments took longer than its own stop timeout.)"""
        with self.lock:
            self.stopping = True
            self._stopped_procs = [r.proc for r in self.replicas if r.proc is not None]
            self.lock.notify_all()
        for proc in self._stopped_procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass

    def finish_stop(self, deadline: float) -> None:
        for proc in self._stopped_procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill(proc)  # still flushing logs to an API that is going away
                proc.wait()
        for replica in self.replicas:
            (self.root / f"{replica.pod_id}.pid").unlink(missing_ok=True)
            Path(replica.socket_path).unlink(missing_ok=True)
            for _, conn in replica.idle:
                conn.close()
            replica.idle.clear()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def state(self) -> DeploymentState:
        with self.lock:
            pods = [Pod(pod_id=r.pod_id, status=r.status) for r in self.replicas]
            running = [r for r in self.replicas if r.status == "Running"]
            if running:
                status = "up"
            elif any(r.status == "Failed" for r in self.replicas):
                status = "creation_failed"
            elif any(r.ever_ready for r in self.replicas):
                status = "down_retrying"
            else:
                status = "creation_pending"
        return DeploymentState(status=status, pods=pods, detail=self.failed_detail)

    def pick(self, wait_s: float = DISPATCH_WAIT_S) -> Replica | None:
        """A running replica, waiting (up to wait_s) while none is up."""
        deadline = time.monotonic() + wait_s
        with self.lock:
            while not self.stopping:
                for _ in range(len(self.replicas)):
                    replica = self.replicas[next(self._next)]
                    if replica.status == "Running":
                        return replica
                if any(r.status == "Failed" for r in self.replicas) and not any(
                        r.status in ("Pending", "Restarting") for r in self.replicas):
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.lock.wait(min(remaining, 0.5))
        return None


class Residents:
    def __init__(self, root: Path, python_of: Callable[[str], Path], callbacks_ref,
                 sandbox: Sandbox, remote_inputs: Callable[[dict], dict]):
        self.root = root
        self.sandbox = sandbox
        # A sandboxed resident runner cannot read the data folder, where file inputs are
        # kept: they go to it as signed URLs, which it downloads.
        self.remote_inputs = remote_inputs
        self.python_of = python_of
        self._callbacks_ref = callbacks_ref
        # By (deployment id, step name): a multi-step pipeline has residents per step.
        self._deployments: dict[tuple[int, str | None], ResidentDeployment] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=128, thread_name_prefix="dispatch")

    @property
    def callbacks(self) -> Callbacks:
        return self._callbacks_ref()

    def kill_orphans(self) -> None:
        """Runners left by a server that crashed: nobody supervises them any more."""
        import psutil

        if not self.root.exists():
            return
        for pid_file in self.root.glob("*.pid"):
            try:
                proc = psutil.Process(int(pid_file.read_text()))
                if "shipyard_runner" in " ".join(proc.cmdline()):
                    os.killpg(proc.pid, signal.SIGKILL)
            except (ValueError, OSError, psutil.Error):
                pass
            pid_file.unlink(missing_ok=True)

    def ensure(self, spec: DeploymentSpec) -> None:
        key = (spec.deployment_id, spec.step_name)
        with self._lock:
            current = self._deployments.get(key)
            if current is not None and spec.is_enabled and _same(current.spec, spec):
                return
            if current is not None:
                del self._deployments[key]
        if current is not None:
            current.stop()
        if not spec.is_enabled:
            self.callbacks.deployment_state_changed(spec.deployment_id)
            return
        self.root.mkdir(parents=True, exist_ok=True)
        resident = ResidentDeployment(spec, self.python_of(spec.env_key), self.root,
                                      self.callbacks, self.sandbox)
        with self._lock:
            self._deployments[key] = resident
        resident.start()
        self.callbacks.deployment_state_changed(spec.deployment_id)

    def remove(self, deployment_id: int) -> None:
        with self._lock:
            residents = [self._deployments.pop(key) for key in list(self._deployments)
                         if key[0] == deployment_id]
        for resident in residents:
            resident.stop()

    def stop_all(self, deadline: float | None = None) -> None:
        """SIGTERM to every replica, SIGKILL to those still there after STOP_GRACE_S or at
        `deadline`, whichever comes first."""
        with self._lock:
            residents = list(self._deployments.values())
            self._deployments.clear()
        for resident in residents:
            resident.signal_stop()
        deadline = time.monotonic() + time_left(deadline, STOP_GRACE_S)
        for resident in residents:
            resident.finish_stop(deadline)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def state(self, deployment_id: int) -> DeploymentState:
        with self._lock:
            residents = [r for key, r in self._deployments.items() if key[0] == deployment_id]
        if not residents:
            return DeploymentState(status="creation_pending")
        return combined_state([r.state() for r in residents])

    def dispatch(self, deployment_id: int, launch: Launch, wait_s: float = 0.0) -> Future:
        with self._lock:
            resident = self._deployments.get((deployment_id, launch.step_name))
        if resident is None:
            raise RuntimeError("the deployment has no resident runner")
        future: Future = Future()
        if wait_s > 0:
            # The caller waits for the answer anyway: carry the call in its thread, two
            # thread hand-offs less. Only with a runner up right now; else the background
            # path waits for one.
            replica = resident.pick(wait_s=0)
            if replica is not None:
                self._call(resident, replica, launch, future, wait_s)
                return future
        self._pool.submit(self._send, resident, launch, future)
        return future

    def _send(self, resident: ResidentDeployment, launch: Launch, future: Future) -> None:
        replica = resident.pick()
        if replica is None:
            answer_once(future, Answer(None, -1, "no resident runner is up for this deployment"))
            return
        self._call(resident, replica, launch, future, None)

    def _call(self, resident: ResidentDeployment, replica: Replica, launch: Launch,
              future: Future, wait_s: float | None) -> None:
        """Send the job; receive the answer here, or in the background once `wait_s` has
        passed without one."""
        with resident.lock:
            replica.inflight[launch.key] = future
        job = job_document(launch)
        if self.sandbox.active:
            job["inputs"] = self.remote_inputs(job["inputs"])
        job["token"] = launch.token
        conn = None
        try:
            generation, conn = replica.connection(resident.spec.runner_token.encode())
            conn.send_bytes(json.dumps(job).encode())
            if wait_s is not None and not conn.poll(wait_s):
                self._pool.submit(self._receive, resident, replica, launch, future, generation,
                                  conn)
                return
        except (OSError, EOFError, AuthenticationError) as exc:
            if conn is not None:
                conn.close()
            self._ended(resident, replica, launch, future, Answer(None, -1, self._refused(replica, exc)))
            return
        self._receive(resident, replica, launch, future, generation, conn)

    def _receive(self, resident: ResidentDeployment, replica: Replica, launch: Launch,
                 future: Future, generation: int, conn: Connection) -> None:
        try:
            answer = json.loads(conn.recv_bytes())
            replica.keep(generation, conn)
            if answer["status"] == 200:
                result = Answer(answer["body"])
            else:
                result = Answer(None, -1, f"runner answered {answer['status']}: "
                                          f"{str(answer['body'])[:500]}")
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            conn.close()
            result = Answer(None, -1, self._refused(replica, exc))
        self._ended(resident, replica, launch, future, result)

    @staticmethod
    def _refused(replica: Replica, exc: BaseException) -> str:
        return f"the resident runner {replica.pod_id} died or refused the call ({exc!r})"

    @staticmethod
    def _ended(resident: ResidentDeployment, replica: Replica, launch: Launch, future: Future,
               answer: Answer) -> None:
        with resident.lock:
            replica.inflight.pop(launch.key, None)
        answer_once(future, answer)


def _same(a: DeploymentSpec, b: DeploymentSpec) -> bool:
    keys = ("generation", "env_key", "max_parallel", "replicas", "code_dir", "function_path",
            "function_name")
    return all(getattr(a, k) == getattr(b, k) for k in keys)
