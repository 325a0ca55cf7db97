"""The one narrow interface between the platform and where code runs.

Only implementations of this interface import subprocess, APScheduler, Hera or kubernetes.
They report back through `Callbacks`, never by importing the domain."""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class BuildRequest:
    step_id: int
    code_dir: Path
    language: str  # python:3.X-slim | python-cuda:3.X-Y.Z
    requirements_path: str | None  # relative to code_dir
    system_dependencies: list[str] = field(default_factory=list)
    dockerfile_path: str | None = None
    function_path: str | None = None  # checked to exist before anything is installed


@dataclass(frozen=True)
class Launch:
    """Everything needed to run one execution of a step, whatever the backend."""

    execution_id: str
    token: str  # execution-scoped: runner callbacks and SDK refresh token
    env_key: str  # what build_step returned: a venv key or an image reference
    environment_url: str
    control_url: str
    code_dir: Path
    function_path: str
    function_name: str
    inputs: dict  # name -> value; files as {"path": ...} or {"url": ...}
    outputs: list[dict]  # declarations: name, data_type
    environment_variables: dict[str, str]
    input_types: dict[str, str] = field(default_factory=dict)  # name -> data_type
    # What the backend and its callbacks name this run by: one step of a multi-step
    # execution is "<execution_id>.<step_name>" ("….<attempt>" for a retry); empty for a
    # single-step execution.
    run_id: str = ""
    step_name: str | None = None  # the step of a multi-step pipeline (its resident runner)

    @property
    def key(self) -> str:
        return self.run_id or self.execution_id


@dataclass(frozen=True)
class Answer:
    """A resident runner's answer to one dispatched run: its finish payload, or why there
    is none (the runner died, refused the job, or none was up)."""

    payload: dict | None = None
    return_code: int = -1
    detail: str = ""


def answer_once(future: Future, answer: Answer) -> bool:
    """Resolve `future` unless another path (the runner's death, the call's own end)
    already did: the first answer is the one recorded."""
    try:
        future.set_result(answer)
    except InvalidStateError:
        return False
    return True


@dataclass(frozen=True)
class GraphLaunch:
    """A whole multi-step execution, for a backend that runs graphs itself
    (`Orchestrator.runs_graphs`): each step's runner fetches its job with its own token."""

    execution_id: str
    environment_url: str
    steps: list[tuple[str, str, str]]  # (step_name, env_key, token) in the pipeline's order
    upstream: dict[str, list[str]]  # step -> the steps it waits for
    # step -> (max_retries, retry_delay_s) of the steps that retry (the backend's own
    # retry strategy runs them again; each new pod asks for its job as a new attempt).
    retries: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploymentSpec:
    """What a backend needs to keep a deployment running: a schedule (periodic rule) or
    resident runners (low-latency mode). Elastic endpoint deployments need nothing."""

    deployment_id: int
    name: str
    project: str
    environment: str
    execution_rule: str  # endpoint | periodic
    mode: str  # elastic | low_latency
    schedule: str | None  # 5-field cron, UTC
    is_enabled: bool
    generation: int  # a change means: reload the resident runners
    env_key: str
    code_dir: Path
    function_path: str
    function_name: str
    max_parallel: int  # executions at once per runner (1 when parallelism is off)
    replicas: int
    environment_url: str
    control_url: str
    runner_token: str  # lets resident runners post deployment logs
    ram_request: str | None = None
    gpu_request: int | None = None
    # Multi-step pipelines in low-latency mode: one spec per step, each its own resident
    # runners (None: the pipeline's only step).
    step_name: str | None = None


@dataclass(frozen=True)
class Pod:
    pod_id: str
    status: str  # Pending | Running | Restarting | Failed


@dataclass(frozen=True)
class DeploymentState:
    status: str  # creation_pending | up | down_retrying | creation_failed
    pods: list[Pod] = field(default_factory=list)
    detail: str | None = None

    @property
    def health(self) -> str:
        return {"up": "Ready", "creation_pending": "Starting"}.get(self.status, "Unhealthy")


