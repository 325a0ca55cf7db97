"""LocalOrchestrator: everything on this machine."""

from __future__ import annotations

import functools
from concurrent.futures import Future, ThreadPoolExecutor

from ...config import Settings
from ...stopwatch import phase
from ..artifact_urls import remote_inputs
from ..base import BuildRequest, DeploymentSpec, DeploymentState, Launch, Orchestrator
from . import sysdeps
from .envs import BuildError, EnvironmentBuilder
from .processes import RunnerProcesses, create_time, kill_tree, process_alive
from .pythons import available_versions
from .resident import Residents
from .sandbox import Sandbox
from .scheduler import Schedules
from .spawner import Spawner


class LocalOrchestrator(Orchestrator):
    name = "local"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.envs = EnvironmentBuilder(settings.data_dir / "envs", settings.uv_cache_dir)
        # Every runner and fork server is started from the spawner's one long-lived thread.
        self.spawner = Spawner()
        self.sandbox = Sandbox(settings.data_dir, settings.sandbox, popen=self.spawner.popen)
        # (Step code is under DATA_DIR/steps: artifacts.py.)
        self.processes = RunnerProcesses(settings.data_dir / "work", settings.data_dir / "steps",
                                         self._exited, self.sandbox, settings.fork_servers)
        self._builds = ThreadPoolExecutor(max_workers=2, thread_name_prefix="build")
        self.schedules = Schedules(lambda dep_id, tick: self.callbacks.schedule_fired(dep_id, tick))
        self.residents = Residents(settings.data_dir / "resident", self.envs.python_of,
                                   lambda: self.callbacks, self.sandbox,
                                   functools.partial(remote_inputs, settings))

    def start(self) -> None:
        self.residents.kill_orphans()
        self.schedules.start()

    def stop(self, deadline: float | None = None) -> None:
        with phase("schedules"):
            self.schedules.stop()
        with phase("resident replicas"):
            self.residents.stop_all(deadline)
        with phase("runner processes and fork servers"):
            self.processes.stop_all(deadline)
        self._builds.shutdown(wait=False, cancel_futures=True)
        with phase("environment builds"):
            self.envs.stop()  # a build in flight would hold the worker's exit, then be orphaned
        with phase("runner spawner"):
            self.spawner.stop(deadline)  # last: its thread started the runners stopped above

    # Steps ------------------------------------------------------------------------------
    def build_step(self, request: BuildRequest) -> None:
        self._builds.submit(self._build, request)

    def _build(self, request: BuildRequest) -> None:
        log = lambda message: self.callbacks.build_log(request.step_id, message)  # noqa: E731
        try:
            if request.function_path and not (request.code_dir / request.function_path).is_file():
                raise BuildError(
                    f"The function file '{request.function_path}' is not in the step's files"
                )
            missing = _missing_system_packages(request.system_dependencies, self.settings, log)
            if missing:
                raise BuildError(sysdeps.missing_message(missing))
            key = self.envs.build(request, log)
        except BuildError as exc:
            log(f"Build failed: {exc}")
            self.callbacks.build_done(request.step_id, None, str(exc))
        except Exception as exc:  # keep the step from staying pending forever
            log(f"Build failed: {type(exc).__name__}: {exc}")
            self.callbacks.build_done(request.step_id, None, f"Build failed: {exc}")
        else:
            self.callbacks.build_done(request.step_id, key, None)

    def available_languages(self) -> list[str]:
        return [f"python:{v}-slim" for v in available_versions()]

    # Executions -------------------------------------------------------------------------
    def start_execution(self, launch: Launch) -> None:
        python = self.envs.python_of(launch.env_key)
        if not python.exists():
            raise RuntimeError(f"the step environment {launch.env_key!r} is missing")
        pid = self.processes.start(python, launch)
        self.callbacks.execution_started(launch.key, pid, create_time(pid) if pid else None)

    def _exited(self, execution_id: str, code: int, detail: str) -> None:
        self.callbacks.execution_exited(execution_id, code, detail)

    def cancel_execution(self, execution_id: str) -> None:
        self.processes.cancel(execution_id)

    def is_alive(self, execution_id: str, pid: int | None, pid_started_at: float | None) -> bool:
        alive = process_alive(pid, pid_started_at)
        if alive and pid:
            kill_tree(pid)  # a runner orphaned by a crashed server: it has no one to report to
        return alive

    # Deployments ------------------------------------------------------------------------
    def ensure_deployment(self, spec: DeploymentSpec) -> None:
        if spec.execution_rule == "periodic":
            self.schedules.set(spec.deployment_id, spec.schedule, spec.is_enabled)
        if spec.mode == "low_latency":
            self.residents.ensure(spec)

    def remove_deployment(self, deployment_id: int) -> None:
        self.schedules.remove(deployment_id)
        self.residents.remove(deployment_id)

    def deployment_state(self, deployment_id: int) -> DeploymentState:
        return self.residents.state(deployment_id)

    def dispatch(self, deployment_id: int, launch: Launch, wait_s: float = 0.0) -> Future:
        return self.residents.dispatch(deployment_id, launch, wait_s)

def _missing_system_packages(packages: list[str], settings: Settings, log) -> list[str]:
    """Checked with dpkg, installed with apt-get when the server allows it (sysdeps.py)."""
    return sysdeps.ensure_installed(packages, sysdeps.apt_install_allowed(settings), log)

