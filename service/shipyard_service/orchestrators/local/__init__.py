"""The embedded backend: uv virtualenvs, runner processes, APScheduler."""

from .orchestrator import LocalOrchestrator

__all__ = ["LocalOrchestrator"]
