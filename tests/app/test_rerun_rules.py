"""Re-run requests that cannot start (domain/reruns.py through POST
executions/<id>/rerun): each is a 4xx in the documented error shape, and no execution is
made."""

from __future__ import annotations

import pytest

from .conftest import add_step, assert_error


def _io(name: str, data_type: str) -> dict:
    return {"name": name, "data_type": data_type}


@pytest.fixture(scope="module")
def executions(app, admin):
    """A failed and a running execution of a two-step pipeline, and a project of its own
    where neither exists."""
    from shipyard_service.domain.projects import get_environment
    from shipyard_service.store.models import Execution, StepExecution

    add_step(app, "rr-a", [_io("x", "number")], [_io("y", "number")])
    add_step(app, "rr-b", [_io("y", "number")], [_io("z", "number")])
    created = admin.env_call("POST", "/pipelines", json={
        "pipeline_name": "rr-pair", "step_names": ["rr-a", "rr-b"],
        "connections": [{"source": "rr-a.y", "target": "rr-b.y"}]})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert admin.open("POST", "/api/v1/projects", json={"name": "rr-other"}).status_code == 201
    assert admin.open("POST", "/api/v1/projects/rr-other/environments",
                      json={"name": "dev"}).status_code == 201
    with app.app_context():
        env = get_environment("default", "dev")
        for execution_id, status in (("rr-pair-fail1", "Failed"), ("rr-pair-run01", "Running")):
            Execution.create(execution_id=execution_id, environment=env, pipeline_name="rr-pair",
                             status=status, step_info={"steps": ["rr-a", "rr-b"]},
                             inputs=[{"pipeline_input_name": "x", "data_type": "number",
                                      "mapping_type": "run", "value": 1}])
            StepExecution.insert_many([
                {"execution": execution_id, "step_name": "rr-a", "position": 0,
                 "status": "Succeeded", "outputs": [{"name": "y", "data_type": "number",
                                                     "value": 2}]},
                {"execution": execution_id, "step_name": "rr-b", "position": 1,
                 "status": "Failed" if status == "Failed" else "Running"}]).execute()


def _count(app) -> int:
    from shipyard_service.store.models import Execution

    with app.app_context():
        return Execution.select().count()


@pytest.mark.parametrize("body, status, words", [
    ({"from_step": "nope"}, 400, "has no step 'nope'"),
    ({"from_step": 3}, 400, "from_step"),
    ({"from_step": ["rr-a"]}, 400, "from_step"),
    ([], 400, "Invalid request"),
])
def test_bad_from_step_is_400(app, admin, executions, body, status, words):
    before = _count(app)
    r = admin.env_call("POST", "/executions/rr-pair-fail1/rerun", json=body)
    assert words in assert_error(r, status)["message"]
    assert _count(app) == before


def test_unknown_running_and_other_project_executions(app, admin, executions):
    before = _count(app)
    assert_error(admin.env_call("POST", "/executions/rr-pair-zzzzz/rerun", json={}), 404,
                 "NotFound")
    # Another project's environment does not see the execution.
    assert_error(admin.env_call("POST", "/executions/rr-pair-fail1/rerun", json={},
                                project="rr-other"), 404, "NotFound")
    body = assert_error(admin.env_call("POST", "/executions/rr-pair-run01/rerun", json={}),
                        409, "Conflict")
    assert "still Running" in body["message"]
    assert _count(app) == before
