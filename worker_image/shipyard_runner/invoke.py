"""Import the user's module, call the function, check what it returned."""

from __future__ import annotations

import json
import math
import os
import sys

MAX_VALUES_BYTES = 60_000  # 0.06 MB for all non-file outputs together, JSON-encoded
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect
_RUNNER_DIR = os.path.dirname(os.path.abspath(__file__))


class StepError(Exception):
    """A failure attributed to the step (its code, its result): status Failed, exit 1."""

    def __init__(self, type_: str, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.traceback = traceback


# -- import ---------------------------------------------------------------------------------

def load_function(code_dir: str, function_path: str, function_name: str):
    """Import ``function_path`` (relative to ``code_dir``) and return ``function_name``.

    ``code_dir`` goes first on ``sys.path`` (imports like ``from src.utils import x``), then
    the module's own folder (``import helpers`` next to it, as ``python src/main.py``
    would allow). The module gets its dotted name (``src.main``) when that name is valid
    and free, so relative imports and pickling of its classes work.
    """
    code_dir = os.path.abspath(code_dir)
    rel = function_path.replace("\\", "/").lstrip("/")
    path = os.path.normpath(os.path.join(code_dir, rel))
    if not (path == code_dir or path.startswith(code_dir + os.sep)):
        raise StepError("FunctionNotFound", "function_path %r leaves the step's code folder"
                        % function_path)
    if not os.path.isfile(path):
        raise StepError("FunctionNotFound", "function_path %r: no such file in the step's code"
                        % function_path)
    for folder in (os.path.dirname(path), code_dir):
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)

    import importlib.util

    name = _module_name(rel)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        raise user_error(exc, "while importing %s" % function_path) from None
    try:
        func = getattr(module, function_name)
    except AttributeError:
        raise StepError("FunctionNotFound", "function %r not found in %s"
                        % (function_name, function_path)) from None
    if not callable(func):
        raise StepError("FunctionNotFound", "%s.%s is not callable (it is a %s)"
                        % (function_path, function_name, type(func).__name__))
    return func


def _module_name(rel: str) -> str:
    parts = rel[:-3].split("/") if rel.endswith(".py") else rel.split("/")
    parts = [p for p in parts if p not in ("", ".")]
    if parts and parts[-1] == "__init__":
        parts.pop()
    dotted = ".".join(parts)
    if parts and all(p.isidentifier() for p in parts) and parts[0] not in sys.modules:
        return dotted
    return "__shipyard_step__"


# -- call -----------------------------------------------------------------------------------

def is_async(func) -> bool:
    """True for ``async def`` functions, also behind functools.partial or decorators."""
    seen = 0
    while seen < 20:
        seen += 1
        code = getattr(func, "__code__", None)
        if code is not None:
            return bool(code.co_flags & _CO_COROUTINE)
        inner = getattr(func, "func", None) or getattr(func, "__wrapped__", None)
        if inner is None:
            call = getattr(type(func), "__call__", None)  # noqa: B004 - we want the method
            inner = getattr(call, "__func__", call) if call is not None else None
            if inner is None or inner is func:
                return False
        func = inner
    return False


def is_awaitable(value) -> bool:
    return hasattr(type(value), "__await__") and not isinstance(value, type)


def call(func, kwargs: dict):
    """Call the function in this thread; an awaitable result is run to completion."""
    result = func(**kwargs)
    if is_awaitable(result):
        import asyncio  # lazy: only async steps pay for it

        async def wait():
            return await result

        result = asyncio.run(wait())
    return result


# -- errors ---------------------------------------------------------------------------------

def _infrastructure(filename: str) -> bool:
    if filename.startswith(_RUNNER_DIR) or filename.startswith("<frozen importlib"):
        return True
    norm = filename.replace("\\", "/")
    return "/asyncio/" in norm or "/concurrent/futures/" in norm or norm.endswith(
        ("/importlib/__init__.py", "/contextlib.py"))


def format_traceback(exc: BaseException) -> str:
    """The traceback without the runner's (and asyncio's, importlib's) leading frames."""
    import traceback

    try:
        te = traceback.TracebackException.from_exception(exc)
    except Exception:  # pragma: no cover - exotic exception objects
        return "".join(traceback.format_exception_only(type(exc), exc))
    todo, seen = [te], set()
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        frames = list(item.stack)
        while frames and _infrastructure(frames[0].filename):
            frames.pop(0)
        item.stack = traceback.StackSummary.from_list(frames)
        todo.extend((item.__cause__, item.__context__))
    return "".join(te.format())


