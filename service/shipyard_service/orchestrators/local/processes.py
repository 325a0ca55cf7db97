"""Runner processes of elastic executions: started in a fresh folder, watched until exit.

A runner is forked by its step environment's fork server (forkservers.py) when that one is
up: a fresh process in a sandbox of its own, without the start of an interpreter. It is
started cold (a new interpreter) when there is none yet (it is then started in the
background), when an input is a local file (the fork server's sandbox cannot see it), when
the execution's variables include one an interpreter reads as it starts (the fork server
started with the server's), or when the fork server fails."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import psutil

from ..base import Launch
from .forkservers import ForkedRun, ForkServer, ForkServerError, ForkServers
from .sandbox import Sandbox

log = logging.getLogger(__name__)

# Variables of the server's own environment that an execution may see.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE",
                  "REQUESTS_CA_BUNDLE", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Variables an interpreter (or its loader, C library) reads once, as it starts: an execution
# setting one of them starts cold, since a fork server started with the server's.
READ_AT_START = ("PYTHON", "LC_", "LD_", "MALLOC_", "LANG", "LANGUAGE", "TZ")


def _package_parent(name: str, fallback: Path) -> str:
    spec = importlib.util.find_spec(name)
    if spec and spec.origin:
        return str(Path(spec.origin).resolve().parent.parent)
    return str(fallback)


REPO = Path(__file__).resolve().parents[4]
RUNNER_PATH = _package_parent("shipyard_runner", REPO / "worker_image")
SDK_PATH = _package_parent("shipyard", REPO / "sdk")


def runner_read_only(python: Path, code_dir: Path, inputs: dict | None = None) -> list[Path]:
    """What a sandboxed runner reads besides its interpreter: its step environment, its
    step's code, the runner and SDK packages, and its file inputs given as local paths."""
    files = [Path(v["path"]) for v in (inputs or {}).values()
             if isinstance(v, dict) and isinstance(v.get("path"), str)]
    return [python.parent.parent, Path(code_dir), Path(RUNNER_PATH), Path(SDK_PATH), *files]


def runner_environment(launch: Launch) -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env.update(launch.environment_variables)
    env.update({
        "PYTHONPATH": os.pathsep.join([RUNNER_PATH, SDK_PATH]),
        "PYTHONUNBUFFERED": "1",
        "SHIPYARD_API_URL": launch.environment_url,
        "SHIPYARD_EXECUTION_TOKEN": launch.token,
        "SHIPYARD_EXECUTION_ID": launch.execution_id,
        "CRAFT_AI_EXECUTION_ID": launch.execution_id,
        "SHIPYARD_ENVIRONMENT_URL": launch.environment_url,
        "CRAFT_AI_ENVIRONMENT_URL": launch.environment_url,
        "SHIPYARD_CONTROL_URL": launch.control_url,
        "CRAFT_AI_CONTROL_URL": launch.control_url,
        "SHIPYARD_SDK_TOKEN": launch.token,
        "CRAFT_AI_SDK_TOKEN": launch.token,
        "SDK_VERBOSE_LOG": "false",
    })
    return env


def job_document(launch: Launch, with_environment: bool = True) -> dict:
    """The runner's job. Elastic runners get environment variables from their process
    environment instead (`with_environment=False`): job.json is a file on disk, and the
    values are secrets encrypted at rest in the store."""
    return {
        "execution_id": launch.execution_id,
        "api_url": launch.environment_url,
        "code_dir": str(launch.code_dir),
        "code_url": None,
        "function_path": launch.function_path,
        "function_name": launch.function_name,
        "inputs": launch.inputs,
        "input_data_types": launch.input_types,
        "outputs": launch.outputs,
        "environment_variables": launch.environment_variables if with_environment else {},
    }


