"""ArgoOrchestrator: step images built by Argo, executions as Argo Workflows, schedules as
CronWorkflows, resident runners as Kubernetes Deployments.

It keeps no state that matters: every object is named after what the store holds
(names.py), so several API replicas, or one restarted, act on the same objects, and the
domain's idempotent updates absorb reports made twice.

    build_step       context .tgz under data_dir/builds, kaniko Workflow, WorkflowTemplate
    start_execution  Secret (token) + Workflow(workflowTemplateRef) ; the runner fetches its
                     job from the API and reports back as in embedded mode
    status sync      one thread lists the execution workflows every `argo_poll_s`:
                     Running -> execution_started, Succeeded/Failed/Error -> execution_exited
                     (with the pod's log tail as the reason), then the Secret is deleted
    cancel           terminate the Workflow
    deployments      Secret + CronWorkflow (periodic) and/or Deployment + Service
                     (low-latency; one pair per step of a multi-step pipeline); dispatch
                     POSTs the job to the Service (of the launch's step)
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ...config import Settings
from ...domain.schedules import CATCH_UP_WINDOW_S
from ...stopwatch import time_left
from ..base import (
    Answer,
    BuildRequest,
    DeploymentSpec,
    DeploymentState,
    GraphLaunch,
    Launch,
    Orchestrator,
    Pod,
    answer_once,
    combined_state,
)
from . import builders, names
from .client import ClusterClient, ClusterError, ConflictError
from .context import ContextError, build_context
from .urls import artifact_url, remote_inputs

log = logging.getLogger("shipyard.argo")

FINAL_PHASES = ("Succeeded", "Failed", "Error")
BUILD_TIMEOUT_S = 45 * 60
STATE_CACHE_S = 1.0
WAITING_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                    "CreateContainerConfigError")


class ArgoOrchestrator(Orchestrator):
    name = "argo"
    # Workflows and resident runners live in the cluster, not in the API process: an API
    # restart or shutdown should leave them running (the status sync picks them up again).
    executions_survive_restart = True

    def __init__(self, settings: Settings, client: ClusterClient | None = None):
        self.settings = settings
        self.cfg = builders.ClusterConfig.from_settings(settings)
        self._client = client
        self._client_lock = threading.Lock()
        self._builds = ThreadPoolExecutor(max_workers=4, thread_name_prefix="argo-build")
        self._deploys = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argo-deploy")
        self._dispatches = ThreadPoolExecutor(max_workers=64, thread_name_prefix="argo-dispatch")
        self._templates: set[str] = set()
        self._phases: dict[str, str] = {}  # execution id -> last phase reported
        # By deployment id, then step: a multi-step pipeline in low-latency mode has one
        # spec per step (each its own Deployment + Service), else the one spec is under None.
        self._specs: dict[int, dict[str | None, DeploymentSpec]] = {}
        self._errors: dict[tuple[int, str | None], str] = {}
        self._states: dict[int, tuple[float, DeploymentState]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sync: threading.Thread | None = None

    @property
    def client(self) -> ClusterClient:
        # Created on first use: the admin CLI builds the app without touching the cluster.
        with self._client_lock:
            if self._client is None:
                self._client = ClusterClient(self.settings)
            return self._client

    def start(self) -> None:
        if self._sync is None:
            self._stop.clear()
            self._sync = threading.Thread(target=self._sync_loop, name="argo-sync", daemon=True)
            self._sync.start()

    def stop(self, deadline: float | None = None) -> None:
        self._stop.set()
        if self._sync is not None:
            self._sync.join(timeout=time_left(deadline, 10.0))
            self._sync = None
        for pool in (self._builds, self._deploys, self._dispatches):
            pool.shutdown(wait=False, cancel_futures=True)

    def available_languages(self) -> list[str]:
        return [f"python:3.{minor}-slim" for minor in range(8, 14)]

    # Builds -----------------------------------------------------------------------------
    def build_step(self, request: BuildRequest) -> None:
        self._builds.submit(self._build, request)

    def _build(self, request: BuildRequest) -> None:
        def log_line(message: str) -> None:
            self.callbacks.build_log(request.step_id, message)

        try:
            image = self._build_image(request, log_line)
        except (ClusterError, ContextError) as exc:
            log_line(f"Build failed: {exc}")
            self.callbacks.build_done(request.step_id, None, str(exc))
        except Exception as exc:  # keep the step from staying pending forever
            log.exception("build of step %s", request.step_id)
            log_line(f"Build failed: {type(exc).__name__}: {exc}")
            self.callbacks.build_done(request.step_id, None, f"Build failed: {exc}")
        else:
            self.callbacks.build_done(request.step_id, image, None)

    def _build_image(self, request: BuildRequest, log_line) -> str:
        if request.function_path and not (request.code_dir / request.function_path).is_file():
            raise ContextError(
                f"The function file '{request.function_path}' is not in the step's files")
        context = build_context(request)
        recipe = builders.image_recipe(self.cfg, request.language, request.system_dependencies)
        digest = builders.image_digest(context.digest, recipe)
        image = builders.image_reference(self.cfg, digest)
        relative = f"builds/{context.digest}.tgz"
        _write_atomic(Path(self.settings.data_dir) / relative, context.data)
        document = builders.build_workflow(self.cfg, digest, image, recipe,
                                           artifact_url(self.settings, relative))
        name = document["metadata"]["name"]
        log_line(f"Building image {image} (Python {recipe.python_version}) with workflow {name}")
        for attempt in range(2):
            try:
                self.client.create_workflow(document)
                break
            except ConflictError:
                existing = self.client.get_workflow(name) or {}
                phase = (existing.get("status") or {}).get("phase") or ""
                if phase in ("Failed", "Error") and attempt == 0:
                    self.client.delete_workflow(name)  # an earlier failed build: try again
                    continue
                log_line(f"The same image is already built or being built ({phase or 'Pending'})")
                break
        workflow = self._wait_final(name, BUILD_TIMEOUT_S)
        status = workflow.get("status") or {}
        phase = status.get("phase")
        for line in self.client.workflow_log_tail(name).splitlines()[-500:]:
            log_line(line)
        if phase != "Succeeded":
            raise ClusterError(f"The image build ended {phase or 'without a phase'}: "
                               f"{status.get('message') or 'see the build logs'}")
        self._ensure_template(image)
        log_line(f"Image {image} is ready")
        return image

    def _wait_final(self, name: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while not self._stop.is_set():
            workflow = self.client.get_workflow(name)
            if workflow is None:
                raise ClusterError(f"The workflow {name} disappeared")
            if (workflow.get("status") or {}).get("phase") in FINAL_PHASES:
                return workflow
            if time.monotonic() > deadline:
                self.client.terminate_workflow(name)
                raise ClusterError(f"The workflow {name} took over {timeout_s:.0f} s")
            self._stop.wait(self.settings.argo_poll_s)
        raise ClusterError("The server is stopping")

    def _ensure_template(self, image: str) -> None:
        name = names.step_template(image)
        if name in self._templates:
            return
        self.client.ensure_workflow_template(builders.step_template(self.cfg, image))
        with self._lock:
            self._templates.add(name)

    # Executions -------------------------------------------------------------------------
    runs_graphs = True

    def start_graph(self, graph: GraphLaunch) -> None:
        """A multi-step execution: the graph's WorkflowTemplate (a DAG, created once per
        graph), a Secret with each step's token, and one Workflow referencing them. It is
        watched and cancelled like a single-step execution's (same names)."""
        for _, env_key, _ in graph.steps:
            if not env_key:
                raise RuntimeError("a step has no image: rebuild it")
        template = builders.graph_template(
            self.cfg, [(name, env_key) for name, env_key, _ in graph.steps], graph.upstream,
            graph.retries)
        name = template["metadata"]["name"]
        if name not in self._templates:
            self.client.ensure_workflow_template(template)
            with self._lock:
                self._templates.add(name)
        key = graph.execution_id
        self.client.apply_secret(builders.graph_secret(
            self.cfg, key, {step: token for step, _, token in graph.steps}))
        try:
            self.client.create_workflow(builders.graph_workflow(
                self.cfg, name, key, graph.environment_url))
        except ClusterError:
            self.client.delete_secret(names.execution_secret(key))
            raise
        with self._lock:
            self._phases.setdefault(key, "Pending")

    def start_execution(self, launch: Launch) -> None:
        if not launch.env_key:
            raise RuntimeError("the step has no image: rebuild it")
        self._ensure_template(launch.env_key)
        # Everything goes by the run key: one Workflow per step of a multi-step execution.
        key = launch.key
        self.client.apply_secret(builders.execution_secret(self.cfg, key, launch.token))
        try:
            self.client.create_workflow(builders.execution_workflow(
                self.cfg, launch.env_key, launch.execution_id, launch.environment_url,
                run_key=launch.run_id or None))
        except ClusterError:
            self.client.delete_secret(names.execution_secret(key))
            raise
        with self._lock:
            self._phases.setdefault(key, "Pending")

    def cancel_execution(self, execution_id: str) -> None:
        try:
            self.client.terminate_workflow(names.execution_workflow(execution_id))
            self.client.delete_secret(names.execution_secret(execution_id))
        except ClusterError as exc:
            log.warning("could not cancel %s: %s", execution_id, exc)

    def is_alive(self, execution_id: str, pid: int | None, pid_started_at: float | None) -> bool:
        try:
            workflow = self.client.get_workflow(names.execution_workflow(execution_id))
        except ClusterError:
            return False
        if workflow is None:
            return False
        return (workflow.get("status") or {}).get("phase") not in FINAL_PHASES

    def _sync_loop(self) -> None:
        rounds = 0
        while not self._stop.wait(self.settings.argo_poll_s):
            rounds += 1
            try:
                self.sync_once(deployments=rounds % 3 == 0)
            except ClusterError as exc:
                log.warning("status synchronisation: %s", exc)
            except Exception:  # the thread must survive anything
                log.exception("status synchronisation failed")

    def sync_once(self, deployments: bool = True) -> None:
        """One pass: report execution workflows that changed phase (and deployments whose
        state changed). Public so tests can drive it step by step."""
        selector = names.selector({**names.MANAGED_BY, names.KIND: "execution"})
        seen = set()
        for workflow in self.client.list_workflows(selector):
            metadata = workflow.get("metadata") or {}
            execution_id = (metadata.get("annotations") or {}).get("shipyard.io/execution-id")
            if not execution_id:
                continue
            seen.add(execution_id)
            status = workflow.get("status") or {}
            self._report(execution_id, metadata.get("name", ""), status.get("phase") or "Pending",
                         status)
        with self._lock:
            for gone in set(self._phases) - seen:
                if self._phases[gone] in FINAL_PHASES:
                    del self._phases[gone]
        if deployments:
            self._sync_deployments()

    def _report(self, execution_id: str, name: str, phase: str, status: dict) -> None:
        with self._lock:
            last = self._phases.get(execution_id)
            if last == phase or last in FINAL_PHASES:
                return
            self._phases[execution_id] = phase
        if phase == "Running":
            self.callbacks.execution_started(execution_id, None)
        elif phase in FINAL_PHASES:
            code, detail = _exit(status)
            if phase != "Succeeded":
                tail = self.client.workflow_log_tail(name, 4000)
                detail = "\n".join(part for part in (detail, tail) if part)
            self.callbacks.execution_exited(execution_id, code, detail)
            self.client.delete_secret(names.execution_secret(execution_id))

    # Deployments ------------------------------------------------------------------------
    def ensure_deployment(self, spec: DeploymentSpec) -> None:
        with self._lock:
            self._specs.setdefault(spec.deployment_id, {})[spec.step_name] = spec
            self._errors.pop((spec.deployment_id, spec.step_name), None)
            self._states.pop(spec.deployment_id, None)
        self._deploys.submit(self._apply, spec)

    def _apply(self, spec: DeploymentSpec) -> None:
        try:
            if not spec.env_key:
                raise ClusterError("the pipeline's step has no image")
            self.client.apply_secret(builders.deployment_secret(self.cfg, spec))
            if spec.execution_rule == "periodic":
                self.client.apply_cron_workflow(
                    builders.cron_workflow(self.cfg, spec, CATCH_UP_WINDOW_S))
            if spec.mode == "low_latency":
                self.client.apply_deployment(builders.resident_deployment(self.cfg, spec))
                self.client.ensure_service(builders.resident_service(self.cfg, spec))
        except ClusterError as exc:
            log.warning("deployment %s: %s", spec.deployment_id, exc)
            with self._lock:
                self._errors[(spec.deployment_id, spec.step_name)] = str(exc)
        self.callbacks.deployment_state_changed(spec.deployment_id)

    def remove_deployment(self, deployment_id: int) -> None:
        with self._lock:
            self._specs.pop(deployment_id, None)
            for key in [k for k in self._errors if k[0] == deployment_id]:
                del self._errors[key]
            self._states.pop(deployment_id, None)
        self._deploys.submit(self._remove, deployment_id)

    def _remove(self, deployment_id: int) -> None:
        name = names.deployment(deployment_id)
        # Each object on its own: one refusal must not leave the others (the token) behind.
        removals = [(self.client.delete_cron_workflow, name), (self.client.delete_deployment, name)]
        try:
            # Steps' resident runners (multi-step, low-latency): found by label, not by what
            # this process remembers, so another API replica's deployment goes as well.
            removals += [(self.client.delete_deployment, found) for found in
                         self.client.list_deployments(
                             names.selector(names.resident_selector(deployment_id)))
                         if found != name]
        except ClusterError as exc:
            log.warning("could not list the runners of deployment %s: %s", deployment_id, exc)
        removals.append((self.client.delete_secret, name))
        for remove, target in removals:
            try:
                remove(target)
            except ClusterError as exc:
                log.warning("could not remove deployment %s: %s", deployment_id, exc)

    def deployment_state(self, deployment_id: int) -> DeploymentState:
        with self._lock:
            cached = self._states.get(deployment_id)
        if cached and time.monotonic() - cached[0] < STATE_CACHE_S:
            return cached[1]
        state = self._read_state(deployment_id)
        with self._lock:
            self._states[deployment_id] = (time.monotonic(), state)
        return state

    def _read_state(self, deployment_id: int) -> DeploymentState:
        with self._lock:
            errors = [e for key, e in self._errors.items() if key[0] == deployment_id]
            specs = dict(self._specs.get(deployment_id) or {})
        if errors:
            return DeploymentState(status="creation_failed", detail=errors[0])
        try:
            if specs and all(s.mode != "low_latency" for s in specs.values()):
                found = self.client.get_cron_workflow(names.deployment(deployment_id))
                return DeploymentState(status="up" if found else "creation_pending")
            # Each step's resident runners on their own; the deployment is up when all are.
            return combined_state([self._resident_read(deployment_id, step)
                                   for step in sorted(specs, key=str) or [None]])
        except ClusterError as exc:
            return DeploymentState(status="down_retrying", detail=str(exc))

    def _resident_read(self, deployment_id: int, step_name: str | None) -> DeploymentState:
        deployment = self.client.read_deployment(names.resident(deployment_id, step_name))
        if deployment is None:
            return DeploymentState(status="creation_pending")
        pods = self.client.list_pods(
            names.selector(names.resident_selector(deployment_id, step_name)))
        return _resident_state(deployment, pods)

    def _sync_deployments(self) -> None:
        with self._lock:
            ids = list(self._specs)
        for deployment_id in ids:
            with self._lock:
                before = self._states.get(deployment_id)
                self._states.pop(deployment_id, None)
            after = self.deployment_state(deployment_id)
            if before is None or before[1] != after:
                self.callbacks.deployment_state_changed(deployment_id)

    def dispatch(self, deployment_id: int, launch: Launch, wait_s: float = 0.0) -> Future:
        # Always in the background: a pod is a network hop away, the hand-off is noise.
        future: Future = Future()
        self._dispatches.submit(self._send, deployment_id, launch, future)
        return future

    def _send(self, deployment_id: int, launch: Launch, future: Future) -> None:
        # Reported by run key: one step of a multi-step execution goes to its step's Service.
        self.callbacks.execution_started(launch.key, None)
        job = {
            "execution_id": launch.execution_id, "api_url": launch.environment_url,
            "token": launch.token, "inputs": remote_inputs(self.settings, launch.inputs),
            "input_data_types": launch.input_types, "outputs": launch.outputs,
            "environment_variables": launch.environment_variables,
        }
        try:
            status, body = self.client.post_to_service(
                names.resident(deployment_id, launch.step_name), builders.RUNNER_PORT,
                "/execute", job, timeout_s=self.settings.execution_timeout_s)
        except ClusterError as exc:
            status, body = None, f"no resident runner took the execution: {exc}"
        if status == 200 and isinstance(body, dict):
            answer_once(future, Answer(body))
        else:
            detail = body if status is None else f"the resident runner answered {status}: {body}"
            answer_once(future, Answer(None, -1, str(detail)[:4000]))


