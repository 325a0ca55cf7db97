"""Binding a value to a context variable for a block: how an app's store and key reach the
code that runs its requests and threads (see appstate)."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Generic, TypeVar

T = TypeVar("T")


class Binding(Generic[T]):
    """Within the block (this thread, this context), `var` holds `value`. A class rather than
    a generator-based context manager: every request enters a few of them."""

    __slots__ = ("var", "value", "_token")

    def __init__(self, var: ContextVar[T | None], value: T) -> None:
        self.var = var
        self.value = value

    def __enter__(self) -> T:
        self._token: Token = self.var.set(self.value)
        return self.value

    def __exit__(self, *exc: object) -> None:
        self.var.reset(self._token)