class RunnerProcesses:
    def __init__(self, work_root: Path, code_root: Path,
                 on_exit: Callable[[str, int, str], None], sandbox: Sandbox,
                 fork_servers: int = 16):
        self.work_root, self.code_root = work_root, code_root
        self.sandbox = sandbox
        self.on_exit = on_exit
        self.forks = (ForkServers(work_root, code_root, sandbox, fork_servers)
                      if fork_servers > 0 else None)
        self._procs: dict[str, subprocess.Popen | ForkedRun] = {}
        self._lock = threading.Lock()

    def start(self, python: Path, launch: Launch) -> int | None:
        """Start the runner; its pid on this machine, or None when a fork server's child
        (whose pid is one of the fork server's sandbox)."""
        if self.forks is not None and self._forkable(launch):
            server = self.forks.get(python, _fork_server_environment(),
                                    runner_read_only(python, self.code_root),
                                    tenant=launch.environment_url)
            if server is not None:
                try:
                    self._start_forked(server, launch)
                    return None
                except ForkServerError as exc:
                    log.warning("execution %s starts cold: %s", launch.key, exc)
        return self._start_cold(python, launch).pid

    def _forkable(self, launch: Launch) -> bool:
        return self.code_root in Path(launch.code_dir).parents \
            and not _local_files(launch.inputs) \
            and not any(name.startswith(READ_AT_START) for name in launch.environment_variables)

    def _start_forked(self, server: ForkServer, launch: Launch) -> None:
        work = server.root / launch.key
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        job = _write_job(work, launch)
        self.sandbox.hand_over(work)
        env = runner_environment(launch)
        env.update(self.sandbox.variables(work))  # as a cold runner's sandbox sets them
        try:
            run = server.launch(job, work, Path(launch.code_dir), env, work / "runner.log")
        except ForkServerError:
            shutil.rmtree(work, ignore_errors=True)
            raise
        with self._lock:
            self._procs[launch.key] = run
        threading.Thread(target=self._watch_forked, args=(launch.key, run, work),
                         name=f"runner-{launch.key}", daemon=True).start()

    def _start_cold(self, python: Path, launch: Launch) -> subprocess.Popen:
        work = self.work_root / launch.key
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        job = _write_job(work, launch)
        log_file = open(work / "runner.log", "wb")
        argv = self.sandbox.wrap(
            [str(python), "-s", "-m", "shipyard_runner", "run", "--job", str(job)], work,
            read_only=runner_read_only(python, launch.code_dir, launch.inputs))
        try:
            proc = self.sandbox.popen(
                argv, cwd=work, env=runner_environment(launch), stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log_file.close()
        with self._lock:
            self._procs[launch.key] = proc
        threading.Thread(target=self._watch, args=(launch.key, proc, work),
                         name=f"runner-{launch.key}", daemon=True).start()
        return proc

    def _watch_forked(self, execution_id: str, run: ForkedRun, work: Path) -> None:
        code, why = run.wait()
        self._finished(execution_id, code, work, why)

    def _watch(self, execution_id: str, proc: subprocess.Popen, work: Path) -> None:
        self._finished(execution_id, proc.wait(), work, "")

    def _finished(self, execution_id: str, code: int, work: Path, why: str) -> None:
        with self._lock:
            self._procs.pop(execution_id, None)
        detail = why
        try:
            detail = ((why + "\n") if why else "") + (work / "runner.log").read_bytes()[
                -4000:].decode("utf-8", "replace").strip()
        except OSError:
            pass
        try:
            self.on_exit(execution_id, code, detail.strip())
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def cancel(self, execution_id: str) -> None:
        with self._lock:
            proc = self._procs.get(execution_id)
        if isinstance(proc, ForkedRun):
            proc.kill()
        elif proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop_all(self, deadline: float | None = None) -> None:
        with self._lock:
            ids = list(self._procs)
        for execution_id in ids:
            self.cancel(execution_id)
        if self.forks is not None:
            self.forks.stop_all(deadline)


def _write_job(work: Path, launch: Launch) -> Path:
    job = work / "job.json"
    fd = os.open(job, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(job_document(launch, with_environment=False), f)
    return job


def _local_files(inputs: dict | None) -> bool:
    return any(isinstance(v, dict) and isinstance(v.get("path"), str)
               for v in (inputs or {}).values())


def _fork_server_environment() -> dict[str, str]:
    """A fork server's own variables: none of the server's secrets; each child gets its
    execution's (runner_environment) when forked."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env.update({"PYTHONPATH": os.pathsep.join([RUNNER_PATH, SDK_PATH]),
                "PYTHONUNBUFFERED": "1"})
    return env


def process_alive(pid: int | None, started_at: float | None) -> bool:
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        return started_at is None or abs(proc.create_time() - started_at) < 1.0
    except psutil.Error:
        return False


def kill_tree(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None
