"""Writers that meet on one store, on SQLite and PostgreSQL: a metric and its execution's
end, a read-then-write transaction and another process's write, two servers' background
passes."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import pytest
from shipyard_service.domain import metrics
from shipyard_service.domain.auth import Principal
from shipyard_service.errors import Forbidden
from shipyard_service.sortindexer import SortIndexer
from shipyard_service.store import db as store_db
from shipyard_service.store import db_session, sortindex
from shipyard_service.store.db import database, utcnow
from shipyard_service.store.exclusive import only_one
from shipyard_service.store.models import Environment, Execution, Metric, Project, SortKey, SortMark

ENDED = ("Succeeded", "Failed")
WAIT_S = 10


@pytest.fixture
def store(database_url, tmp_path):
    db = store_db.init_db(database_url)
    with db.connection_context():
        environment = Environment.create(project=Project.create(name="p"), name="e")
        yield tmp_path / "store.db", environment
    db.close()


def _in_thread(target) -> tuple[threading.Thread, list]:
    """`target()` in a thread with its own connection; what it raised lands in the list."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            with db_session():
                target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


def test_an_execution_does_not_end_while_one_of_its_metrics_is_being_written(store,
                                                                             monkeypatch):
    _, environment = store
    Execution.create(execution_id="x-1", environment=environment, pipeline_name="p",
                     status="Running", created_at=utcnow() - dt.timedelta(seconds=30))
    principal = Principal(user_id="u", execution_id="x-1", environment_id=environment.id)
    inside, release = threading.Event(), threading.Event()
    stamp = metrics.utcnow

    def paused_utcnow() -> dt.datetime:
        # Between the running check and the insert: the metric's write is in flight.
        inside.set()
        assert release.wait(WAIT_S)
        return stamp()

    monkeypatch.setattr(metrics, "utcnow", paused_utcnow)
    writer, writer_raised = _in_thread(
        lambda: metrics.record_single(environment, principal, "acc", {"value": 0.5,
                                                                      "execution_id": "x-1"}))
    assert inside.wait(WAIT_S)
    ended_at = utcnow() - dt.timedelta(seconds=20)

    def end() -> None:
        with database.atomic():
            Execution.update(status="Succeeded", end_date=ended_at).where(
                Execution.execution_id == "x-1").execute()

    ender, ender_raised = _in_thread(end)
    ender.join(0.5)
    assert ender.is_alive(), "the execution ended while its metric was being written"
    release.set()
    writer.join(WAIT_S)
    ender.join(WAIT_S)
    assert not writer.is_alive() and not ender.is_alive()
    assert writer_raised == [] and ender_raised == []
    assert Metric.get(Metric.execution_id == "x-1").value == 0.5
    assert Execution.get(Execution.execution_id == "x-1").status == "Succeeded"

    # The indexer passes the ended execution: its metric key gets the final status.
    assert sortindex.index_batch(environment.id, ENDED, utcnow()) == 1
    assert SortKey.get((SortKey.execution_id == "x-1") & (SortKey.key == "m:acc")).status == \
        "Succeeded"
    # Ended: no metric lands any more.
    monkeypatch.setattr(metrics, "utcnow", stamp)
    with pytest.raises(Forbidden):
        metrics.record_single(environment, principal, "loss", {"value": 1,
                                                               "execution_id": "x-1"})
    with pytest.raises(Forbidden):
        metrics.record_list(environment, principal, "curve", {"values": [1, 2],
                                                              "execution_id": "x-1"})
    assert not Metric.select().where(Metric.name == "loss").exists()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_read_then_write_transaction_holds_when_another_process_writes(store):
    """SQLite: another process's write between a transaction's read and its write made
    that write fail ("database is locked": SQLite cannot move the transaction's snapshot).
    The transaction holds the write lock from its start instead; the other waits.
    (PostgreSQL's read-committed statements each take a new snapshot.)"""
    path, environment = store
    Execution.create(execution_id="x-1", environment=environment, pipeline_name="p",
                     status="Running", created_at=utcnow())
    other = sqlite3.connect(path, timeout=0.3)  # a second server, an admin command
    try:
        with database.atomic():
            assert Execution.get(Execution.execution_id == "x-1").status == "Running"
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("UPDATE execution SET pipeline_name = 'q'")
            Execution.update(status="Succeeded").where(
                Execution.execution_id == "x-1").execute()
        other.execute("UPDATE execution SET pipeline_name = 'q'")
        other.commit()
    finally:
        other.close()
    execution = Execution.get(Execution.execution_id == "x-1")
    assert (execution.status, execution.pipeline_name) == ("Succeeded", "q")


def test_servers_sharing_a_store_take_turns_at_a_background_pass(store):
    _, environment = store
    for i in range(3):
        Execution.create(execution_id=f"x-{i}", environment=environment, pipeline_name="p",
                         status="Succeeded", created_at=utcnow() - dt.timedelta(minutes=5),
                         end_date=utcnow() - dt.timedelta(minutes=4))
    holding, release = threading.Event(), threading.Event()
    held_by_other = []

    def other_server() -> None:
        with only_one("sort-indexer") as mine:
            held_by_other.append(mine)
            holding.set()
            assert release.wait(WAIT_S)

    other, other_raised = _in_thread(other_server)
    assert holding.wait(WAIT_S) and held_by_other == [True]
    with only_one("retention-sweeper") as mine:
        assert mine  # another pass's lock is free
    assert SortIndexer(60).index_once() == 0
    assert not SortMark.select().exists()
    release.set()
    other.join(WAIT_S)
    assert not other.is_alive() and other_raised == []
    assert SortIndexer(60).index_once() == 3
    assert SortMark.get().execution_id == "x-2"
