"""Find the id of the execution this process is running (API contract §8.2).

The runner registers a top-level module ``__craft_internal_execution_context`` whose
attribute ``current_execution_id`` is a :class:`contextvars.ContextVar`. When the variable
is unset in the current context, the environment variables are used instead. A failed
import is remembered for the life of the process and never retried.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

CONTEXT_MODULE_NAME = "__craft_internal_execution_context"
ENV_VARIABLES = ("CRAFT_AI_EXECUTION_ID", "SHIPYARD_EXECUTION_ID")

_NOT_LOADED = "not-loaded"
# _NOT_LOADED before the first lookup, None after a failed import, else the module.
_context_module: str | None | ModuleType = _NOT_LOADED


def _load_context_module() -> ModuleType | None:
    global _context_module
    if _context_module == _NOT_LOADED:
        try:
            _context_module = importlib.import_module(CONTEXT_MODULE_NAME)
        except ImportError:
            _context_module = None
    return _context_module  # type: ignore[return-value]


def get_execution_id() -> str | None:
    """Return the current execution id, or ``None`` outside an execution."""
    module = _load_context_module()
    if module is not None:
        variable = getattr(module, "current_execution_id", None)
        if variable is not None:
            try:
                return variable.get()
            except LookupError:
                pass
    for name in ENV_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return None


def reset_cache() -> None:
    """Forget the import attempt (for tests)."""
    global _context_module
    _context_module = _NOT_LOADED
