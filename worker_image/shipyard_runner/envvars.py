"""Environment variables of an execution, applied to the process-global ``os.environ``.

``os.environ`` is shared by every thread, so a resident runner running several executions
at once cannot give each its own environment. What it does instead, under one lock:

* when an execution starts, its variables are pushed on a per-variable stack and written;
* when it ends, its entries are removed and each variable gets back the value of the most
  recently started execution still running, or the value it had before any execution.

With one execution at a time (the default) this is exact: each execution sees its own
variables and nothing leaks into the next one. With parallel executions, a variable that
two running executions set differently holds the value of the one that started last.
The execution id itself is always right through the ``ContextVar`` (see context.py).
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_stacks: dict = {}  # name -> [(owner, value), ...] in start order
_base: dict = {}  # name -> value before the first push (None: was unset)


def control_url(api_url: str) -> str:
    """The server root from an environment URL ``{server}/environments/{project}/{env}``."""
    head, sep, _ = api_url.partition("/environments/")
    return head if sep else api_url.rstrip("/")


def execution_env(execution_id: str, token: str | None, api_url: str | None,
                  user_env: dict) -> dict:
    """The variables step code may rely on (API_CONTRACT.md §8.1) plus the user's."""
    env = {
        "SHIPYARD_EXECUTION_ID": execution_id,
        "CRAFT_AI_EXECUTION_ID": execution_id,
        "SDK_VERBOSE_LOG": os.environ.get("SDK_VERBOSE_LOG", "false"),
    }
    if token:
        for name in ("SHIPYARD_EXECUTION_TOKEN", "SHIPYARD_SDK_TOKEN", "CRAFT_AI_SDK_TOKEN"):
            env[name] = token
    if api_url:
        # URLs as reachable from the runner: keep what the orchestrator already set.
        derived = {
            "SHIPYARD_ENVIRONMENT_URL": api_url,
            "CRAFT_AI_ENVIRONMENT_URL": api_url,
            "SHIPYARD_CONTROL_URL": control_url(api_url),
            "CRAFT_AI_CONTROL_URL": control_url(api_url),
        }
        for name, value in derived.items():
            env[name] = os.environ.get(name) or value
    for name, value in (user_env or {}).items():
        env[str(name)] = "" if value is None else str(value)
    return env


def push(owner: object, env: dict) -> None:
    with _lock:
        for name, value in env.items():
            stack = _stacks.get(name)
            if stack is None:
                before = os.environ.get(name)
                if before == value:
                    # Already what the process has (URLs set at start, for instance): no
                    # write now, nothing to restore later. Were another execution to set it
                    # meanwhile, its end restores this same value.
                    continue
                stack = _stacks[name] = []
                _base[name] = before
            stack.append((owner, value))
            os.environ[name] = value


def pop(owner: object) -> None:
    with _lock:
        for name in list(_stacks):
            stack = [entry for entry in _stacks[name] if entry[0] is not owner]
            if stack:
                _stacks[name] = stack
                os.environ[name] = stack[-1][1]
                continue
            del _stacks[name]
            before = _base.pop(name)
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before


class applied:
    """``with applied(owner, env):`` push on enter, pop on exit (a class, not
    contextlib.contextmanager, to spare an import at every runner start)."""

    def __init__(self, owner: object, env: dict) -> None:
        self.owner = owner
        self.env = env

    def __enter__(self) -> None:
        push(self.owner, self.env)

    def __exit__(self, *exc) -> None:
        pop(self.owner)
