"""Group commit (store/groupcommit.py) on a real SQLite store: concurrent writes share a
transaction, each caller returns once its own write is committed or raises its own error."""

from __future__ import annotations

import threading
import time

import peewee
import pytest
from shipyard_service.store import database
from shipyard_service.store.db import close_db, init_db
from shipyard_service.store.groupcommit import GroupCommit
from shipyard_service.store.models import Environment, Execution, Project


@pytest.fixture()
def env(tmp_path):
    init_db(f"sqlite:///{tmp_path}/store.db")
    yield Environment.create(project=Project.create(name="p"), name="e")
    close_db()


class Recording(GroupCommit):
    """The sizes of the transactions committed, and the threads that committed them."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, int]] = []

    def _commit(self, batch) -> None:
        self.batches.append((len(batch), threading.get_ident()))
        super()._commit(batch)


def _insert(env, execution_id: str):
    return lambda: Execution.insert(execution_id=execution_id, environment=env,
                                    pipeline_name="p").execute()


def _stored() -> set[str]:
    with database.connection_context():
        return {e.execution_id for e in Execution.select(Execution.execution_id)}


def test_a_lone_write_commits_at_once_in_its_callers_thread(env):
    commits = Recording()
    commits.run(_insert(env, "x-0"))
    assert commits.batches == [(1, threading.get_ident())]
    assert _stored() == {"x-0"}


def test_writes_queued_behind_a_commit_share_the_next_one(env):
    commits = Recording()
    release = threading.Event()
    errors: list = []

    def slow_first() -> None:
        _insert(env, "x-first")()
        assert release.wait(30)

    def call(write) -> None:
        try:
            commits.run(write)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    first = threading.Thread(target=call, args=(slow_first,))
    first.start()
    deadline = time.monotonic() + 10
    while not commits.batches:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    others = [threading.Thread(target=call, args=(_insert(env, f"x-{i}"),)) for i in range(8)]
    for thread in others:
        thread.start()
    while len(commits._queue) < 8:  # all eight wait behind the first commit
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert _stored() == set()  # nothing committed yet
    release.set()
    for thread in [first, *others]:
        thread.join(30)
    assert not errors, errors
    assert [size for size, _ in commits.batches] == [1, 8]
    assert _stored() == {"x-first"} | {f"x-{i}" for i in range(8)}


def test_a_failing_write_fails_alone(env):
    commits = Recording()
    commits.run(_insert(env, "x-taken"))
    release = threading.Event()
    outcome: dict = {}

    def slow_first() -> None:
        _insert(env, "x-a")()
        assert release.wait(30)

    def call(name: str, write) -> None:
        try:
            commits.run(write)
            outcome[name] = "ok"
        except peewee.IntegrityError:
            outcome[name] = "IntegrityError"

    threads = [threading.Thread(target=call, args=("a", slow_first))]
    threads[0].start()
    deadline = time.monotonic() + 10
    while len(commits.batches) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for name, execution_id in (("b", "x-b"), ("dup", "x-taken"), ("c", "x-c")):
        threads.append(threading.Thread(target=call, args=(name, _insert(env, execution_id))))
        threads[-1].start()
    while len(commits._queue) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(30)
    assert outcome == {"a": "ok", "b": "ok", "dup": "IntegrityError", "c": "ok"}
    assert [size for size, _ in commits.batches] == [1, 1, 3]
    assert _stored() == {"x-taken", "x-a", "x-b", "x-c"}
