"""The orchestrator contract harness: one suite, every orchestrator.

* `local`: the embedded LocalOrchestrator (uv virtualenvs, runner processes, APScheduler).
* `argo`: the ArgoOrchestrator against tests/argo/stub.py, a local Argo Server + Kubernetes
  API that validates every payload against the Argo and Kubernetes schemas.
* `argo-cluster` (marker `cluster`): the ArgoOrchestrator against the real cluster of
  KUBECONFIG, with SHIPYARD_ARGO_SERVER, SHIPYARD_IMAGE_REGISTRY and SHIPYARD_PUBLIC_URL (an
  address of this machine the cluster's pods can reach) set. Skipped otherwise.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from shipyard_service.config import Settings
from shipyard_service.orchestrators.base import BuildRequest, DeploymentSpec, Launch

from .fake_api import FakeRunnerApi

BUILD_TIMEOUT_S = 600
RUN_TIMEOUT_S = 120


class Recorder:
    """The Callbacks an orchestrator reports to, recorded and waitable."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self._cond = threading.Condition()

    def _add(self, *event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def build_log(self, step_id, message):
        self._add("build_log", step_id, message)

    def build_done(self, step_id, env_key, error):
        self._add("build_done", step_id, env_key, error)

    def execution_started(self, execution_id, pid, pid_started_at=None):
        self._add("execution_started", execution_id, pid, pid_started_at)

    def execution_exited(self, execution_id, return_code, detail):
        self._add("execution_exited", execution_id, return_code, detail)

    def schedule_fired(self, deployment_id, fire_time):
        self._add("schedule_fired", deployment_id, fire_time)

    def deployment_state_changed(self, deployment_id):
        self._add("deployment_state_changed", deployment_id)

    def deployment_log(self, deployment_id, pod_id, stream, message):
        self._add("deployment_log", deployment_id, pod_id, stream, message)

    def find(self, kind: str, key=None) -> list[tuple]:
        with self._cond:
            return [e for e in self.events if e[0] == kind and (key is None or e[1] == key)]

    def wait(self, kind: str, key=None, timeout_s: float = RUN_TIMEOUT_S) -> tuple:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = [e for e in self.events if e[0] == kind and (key is None or e[1] == key)]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {kind} for {key} in {timeout_s}s: {self.events[-20:]}")
                self._cond.wait(min(remaining, 0.5))


class Harness:
    def __init__(self, kind: str, orchestrator, settings: Settings, api: FakeRunnerApi,
                 recorder: Recorder, work: Path, stub=None):
        self.kind, self.orchestrator, self.settings = kind, orchestrator, settings
        self.api, self.recorder, self.work, self.stub = api, recorder, work, stub
        self._ids = iter(range(1, 10_000))
        self.code_dirs: dict[int, Path] = {}

    def step_dir(self, files: dict[str, str]) -> Path:
        folder = self.work / f"step-{next(self._ids)}"
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        return folder

    def build(self, files: dict[str, str], function_path: str = "main.py",
              requirements: str | None = None) -> tuple[int, str | None, str | None]:
        """(step id, env_key, error) once the build is done."""
        if requirements is not None:
            files = {**files, "requirements.txt": requirements}
        step_id = next(self._ids)
        self.code_dirs[step_id] = self.step_dir(files)
        self.orchestrator.build_step(BuildRequest(
            step_id=step_id, code_dir=self.code_dirs[step_id], language="python:3.11-slim",
            requirements_path="requirements.txt" if requirements is not None else None,
            function_path=function_path))
        event = self.recorder.wait("build_done", step_id, BUILD_TIMEOUT_S)
        return step_id, event[2], event[3]

    def launch(self, env_key: str, code_dir: Path, function_name: str = "run",
               inputs: dict | None = None, outputs: list | None = None,
               environment_variables: dict | None = None,
               input_types: dict | None = None, execution_id: str | None = None,
               step_name: str | None = None) -> Launch:
        """A launch; with `step_name`, one step of the execution `execution_id` (its run
        key "<execution_id>.<step_name>", as the graph scheduler makes them)."""
        execution_id = execution_id or f"contract-{os.urandom(4).hex()}"
        launch = Launch(
            execution_id=execution_id, token=f"exe_{os.urandom(8).hex()}", env_key=env_key,
            environment_url=self.api.environment_url, control_url=self.api.url,
            code_dir=code_dir, function_path="main.py", function_name=function_name,
            inputs=inputs or {}, outputs=outputs or [],
            environment_variables=environment_variables or {},
            input_types=input_types or {name: "file" if isinstance(value, dict) else "json"
                                        for name, value in (inputs or {}).items()},
            run_id=f"{execution_id}.{step_name}" if step_name else "", step_name=step_name)
        self.api.launches[launch.key] = launch
        return launch

    def next_tick(self, spec: DeploymentSpec, timeout_s: float = 75) -> tuple:
        """The schedule_fired report of the deployment's next tick. Against the stub, the
        tick is the CronWorkflow's own HTTP template fired at once (as Argo's agent would at
        the scheduled minute) instead of waiting for the clock; elsewhere the clock."""
        if self.stub is not None:
            import datetime as dt

            from shipyard_service.orchestrators.argo import names

            deadline = time.monotonic() + 30
            name = names.deployment(spec.deployment_id)
            while name not in self.stub.objects["cronworkflows"]:
                assert time.monotonic() < deadline, "no CronWorkflow"
                time.sleep(0.1)
            now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
            run = self.stub.fire_cron(name, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
            assert run["status"]["phase"] == "Succeeded", run
        return self.recorder.wait("schedule_fired", spec.deployment_id, timeout_s)

    def is_alive(self, execution_id: str) -> bool:
        """As start-up recovery asks, with what execution_started reported."""
        started = self.recorder.find("execution_started", execution_id)
        pid, started_at = started[0][2:4] if started else (None, None)
        return self.orchestrator.is_alive(execution_id, pid, started_at)

    def spec(self, deployment_id: int, env_key: str, code_dir: Path, **changes) -> DeploymentSpec:
        values = dict(
            deployment_id=deployment_id, name=f"dep-{deployment_id}", project="p",
            environment="e", execution_rule="endpoint", mode="low_latency", schedule=None,
            is_enabled=True, generation=1, env_key=env_key, code_dir=code_dir,
            function_path="main.py", function_name="run", max_parallel=1, replicas=1,
            environment_url=self.api.environment_url, control_url=self.api.url,
            runner_token=f"dep_{os.urandom(8).hex()}")
        values.update(changes)
        self.api.runner_tokens[deployment_id] = values["runner_token"]
        return DeploymentSpec(**values)


def _settings(tmp: Path, api: FakeRunnerApi, **values) -> Settings:
    return Settings(data_dir=tmp / "data", public_url=api.url,
                    uv_cache_dir=os.environ.get("SHIPYARD_UV_CACHE_DIR",
                                                str(Path.home() / ".cache" / "uv")),
                    **values)


@pytest.fixture(params=["local", "argo", pytest.param("argo-cluster", marks=pytest.mark.cluster)])
def harness(request, tmp_path):
    kind = request.param
    recorder = Recorder()
    settings_box: list[Settings] = []
    if kind == "argo-cluster":
        # The cluster's pods must reach the fake API: bind where SHIPYARD_PUBLIC_URL points.
        if not os.environ.get("KUBECONFIG") or not os.environ.get("SHIPYARD_ARGO_SERVER") \
                or not os.environ.get("SHIPYARD_PUBLIC_URL"):
            pytest.skip("needs a cluster: KUBECONFIG, SHIPYARD_ARGO_SERVER, "
                        "SHIPYARD_IMAGE_REGISTRY, SHIPYARD_PUBLIC_URL=http://<this host>:<port>")
        from urllib.parse import urlsplit

        public = os.environ["SHIPYARD_PUBLIC_URL"]
        api = FakeRunnerApi(lambda: settings_box[0], bind="0.0.0.0", public_url=public,
                            port=urlsplit(public).port or 80).start()
    else:
        api = FakeRunnerApi(lambda: settings_box[0]).start()
    stub = None
    if kind == "local":
        from shipyard_service.orchestrators.local import LocalOrchestrator

        settings = _settings(tmp_path, api)  # fork servers, the default
        orchestrator = LocalOrchestrator(settings)
    elif kind == "argo":
        from shipyard_service.orchestrators.argo import ArgoOrchestrator

        from ..argo.schemas import require_schemas
        from ..argo.stub import ClusterStub

        require_schemas()
        stub = ClusterStub(tmp_path / "cluster").start()
        settings = _settings(tmp_path, api, orchestrator="argo", argo_server=stub.url,
                             kubeconfig=str(stub.kubeconfig(tmp_path / "kubeconfig")),
                             namespace=stub.namespace, image_registry="registry.test/shipyard",
                             dispatch_via="proxy", argo_poll_s=0.2)
        orchestrator = ArgoOrchestrator(settings)
    else:
        from shipyard_service.orchestrators.argo import ArgoOrchestrator

        settings = Settings.from_env(data_dir=str(tmp_path / "data"))
        orchestrator = ArgoOrchestrator(settings)
    settings_box.append(settings)
    orchestrator.bind(recorder)
    orchestrator.start()
    api.on_tick = recorder.schedule_fired
    harness = Harness(kind, orchestrator, settings, api, recorder, tmp_path, stub)
    yield harness
    orchestrator.stop()
    if stub is not None:
        stub.stop()
        assert stub.errors == [], stub.errors
    api.stop()
