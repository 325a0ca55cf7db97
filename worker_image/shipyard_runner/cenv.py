"""Set a per-execution variable (its id, its token) without glibc's ``setenv()``.

``os.environ[name] = value`` calls ``setenv()`` (CPython >= 3.9), and glibc keeps every
distinct ``NAME=value`` string ``setenv()`` ever made, for the life of the process (so that
a pointer handed out by ``getenv()`` stays valid). A resident runner gives each call a new
execution id and token in five variables: some 500 B of memory per call that never comes
back (0.5 GB per million calls), and a search tree glibc walks on every ``setenv()``.

Here each such variable owns two fixed C buffers instead. A new value is written into the
one not in ``environ`` and that one is handed to ``putenv()``, which stores the caller's
pointer and copies nothing; the other buffer is rewritten only at the next call, so a
reader of ``environ`` never sees a value half written. Unsetting needs nothing of this:
``unsetenv()`` allocates nothing. ``os.environ`` is kept in step by hand (see ``_python_data``).

Used only where it is known to be right: glibc (musl's ``setenv()`` frees what it replaced,
so the plain path does not leak there), a value that fits, CPython's ``os.environ`` of the
expected shape. Anything else takes the plain ``os.environ[name] = value``.
Callers serialise their calls (envvars.py holds its lock).
"""

from __future__ import annotations

import os

# Bytes of "NAME=value\0" per buffer: execution ids and tokens are well under 100.
CAPACITY = 512

_state = None  # None: not tried yet; False: plain path only; else _Writer


class _Writer:
    """Two buffers per name, the libc ``putenv`` and ``os.environ``'s own mapping."""

    def __init__(self, ctypes, libc, data: dict) -> None:
        self.ctypes = ctypes
        self.putenv = libc.putenv
        self.putenv.argtypes = [ctypes.c_void_p]
        self.putenv.restype = ctypes.c_int
        self.data = data
        self.buffers: dict = {}  # name -> [buffer, buffer, index of the next one to write]

    def put(self, name: str, value: str) -> bool:
        key = os.environ.encodekey(name)
        raw = os.environ.encodevalue(value)
        line = key + b"=" + raw + b"\0"
        if len(line) > CAPACITY or b"\0" in raw:
            return False  # the plain path (and its error for a NUL)
        slot = self.buffers.get(name)
        if slot is None:
            # Never freed: environ may point into them until the process ends.
            slot = self.buffers[name] = [self.ctypes.create_string_buffer(CAPACITY),
                                         self.ctypes.create_string_buffer(CAPACITY), 0]
        buffer = slot[slot[2]]
        slot[2] ^= 1
        self.ctypes.memmove(buffer, line, len(line))
        if self.putenv(self.ctypes.addressof(buffer)) != 0:
            return False
        self.data[key] = raw
        return True


def _python_data():
    """``os.environ``'s mapping of encoded names to encoded values, or None.

    Private to CPython's ``os._Environ``, but the only way to record a value in
    ``os.environ`` without its ``__setitem__`` calling ``setenv()`` again. Used only if it
    has the shape CPython gives it on POSIX (a dict of bytes, the one ``os.environ.get``
    reads); otherwise the plain path.
    """
    data = getattr(os.environ, "_data", None)
    encodekey = getattr(os.environ, "encodekey", None)
    encodevalue = getattr(os.environ, "encodevalue", None)
    if type(data) is not dict or not callable(encodekey) or not callable(encodevalue):
        return None
    try:
        probe = encodekey("PATH")
    except Exception:  # noqa: BLE001 - any surprise means: not the shape we know
        return None
    if not isinstance(probe, bytes) or not isinstance(encodevalue("x"), bytes):
        return None
    first = next(iter(data.items()), (b"", b""))
    if type(first[0]) is not bytes or type(first[1]) is not bytes:
        return None
    return data


def _writer():
    global _state
    if _state is None:
        _state = False
        data = _python_data()
        if data is not None:
            try:
                import ctypes

                libc = ctypes.CDLL(None)
                # glibc only: what leaks is glibc's setenv(); another libc's putenv()
                # might copy, or its setenv() not leak at all.
                if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "putenv"):
                    _state = _Writer(ctypes, libc, data)
            except (ImportError, OSError, AttributeError):
                pass
    return _state


def put(name: str, value: str) -> None:
    """``os.environ[name] = value`` for a value that changes at every execution."""
    writer = _writer()
    if writer is False or not writer.put(name, value):
        os.environ[name] = value