def _exit(status: dict) -> tuple[int, str]:
    """The main container's exit code and Argo's message, from a finished workflow."""
    code = 0 if status.get("phase") == "Succeeded" else 1
    for node in (status.get("nodes") or {}).values():
        exit_code = ((node or {}).get("outputs") or {}).get("exitCode")
        if node.get("type") == "Pod" and exit_code not in (None, ""):
            try:
                code = int(exit_code)
            except ValueError:
                pass
    return code, status.get("message") or ""


def _pod_status(pod: dict) -> tuple[str, str | None]:
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    containers = status.get("containerStatuses") or []
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in WAITING_FAILURES:
            return "Failed", f"{waiting['reason']}: {waiting.get('message', '')}".strip()
        if waiting.get("reason") == "CrashLoopBackOff" or (
                container.get("restartCount", 0) and not container.get("ready")):
            return "Restarting", waiting.get("message")
    if phase == "Running" and containers and all(c.get("ready") for c in containers):
        return "Running", None
    if phase in ("Failed", "Unknown"):
        return "Failed", status.get("message")
    return "Pending", None


def _resident_state(deployment: dict, pods: list[dict]) -> DeploymentState:
    ready = ((deployment.get("status") or {}).get("readyReplicas")) or 0
    listed = []
    problems = []
    for pod in pods:
        status, detail = _pod_status(pod)
        listed.append(Pod(pod_id=(pod.get("metadata") or {}).get("name", ""), status=status))
        if detail:
            problems.append(detail)
    listed.sort(key=lambda p: p.pod_id)
    if ready >= 1:
        return DeploymentState(status="up", pods=listed)
    if any(p.status == "Failed" for p in listed):
        return DeploymentState(status="creation_failed", pods=listed,
                               detail="; ".join(problems) or None)
    if any(p.status == "Restarting" for p in listed):
        return DeploymentState(status="down_retrying", pods=listed,
                               detail="; ".join(problems) or None)
    return DeploymentState(status="creation_pending", pods=listed)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
