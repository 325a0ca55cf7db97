"""The SQLite store's background WAL checkpoints (autocheckpoint is off for requests)."""

from __future__ import annotations

import time

import pytest
from shipyard_service.store import db as store_db
from shipyard_service.store.models import Project


@pytest.fixture
def sqlite_store(tmp_path):
    database = store_db.init_db(f"sqlite:///{tmp_path / 'store.db'}")
    yield tmp_path / "store.db"
    database.close()


def _write_rows(count: int) -> None:
    with store_db.db_session():
        for i in range(count):
            Project.create(name=f"p{i}", settings={"padding": "x" * 2000})


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_commits_stay_in_the_wal_until_the_checkpointer_runs(sqlite_store):
    size_before = sqlite_store.stat().st_size
    _write_rows(2500)  # ~5 MB: past the 1000-page default, yet no commit checkpointed
    assert sqlite_store.stat().st_size == size_before
    checkpointer = store_db.Checkpointer(interval_s=0.05)
    checkpointer.start()
    try:
        assert _wait_for(lambda: sqlite_store.stat().st_size > size_before + 2500 * 2000, 10)
    finally:
        checkpointer.stop()
    with store_db.db_session():
        assert Project.select().count() == 2500
