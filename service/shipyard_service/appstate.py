"""What one app owns and binds while it works: its store and its secret box.

The models (`store.database`) and the secrets (`crypto`) resolve through context variables,
so an app binds its own for each of its contexts (requests, `app.app_context()`), for the
threads it starts (`owned_thread`) and for the orchestrator's reports (`calls`). Two apps
in one process then each see only their own data and key."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import peewee

from . import crypto
from .store.db import bind_database, database


class AppState:
    def __init__(self, db: peewee.Database, secret_box: crypto.SecretBox) -> None:
        self.db = db
        self.box = secret_box

    @contextlib.contextmanager
    def bound(self) -> Iterator[AppState]:
        """Within the block (this thread, this context), the app's store and key."""
        with bind_database(self.db), crypto.bind_box(self.box):
            yield self

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
