"""An app's background work runs only when asked, within that app's binding, and stops
with the app: two apps' samplers and orchestrator reports each reach their own store."""

from __future__ import annotations

import threading
import time

from shipyard_service.app import close_app, start_background_work
from shipyard_service.store.models import BuildLog, ResourceSample, Step

from .conftest import add_step

OWNED = {"sqlite-checkpoint", "retention-sweeper", "resource-sampler", "sort-indexer"}


def _owned_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name in OWNED and t.is_alive()}


def _workers(app) -> set[str]:
    with app.app_context():
        return {w for (w,) in ResourceSample.select(ResourceSample.worker).distinct().tuples()}


def test_background_threads_work_in_their_apps_store_and_stop_with_it(make_app):
    assert not _owned_threads()
    a = make_app(resource_sample_s=0.1, worker_name="worker-a")
    b = make_app(resource_sample_s=0.1, worker_name="worker-b")
    assert not _owned_threads()  # nothing runs until asked
    start_background_work(a)
    start_background_work(b)
    try:
        assert _owned_threads() == OWNED
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (_workers(a) and _workers(b)):
            time.sleep(0.05)
        assert _workers(a) == {"worker-a"} and _workers(b) == {"worker-b"}

        # The orchestrator reports from threads the app did not start (its pools, its
        # scheduler): each report lands in the store of the app it belongs to.
        add_step(a, "reported", [], [])
        with a.app_context():
            step_id = Step.get(Step.name == "reported").id
        callbacks = a.extensions["shipyard"].orchestrator.callbacks
        reporter = threading.Thread(target=callbacks.build_log,
                                    args=(step_id, "hello from a pool thread"))
        reporter.start()
        reporter.join(10)
        with a.app_context():
            assert [row.message for row in BuildLog.select().where(BuildLog.step == step_id)
                    ] == ["hello from a pool thread"]
        with b.app_context():
            assert not BuildLog.select().where(
                BuildLog.message == "hello from a pool thread").exists()
    finally:
        close_app(a)
        close_app(b)
    deadline = time.monotonic() + 10
    while _owned_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _owned_threads()


def test_a_stuck_pass_does_not_hold_the_stop_past_its_deadline(make_app, monkeypatch):
    """A sort-index pass stuck for longer than the stop may wait (a SQLite write behind
    another writer waits up to its busy_timeout, 10 s): close_app gives up on that thread
    at its deadline, so the server's worker exits before the master's SIGKILL."""
    from shipyard_service.sortindexer import SortIndexer

    entered, release = threading.Event(), threading.Event()

    def stuck_pass(self) -> int:
        entered.set()
        release.wait(30)
        return 0

    monkeypatch.setattr(SortIndexer, "run_once", stuck_pass)
    app = make_app(sort_index_interval_s=0.1)
    start_background_work(app)
    try:
        assert entered.wait(10)
        start = time.monotonic()
        close_app(app, deadline=start + 1.0)
        elapsed = time.monotonic() - start
        assert elapsed < 2.0, elapsed  # was the indexer's own 10 s join
        assert "sort-indexer" in _owned_threads()  # still stuck: a daemon, it ends with the process
    finally:
        release.set()
