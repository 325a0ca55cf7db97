"""The set of collaborators the domain works with, built once per app."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .appstate import AppState
from .artifacts import Artifacts
from .config import Settings
from .datastore.base import DataStore
from .domain.auth import LoginThrottle, TokenService
from .domain.deferred import DeferredRows
from .domain.endpoint_cache import EndpointCache
from .events import Events
from .orchestrators.base import Orchestrator


@dataclass
class Services:
    settings: Settings
    tokens: TokenService
    artifacts: Artifacts
    datastore: DataStore
    orchestrator: Orchestrator
    events: Events
    # Started by lifecycle.start_background_work, stopped at worker exit (server.py).
    retention: Any = None
    # The wake-ups of step retries (retries.RetryTimer): the same owner and stop as retention.
    retries: Any = None
    login_throttle: LoginThrottle = field(default=None)  # type: ignore[assignment]
    # Set when the server begins to stop (from the worker's signal handler).
    stopping: threading.Event = field(default_factory=threading.Event)
    # The app's store and key, bound by its contexts and the threads it owns.
    state: AppState = field(default=None)  # type: ignore[assignment]
    # What endpoint calls look up, kept briefly for this app only.
    endpoints: EndpointCache = field(default_factory=EndpointCache)
    # Low-latency executions whose row is written when they end (deferred.py).
    deferred: DeferredRows = field(default_factory=DeferredRows)

    def __post_init__(self) -> None:
        if self.login_throttle is None:
            s = self.settings
            self.login_throttle = LoginThrottle(s.login_failures_per_account,
                                                s.login_failures_per_address,
                                                s.login_failure_window_s)

    def environment_url(self, project: str, environment: str) -> str:
        return f"{self.settings.public_url}/environments/{project}/{environment}"
