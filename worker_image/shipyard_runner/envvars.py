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

When the last running execution ends, its variables other than its own id and token are
left in place until the next one starts, which keeps those it sets to the same value and
puts the others back first: a resident runner's calls each set the deployment's variables
(the same values, call after call), and unsetting then setting each of them again cost
some 4 us per variable per call. Code running outside any execution (a thread a step module
started at import) sees them between two calls, but never an ended execution's id or token
(the SDKs' fallback for an execution id, API_CONTRACT.md §8.2).
"""

from __future__ import annotations

import os
import threading

from . import cenv

_lock = threading.Lock()
_stacks: dict = {}  # name -> [(owner, value), ...] in start order
_base: dict = {}  # name -> value before the first push (None: was unset)
_left: set = set()  # names whose value the last execution left (none is running)
_running = 0  # executions between their push and their pop
# Each execution's own: put back as soon as it ends.
_PER_EXECUTION = frozenset({"SHIPYARD_EXECUTION_ID", "CRAFT_AI_EXECUTION_ID",
                            "SHIPYARD_EXECUTION_TOKEN", "SHIPYARD_SDK_TOKEN",
                            "CRAFT_AI_SDK_TOKEN"})


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


def _set(name: str, value: str) -> None:
    if name in _PER_EXECUTION:  # a new value at every call: see cenv.py
        cenv.put(name, value)
    else:
        os.environ[name] = value


def _restore(name: str) -> None:
    before = _base.pop(name)
    if before is None:
        os.environ.pop(name, None)
    else:
        _set(name, before)


def push(owner: object, env: dict) -> None:
    global _running
    with _lock:
        _running += 1
        for name, value in env.items():
            stack = _stacks.get(name)
            if stack is None:
                if name in _left:  # left by the last execution, its base still in _base
                    _left.discard(name)
                    # Compared with the process's value: step code may have changed it.
                    if os.environ.get(name) != value:
                        _set(name, value)
                    _stacks[name] = [(owner, value)]
                    continue
                before = os.environ.get(name)
                if before == value:
                    # Already what the process has (URLs set at start, for instance): no
                    # write now, nothing to restore later. Were another execution to set it
                    # meanwhile, its end restores this same value.
                    continue
                stack = _stacks[name] = []
                _base[name] = before
            stack.append((owner, value))
            _set(name, value)
        for name in _left:  # left by the last execution, not set by this one
            _restore(name)
        _left.clear()


def pop(owner: object) -> None:
    global _running
    with _lock:
        _running -= 1
        for name in list(_stacks):
            stack = [entry for entry in _stacks[name] if entry[0] is not owner]
            if stack:
                _stacks[name] = stack
                _set(name, stack[-1][1])
                continue
            del _stacks[name]
            if _running == 0 and name not in _PER_EXECUTION:
                _left.add(name)  # put back (or kept) by the next push
            else:
                _restore(name)


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
