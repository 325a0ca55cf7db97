"""What one app owns and binds while it works: its store and its secret box.

The models (`store.database`) and the secrets (`crypto`) resolve through context variables,
so an app binds its own for each of its contexts (requests, `app.app_context()`), for the
threads it starts (`owned_thread`) and for the orchestrator's reports (`calls`). Two apps
in one process then each see only their own data and key."""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any

import peewee

from . import crypto
from .store.db import bind_database, database


class AppState:
    def __init__(self, db: peewee.Database, secret_box: crypto.SecretBox) -> None:
        self.db = db
        self.box = secret_box

    def bound(self) -> _Bound:
        """Within the block (this thread, this context), the app's store and key."""
        return _Bound(self)

    def calls(self, target: Any) -> BoundCalls:
        """`target`'s methods, each called within this app's binding."""
        return BoundCalls(target, self)

    def make_default(self) -> None:
        """This app's store and key for code outside any binding: for the process that
        serves this one app (gunicorn's hooks, third-party threads)."""
        database.initialize(self.db)
        crypto.make_default(self.box)

    def close(self) -> None:
        """Release the store's connections (a pool's every one; SQLite's of this thread:
        the others end with their threads)."""
        close_all = getattr(self.db, "close_all", None)
        if close_all is not None:
            close_all()
        if not self.db.is_closed():
            self.db.close()


class _Bound:
    """One entry into an app's binding (a class: every request of the app enters one)."""

    __slots__ = ("_state", "_db", "_box")

    def __init__(self, state: AppState) -> None:
        self._state = state

    def __enter__(self) -> AppState:
        self._db = bind_database(self._state.db)
        self._box = crypto.bind_box(self._state.box)
        self._db.__enter__()
        self._box.__enter__()
        return self._state

    def __exit__(self, *exc: object) -> None:
        self._box.__exit__()
        self._db.__exit__()


class BoundCalls:
    """A proxy whose methods run within an app's binding: for objects called back from
    threads the app did not start (the orchestrator's pools, its scheduler)."""

    def __init__(self, target: Any, state: AppState) -> None:
        self._target = target
        self._state = state

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def bound_call(*args, **kwargs):
            with self._state.bound():
                return attr(*args, **kwargs)

        return bound_call


def owned_thread(target: Callable[[], Any], name: str) -> threading.Thread:
    """A daemon thread running `target` in a copy of the caller's context: started by an
    app within its binding, it keeps that app's store and key."""
    return threading.Thread(target=contextvars.copy_context().run, args=(target,), name=name,
                            daemon=True)
