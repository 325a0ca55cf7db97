"""Deployment rules in-process (domain/deployments.py, domain/mappings.py): fields, rules,
schedules and input/output mappings are checked before anything is stored; endpoint
tokens guard the endpoint."""

from __future__ import annotations

import pytest

from .conftest import Client, add_step, assert_error

INPUTS = [{"name": "a", "data_type": "number", "is_required": True},
          {"name": "b", "data_type": "number", "default_value": 1},
          {"name": "f", "data_type": "file"}]
OUTPUTS = [{"name": "total", "data_type": "number"}, {"name": "report", "data_type": "file"}]
BASE = {"pipeline_name": "adder", "name": "d1"}


@pytest.fixture(scope="module")
def adder(app, admin) -> Client:
    add_step(app, "adder", INPUTS, OUTPUTS)
    r = admin.env_call("POST", "/pipelines", json={"pipeline_name": "adder",
                                                   "step_names": ["adder"]})
    assert r.status_code == 201, r.get_data(as_text=True)
    return admin


@pytest.mark.parametrize("path, extra, words", [
    ("/endpoints", {"mode": "fast"}, "'mode'"),
    ("/endpoints", {"name": "Bad Name"}, "name"),
    ("/endpoints", {"schedule": "* * * * *"}, "'schedule' is for periodic"),
    ("/endpoints", {"endpoint_url_path": "v1"}, "reserved"),
    ("/endpoints", {"endpoint_token": "short"}, "at least 16"),
    ("/endpoints", {"max_parallel_executions_per_pod": "six"}, "max_parallel"),
    ("/endpoints", {"unknown_field": 1}, "unknown_field"),
    ("/endpoints", {"ram_request": "1GiB"}, "low_latency"),
    ("/endpoints", {"mode": "low_latency", "ram_request": "1GiB\n"}, "512MiB"),
    ("/endpoints", {"endpoint_url_path": "v2\n"}, "endpoint_url_path"),
    ("/periodic-deployment", {}, "schedule"),
    ("/periodic-deployment", {"schedule": "61 * * * *"}, "schedule"),
    ("/periodic-deployment", {"schedule": "every minute"}, "schedule"),
    ("/periodic-deployment", {"schedule": "* * * * *", "endpoint_url_path": "x"},
     "'endpoint_url_path' is for endpoint"),
])
def test_bad_deployment_fields_are_400s(adder, path, extra, words):
    error = assert_error(adder.env_call("POST", path, json={**BASE, **extra}), 400)
    assert words in error["message"] + str(error["additional_data"]), error
    assert_error(adder.env_call("GET", "/deployments/d1"), 404)


@pytest.mark.parametrize("rule, inputs, outputs, words", [
    ("endpoint", [{"pipeline_input_name": "zz", "is_null": True}], None,
     "unknown pipeline input 'zz'"),
    ("endpoint", [{"pipeline_input_name": {"x": 1}, "is_null": True}], None, "unknown"),
    ("endpoint", None, [{"pipeline_output_name": ["o"], "is_null": True}], "unknown"),
    ("endpoint", [{"pipeline_input_name": "a", "is_null": True},
                  {"pipeline_input_name": "a", "is_null": True}], None, "mapped twice"),
    ("endpoint", [{"pipeline_input_name": "a", "is_null": True, "constant_value": 3}], None,
     "exactly one of"),
    ("endpoint", [{"pipeline_input_name": "a", "constant_value": "three"}], None, "a"),
    ("endpoint", [{"pipeline_input_name": "f", "constant_value": "x"}], None,
     "cannot carry the file input 'f'"),
    ("endpoint", [{"pipeline_input_name": "a", "datastore_path": "x.csv"}], None,
     "cannot carry the number input 'a'"),
    ("endpoint", None, [{"pipeline_output_name": "total", "datastore_path": "t.txt"}],
     "cannot carry the number output 'total'"),
    ("endpoint", [{"pipeline_input_name": "a", "environment_variable_name": ""}], None,
     "non-empty string"),
    ("endpoint", "a->x", None, "Not a valid list"),
    ("periodic", [{"pipeline_input_name": "a", "endpoint_input_name": "a"}], None,
     "not allowed for the periodic execution rule"),
])
def test_bad_mappings_are_400s(adder, rule, inputs, outputs, words):
    body = {**BASE, "inputs_mapping": inputs, "outputs_mapping": outputs}
    path = "/endpoints"
    if rule == "periodic":
        path, body["schedule"] = "/periodic-deployment", "* * * * *"
    error = assert_error(adder.env_call("POST", path, json=body), 400, "BadRequest")
    assert words in error["message"], error


def test_a_pipeline_that_is_not_built_cannot_be_deployed(app, admin):
    add_step(app, "unbuilt", [], [])
    with app.app_context():
        from shipyard_service.store.models import Step

        Step.update(status="creation_pending").where(Step.name == "unbuilt").execute()
    r = admin.env_call("POST", "/pipelines", json={"pipeline_name": "unbuilt",
                                                   "step_names": ["unbuilt"]})
    assert r.status_code == 201
    error = assert_error(admin.env_call("POST", "/endpoints", json={
        "pipeline_name": "unbuilt", "name": "u1"}), 400)
    assert "not ready" in error["message"]


def test_an_endpoint_checks_its_token(adder):
    token = "a-token-long-enough-1234"
    r = adder.env_call("POST", "/endpoints", json={
        **BASE, "name": "rules-ep", "endpoint_token": token,
        "inputs_mapping": [{"pipeline_input_name": "f", "is_null": True}],
        "outputs_mapping": [{"pipeline_output_name": "report", "is_null": True}]})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert_error(adder.env_call("POST", "/endpoints", json={**BASE, "name": "rules-ep"}), 409)
    assert_error(adder.env_call("POST", "/endpoints", json={
        **BASE, "name": "other", "endpoint_url_path": "rules-ep"}), 409)
    http = adder.http
    url = "/environments/default/dev/endpoints/rules-ep"
    assert_error(http.post(url, json={"a": 1}), 401, "Unauthorized")
    assert_error(http.post(url, json={"a": 1},
                           headers={"Authorization": "EndpointToken wrong-token-0000000"}),
                 403, "Forbidden")
    assert_error(http.post("/environments/default/dev/endpoints/nowhere", json={},
                           headers={"Authorization": f"EndpointToken {token}"}), 404)
    # a change of a mapping's type after creation is refused too
    r = adder.env_call("PATCH", "/deployments/rules-ep", json={"inputs_mapping": [
        {"pipeline_input_name": "f", "constant_value": 3}]})
    assert_error(r, 400)
    assert_error(adder.env_call("PATCH", "/deployments/rules-ep",
                                json={"schedule": "* * * * *"}), 400)
