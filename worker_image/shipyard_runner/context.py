"""Per-execution context: the execution id the craft-ai-sdk looks up, and the log sink.

The official ``craft-ai-sdk`` does ``import __craft_internal_execution_context`` once per
process and calls ``current_execution_id.get()`` (no default). If the import fails the
failure is cached forever, so the module must be in ``sys.modules`` before user code runs.
A ``ContextVar`` (not a global) because a resident runner runs several executions at once:
each worker thread or asyncio task sets its own value.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar

MODULE_NAME = "__craft_internal_execution_context"


def _install_module():
    module = sys.modules.get(MODULE_NAME)
    var = getattr(module, "current_execution_id", None)
    if module is None or not isinstance(var, ContextVar):
        module = type(sys)(MODULE_NAME, "Execution id of the step execution running in this context.")
        module.current_execution_id = ContextVar("current_execution_id")
        sys.modules[MODULE_NAME] = module
    return module


current_execution_id: ContextVar = _install_module().current_execution_id

# The LogSink receiving stdout/stderr lines written in this context (see logs.py).
current_sink: ContextVar = ContextVar("shipyard_current_sink")


def install() -> None:
    """Make sure the module is registered (idempotent; importing this file already does)."""
    global current_execution_id
    current_execution_id = _install_module().current_execution_id
