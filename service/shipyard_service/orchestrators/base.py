"""The one narrow interface between the platform and where code runs.

Only implementations of this interface import subprocess, APScheduler, Hera or kubernetes.
They report back through `Callbacks`, never by importing the domain."""

from __future__ import annotations

from abc import ABC, abstractmethod
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


class Callbacks(Protocol):
    def build_log(self, step_id: int, message: str) -> None: ...

    def build_done(self, step_id: int, env_key: str | None, error: str | None) -> None: ...

    def execution_started(self, execution_id: str, pid: int | None) -> None: ...

    def execution_exited(self, execution_id: str, return_code: int, detail: str) -> None:
        """The runner is gone; if it did not report a result, the execution failed."""


class Orchestrator(ABC):
    """Builds step environments and runs executions (elastic mode)."""

    name = "abstract"

    def bind(self, callbacks: Callbacks) -> None:
        self.callbacks = callbacks

    def start(self) -> None:
        """Start background machinery (worker threads, supervisors)."""

    def stop(self) -> None:
        """Stop background machinery and the processes it owns."""

    @abstractmethod
    def build_step(self, request: BuildRequest) -> None:
        """Build asynchronously; report with callbacks.build_log / build_done."""

    @abstractmethod
    def start_execution(self, launch: Launch) -> None:
        """Start asynchronously; the runner reports its result to the API itself."""

    @abstractmethod
    def cancel_execution(self, execution_id: str) -> None:
        """Stop a running execution, if it still runs."""

    @abstractmethod
    def is_alive(self, execution_id: str, pid: int | None, pid_started_at: float | None) -> bool:
        """Whether the execution's runner still runs (used at start-up recovery)."""

    def available_languages(self) -> list[str]:
        return []
