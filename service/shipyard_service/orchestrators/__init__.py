"""Where steps are built and executions run: locally, or on Argo/Kubernetes.

`make_orchestrator(settings)` picks the backend from `settings.orchestrator`
(SHIPYARD_ORCHESTRATOR); `hera` and `kubernetes` are only imported when Argo is chosen."""

from __future__ import annotations

from ..config import Settings
from .base import Orchestrator

__all__ = ["Orchestrator", "make_orchestrator"]


def make_orchestrator(settings: Settings) -> Orchestrator:
    kind = (settings.orchestrator or "local").lower()
    if kind == "local":
        from .local import LocalOrchestrator

        return LocalOrchestrator(settings)
    if kind == "argo":
        from .argo import ArgoOrchestrator

        return ArgoOrchestrator(settings)
    raise ValueError(f"Unknown SHIPYARD_ORCHESTRATOR {settings.orchestrator!r}: use 'local' or 'argo'")
