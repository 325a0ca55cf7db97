"""The one execution lifecycle: allowed moves, and the compare-and-set that refuses others."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from shipyard_service.domain.lifecycle import (
    ACTIVE,
    FINAL,
    ExecutionStatus,
    IllegalTransition,
    StepExecutionStatus,
    allowed,
    transition,
)
from shipyard_service.events import Events
from shipyard_service.store.db import close_db, init_db
from shipyard_service.store.models import Environment, Execution, Project


def test_allowed_moves():
    E, S = ExecutionStatus, StepExecutionStatus
    assert allowed("Pending", E.RUNNING) and allowed("Running", E.SUCCEEDED)
    assert allowed("Pending", E.FAILED) and allowed("Running", E.FAILED)
    assert not allowed("Succeeded", E.FAILED) and not allowed("Failed", E.RUNNING)
    assert not allowed("Running", E.RUNNING) and not allowed("Running", E.PENDING)
    assert allowed("Pending", S.SKIPPED) and not allowed("Running", S.SKIPPED)
    assert not allowed("Skipped", S.RUNNING) and not allowed("Succeeded", S.SKIPPED)
    assert set(ACTIVE) | set(FINAL) == {s.value for s in E}
    assert "Error" not in FINAL  # never written


@pytest.fixture()
def store(tmp_path):
    init_db(f"sqlite:///{tmp_path}/store.db")
    yield
    close_db()


def test_transition_is_compare_and_set(store):
    svc = SimpleNamespace(events=Events())
    env = Environment.create(project=Project.create(name="p"), name="e")
    Execution.create(execution_id="x-1", environment=env, pipeline_name="x", status="Pending")
    key = {"execution_id": "x-1"}

    def status() -> str:
        return Execution.get_by_id("x-1").status

    assert transition(svc, Execution, key, ExecutionStatus.RUNNING, "x-1")
    assert status() == "Running"
    assert not transition(svc, Execution, key, ExecutionStatus.RUNNING, "x-1")
    assert transition(svc, Execution, key, ExecutionStatus.SUCCEEDED, "x-1", {"error": None})
    # A late failure report (the runner exiting after its result) changes nothing.
    assert not transition(svc, Execution, key, ExecutionStatus.FAILED, "x-1", {"error": "late"})
    assert status() == "Succeeded" and Execution.get_by_id("x-1").error is None
    with pytest.raises(IllegalTransition):
        transition(svc, Execution, key, ExecutionStatus.PENDING, "x-1")
    assert status() == "Succeeded"