def error_type(exc: BaseException) -> str:
    cls = type(exc)
    module = getattr(cls, "__module__", "builtins")
    return cls.__qualname__ if module in ("builtins", "__main__") else "%s.%s" % (
        module, cls.__qualname__)


def user_error(exc: BaseException, where: str = "") -> StepError:
    """A StepError describing an exception raised by user code."""
    try:
        text = str(exc)
    except Exception:  # a user exception whose __str__ itself fails
        text = "<exception str() failed>"
    name = type(exc).__name__
    message = "%s: %s" % (name, text) if text else name
    if where:
        message = "%s (%s)" % (message, where)
    return StepError(error_type(exc), message, format_traceback(exc))


# -- result ---------------------------------------------------------------------------------

def _describe(value) -> str:
    cls = type(value)
    module = getattr(cls, "__module__", "builtins")
    name = cls.__qualname__ if module == "builtins" else "%s.%s" % (module, cls.__qualname__)
    if module.split(".")[0] in ("numpy", "pandas", "torch"):
        name += " (convert it to a native Python value, e.g. with .item() or .tolist())"
    return name


def _check_value(name: str, data_type: str, value, cwd: str):
    """Return the value to report (file outputs: the absolute path). Raises StepError."""
    def bad(expected: str) -> StepError:
        return StepError("OutputTypeError", "output %r must be %s (data_type %r), got %s"
                         % (name, expected, data_type, _describe(value)))

    if data_type == "file":
        path = value.get("path") if isinstance(value, dict) else None
        if not isinstance(path, (str, os.PathLike)):
            raise bad('{"path": <local file>}')
        full = os.path.join(cwd, os.fspath(path))
        if not os.path.isfile(full):
            raise StepError("OutputFileNotFound", "file output %r: %s is not a file"
                            % (name, os.fspath(path)))
        return full
    if data_type == "string" and not isinstance(value, str):
        raise bad("a string")
    if data_type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number (int or float)")
        if isinstance(value, float) and not math.isfinite(value):
            raise StepError("OutputTypeError", "output %r must be a finite number, got %r"
                            % (name, value))
    if data_type == "boolean" and not isinstance(value, bool):
        raise bad("a boolean")
    if data_type == "array" and not isinstance(value, list):
        raise bad("a list")
    return value


def check_result(result, outputs: list, cwd: str) -> tuple:
    """Validate a return value against the declared ``[(name, data_type)]``.

    Returns ``(values, files)``: non-file values by name, file outputs' absolute paths.
    """
    if result is None:
        if outputs:
            raise StepError("OutputMissing", "the function returned None, but the step "
                            "declares outputs: %s" % ", ".join(n for n, _ in outputs))
        return {}, {}
    if not isinstance(result, dict):
        if not outputs:
            raise StepError("OutputTypeError", "the function returned %s, but the step "
                            "declares no outputs (return None or nothing)" % _describe(result))
        raise StepError("OutputTypeError", "the function must return a dict {output name: "
                        "value}, got %s" % _describe(result))
    declared = dict(outputs)
    extra = [k for k in result if k not in declared]
    if extra:
        raise StepError("OutputUndeclared", "the function returned undeclared outputs: %s "
                        "(declared: %s)" % (", ".join(map(repr, extra)),
                                            ", ".join(declared) or "none"))
    missing = [n for n, _ in outputs if n not in result]
    if missing:
        raise StepError("OutputMissing", "missing outputs in the returned dict: %s"
                        % ", ".join(map(repr, missing)))
    values, files = {}, {}
    total = 0
    for name, data_type in outputs:
        checked = _check_value(name, data_type, result[name], cwd)
        if data_type == "file":
            files[name] = checked
            continue
        try:
            encoded = json.dumps(checked, allow_nan=False, ensure_ascii=False,
                                 separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise StepError("OutputTypeError", "output %r is not JSON-serialisable: %s"
                            % (name, exc)) from None
        total += len(encoded.encode("utf-8"))
        values[name] = checked
    if total > MAX_VALUES_BYTES:
        raise StepError("OutputTooLarge", "non-file outputs take %d bytes JSON-encoded; the "
                        "limit is 0.06 MB (%d bytes) in total. Return large data as a file "
                        "output." % (total, MAX_VALUES_BYTES))
    return values, files