def combined_state(states: list[DeploymentState]) -> DeploymentState:
    """A deployment whose steps each have resident runners (multi-step, low-latency): up
    when every step's runners are, else the worst of them; every step's pods."""
    if len(states) == 1:
        return states[0]
    pods = [pod for state in states for pod in state.pods]
    for status in ("creation_failed", "down_retrying", "creation_pending"):
        worst = [s for s in states if s.status == status]
        if worst:
            return DeploymentState(status=status, pods=pods, detail=worst[0].detail)
    return DeploymentState(status="up", pods=pods)


class Callbacks(Protocol):
    def build_log(self, step_id: int, message: str) -> None: ...

    def build_done(self, step_id: int, env_key: str | None, error: str | None) -> None: ...

    def execution_started(self, execution_id: str, pid: int | None) -> None: ...

    def execution_exited(self, execution_id: str, return_code: int, detail: str) -> None:
        """The runner is gone; if it did not report a result, the execution failed."""

    def schedule_fired(self, deployment_id: int, fire_time) -> None:
        """A cron tick (naive UTC datetime) is due; the domain starts it at most once."""

    def deployment_state_changed(self, deployment_id: int) -> None:
        """Resident runners changed state (up, crashed, restarted)."""

    def deployment_log(self, deployment_id: int, pod_id: str, stream: str, message: str) -> None:
        """A line a resident runner printed outside any execution."""


class Orchestrator(ABC):
    """Builds step environments and runs executions (elastic mode)."""

    name = "abstract"
    # True when runners live outside the API process (a cluster): restarting or stopping
    # the API must then leave executions alone; the backend's status sync adopts them.
    executions_survive_restart = False
    # True when the backend runs a multi-step execution's graph itself (start_graph): the
    # domain then only records what the steps report. Else the domain starts each step.
    runs_graphs = False

    def bind(self, callbacks: Callbacks) -> None:
        self.callbacks = callbacks

    def start(self) -> None:
        """Start background machinery (worker threads, supervisors)."""

    def stop(self, deadline: float | None = None) -> None:
        """Stop background machinery and the processes it owns, waiting for them until
        `deadline` (time.monotonic()) at most: the server's stop has a fixed grace."""

    @abstractmethod
    def build_step(self, request: BuildRequest) -> None:
        """Build asynchronously; report with callbacks.build_log / build_done."""

    @abstractmethod
    def start_execution(self, launch: Launch) -> None:
        """Start asynchronously; the runner reports its result to the API itself."""

    def start_graph(self, graph: GraphLaunch) -> None:
        """Start a multi-step execution as one graph (only when `runs_graphs`)."""
        raise NotImplementedError

    @abstractmethod
    def cancel_execution(self, execution_id: str) -> None:
        """Stop a running execution, if it still runs."""

    @abstractmethod
    def is_alive(self, execution_id: str, pid: int | None, pid_started_at: float | None) -> bool:
        """Whether the execution's runner still runs (used at start-up recovery)."""

    def available_languages(self) -> list[str]:
        return []

    # Deployments ------------------------------------------------------------------------
    @abstractmethod
    def ensure_deployment(self, spec: DeploymentSpec) -> None:
        """Create or update (idempotent) what the deployment needs; asynchronous."""

    @abstractmethod
    def remove_deployment(self, deployment_id: int) -> None:
        """Stop schedules and resident runners of the deployment."""

    @abstractmethod
    def deployment_state(self, deployment_id: int) -> DeploymentState:
        """What is true now of the deployment's schedule or resident runners."""

    @abstractmethod
    def dispatch(self, deployment_id: int, launch: Launch, wait_s: float = 0.0) -> Future:
        """Run one execution on a resident runner of a low-latency deployment (queued
        there when all its slots are busy). Returns a future of its `Answer`, which the
        domain records (domain/lifecycle.transition), whatever carried it. `wait_s` > 0:
        the caller waits for the answer anyway, so the backend may carry the call in the
        caller's thread for up to that long (the future is then done when this returns),
        and goes on in the background past it."""
