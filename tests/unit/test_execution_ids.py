"""Execution ids are drawn again while taken: by a stored execution or by a low-latency
call in flight whose row is not written yet (five characters per pipeline collide within
thousands of calls)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from shipyard_service.domain import executions
from shipyard_service.domain.deferred import DeferredRows
from shipyard_service.store.db import close_db, init_db
from shipyard_service.store.models import Environment, Execution, Project


@pytest.fixture()
def env(tmp_path):
    init_db(f"sqlite:///{tmp_path}/store.db")
    yield Environment.create(project=Project.create(name="p"), name="e")
    close_db()


def test_a_taken_id_is_drawn_again(env, monkeypatch):
    svc = SimpleNamespace(deferred=DeferredRows())
    draws = iter([0, 0, 1, 2])  # suffixes aaaaa, aaaaa, baaaa, caaaa
    monkeypatch.setattr(executions.secrets, "randbelow", lambda n: next(draws))
    assert executions.new_execution_id(svc, "pipe") == "pipe-aaaaa"
    Execution.create(execution_id="pipe-aaaaa", environment=env, pipeline_name="pipe")
    svc.deferred.add(Execution(execution_id="pipe-baaaa", environment=env,
                               pipeline_name="pipe"), [])
    # aaaaa is stored, baaaa is a call in flight: the third draw is free.
    assert executions.new_execution_id(svc, "pipe") == "pipe-caaaa"
