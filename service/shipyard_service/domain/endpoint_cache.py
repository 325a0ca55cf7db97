"""What every endpoint call looks up, kept briefly, one cache per app (Services.endpoints):
environments by name (never renamed), deployments by (environment, URL path) with their
token opened, and each environment's variables (opened) handed to its executions. Changes
made through this app forget the deployments or the variables at once (a regenerated
token is refused immediately, a changed variable reaches the next execution); another API
process sharing the store sees them within DEPLOYMENT_TTL_S."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache

ENVIRONMENT_TTL_S = 5.0
DEPLOYMENT_TTL_S = 1.0


class EndpointCache:
    def __init__(self) -> None:
        self._environments: TTLCache = TTLCache(maxsize=256, ttl=ENVIRONMENT_TTL_S)
        self._deployments: TTLCache = TTLCache(maxsize=1024, ttl=DEPLOYMENT_TTL_S)
        self._variables: TTLCache = TTLCache(maxsize=256, ttl=DEPLOYMENT_TTL_S)
        self._lock = threading.Lock()

    def environment(self, names: Hashable, load: Callable[[], Any]) -> Any:
        return self._get(self._environments, names, load)

    def deployment(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """`load`'s value, unless None (a missing endpoint is looked up again next time)."""
        return self._get(self._deployments, key, load)

    def forget_deployments(self) -> None:
        with self._lock:
            self._deployments.clear()

    def variables(self, environment_id: int, load: Callable[[], dict]) -> dict:
        """An environment's variables for an execution: one query less per call."""
        return self._get(self._variables, environment_id, load)

    def forget_variables(self) -> None:
        with self._lock:
            self._variables.clear()

    def _get(self, cache: TTLCache, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            value = cache.get(key)
        if value is None:
            value = load()  # outside the lock: a query
            if value is not None:
                with self._lock:
                    cache[key] = value
        return value
