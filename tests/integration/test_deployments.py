"""F9-F14 through plain HTTP and our SDK: endpoints, schedules, mappings, low-latency."""

from __future__ import annotations

import time

import requests

from ..helpers import assert_error, create_step_http

ADD = "def run(a, b=1):\n    print('adding', a, b)\n    return {'total': a + b}\n"
ADD_FIELDS = {
    "inputs[0][name]": "a", "inputs[0][data_type]": "number", "inputs[0][is_required]": "True",
    "inputs[1][name]": "b", "inputs[1][data_type]": "number", "inputs[1][default_value]": "1",
    "outputs[0][name]": "total", "outputs[0][data_type]": "number",
}


def _deploy(api, path: str, body: dict, wait: bool = True) -> dict:
    r = api.request("POST", path, json=body)
    assert r.status_code in (200, 201), r.text
    if not wait:
        return r.json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = api.request("GET", f"/deployments/{body['name']}?wait_for_completion=true").json()
        if got["status"] not in ("creation_pending", "down_retrying"):
            return got
    raise AssertionError(got)


def _trigger(api, url_path: str, token: str, inputs=None, files=None) -> requests.Response:
    url = f"{api.env_url}/endpoints/{url_path}"
    headers = {"Authorization": f"EndpointToken {token}"}
    if files:
        return requests.post(url, headers=headers, files=files, timeout=30, allow_redirects=False)
    return requests.post(url, headers=headers, json=inputs or {}, timeout=30, allow_redirects=False)


def _result(api, url_path: str, execution_id: str, token: str) -> requests.Response:
    return requests.get(f"{api.env_url}/endpoints/{url_path}/executions/{execution_id}",
                        params={"token": token}, timeout=120)


def test_elastic_endpoint_lifecycle(api):
    create_step_http(api, "adder", {"main.py": ADD}, kind="pipelines", fields=ADD_FIELDS)
    dep = _deploy(api, "/endpoints", {
        "pipeline_name": "adder", "name": "adder-ep", "mode": "elastic",
        "inputs_mapping": [{"pipeline_input_name": "a", "endpoint_input_name": "x",
                            "is_required": True}],
        "outputs_mapping": [{"pipeline_output_name": "total", "endpoint_output_name": "sum"}]})
    assert dep["status"] == "up" and dep["execution_rule"] == "endpoint"
    assert dep["endpoint_url_path"] == "adder-ep" and len(dep["endpoint_token"]) >= 16
    names = {m["pipeline_input_name"]: m for m in dep["inputs_mapping"]}
    assert names["a"]["endpoint_input_name"] == "x"
    assert names["b"]["endpoint_input_name"] == "b"  # auto-mapped, default kept
    assert names["b"]["default_value"] == 1
    token = dep["endpoint_token"]
    # A plain HTTP caller gets the outputs in the answer...
    r = _trigger(api, "adder-ep", token, {"x": 40})
    assert r.status_code == 200, r.text
    execution_id = r.headers["Craft-Ai-Execution-Id"]
    assert r.json() == {"execution_id": execution_id, "outputs": {"sum": 41}}
    # ...an SDK (craft-ai-client header) gets the id at once and a 303 to the results.
    r = requests.post(f"{api.env_url}/endpoints/adder-ep", json={"x": 40}, timeout=30,
                      headers={"Authorization": f"EndpointToken {token}",
                               "craft-ai-client": "craft-ai-sdk@0.60.0"}, allow_redirects=False)
    assert r.status_code == 303 and r.json() == {"execution_id": r.headers["Craft-Ai-Execution-Id"]}
    assert f"/endpoints/adder-ep/executions/{r.json()['execution_id']}?token=" in r.headers["Location"]
    res = _result(api, "adder-ep", execution_id, token)
    assert res.status_code == 200 and res.json()["outputs"] == {"sum": 41}
    again = _result(api, "adder-ep", execution_id, token)  # idempotent
    assert again.json()["outputs"] == {"sum": 41}
    execution = api.request("GET", f"/executions/{execution_id}").json()
    assert execution["deployment_name"] == "adder-ep"
    item = {i["pipeline_input_name"]: i for i in execution["inputs"]}["a"]
    assert item["mapping_type"] == "endpoint" and item["value"] == 40
    # Bad calls.
    assert_error(_trigger(api, "adder-ep", "wrong-token", {"x": 1}), 403)
    assert_error(requests.post(f"{api.env_url}/endpoints/adder-ep", json={"x": 1}, timeout=10), 401)
    assert_error(_trigger(api, "adder-ep", token, {}), 400)  # x required
    assert_error(_trigger(api, "adder-ep", token, {"x": "forty"}), 400)
    assert_error(_trigger(api, "adder-ep", token, {"a": 1}), 400)  # renamed: a is unknown
    assert_error(_trigger(api, "nope", token, {"x": 1}), 404)
    assert_error(_result(api, "adder-ep", execution_id, "wrong"), 403)
    # New token: the old one dies at once.
    new = api.request("POST", "/endpoints/adder-ep/generate-new-token").json()["endpoint_token"]
    assert_error(_trigger(api, "adder-ep", token, {"x": 1}), 403)
    assert _trigger(api, "adder-ep", new, {"x": 1}).status_code == 200
    # As the documentation calls it: one `requests.post` that follows the redirect.
    followed = requests.post(f"{api.env_url}/endpoints/adder-ep", json={"x": 2},
                             headers={"Authorization": f"EndpointToken {new}"}, timeout=60)
    assert followed.status_code == 200 and followed.json()["outputs"] == {"sum": 3}
    latest = api.request("GET", "/deployments/adder-ep/executions/latest").json()
    assert latest["deployment_name"] == "adder-ep"
    # Disabled deployments refuse calls; the pipeline cannot be deleted while deployed.
    patched = api.request("PATCH", "/deployments/adder-ep", json={"is_enabled": False})
    assert patched.json()["status"] == "disabled"
    assert_error(_trigger(api, "adder-ep", new, {"x": 1}), 403)
    err = assert_error(api.request("DELETE", "/pipelines/adder?force_deployments_deletion=False"), 409)
    assert err["additional_data"]["deployments"] == [{"name": "adder-ep", "execution_rule": "endpoint"}]
    listed = api.request("GET", "/deployments").json()
    assert {"name", "pipeline_name", "execution_rule", "mode", "is_enabled"} <= set(listed[0])
    assert api.request("DELETE", "/deployments/adder-ep").json() == {
        "name": "adder-ep", "execution_rule": "endpoint"}
    assert_error(api.request("GET", f"/executions/{execution_id}"), 404)  # deleted with it


def test_deployment_bad_input(api):
    create_step_http(api, "adder2", {"main.py": ADD}, kind="pipelines", fields=ADD_FIELDS)
    base = {"pipeline_name": "adder2", "name": "d1"}

    def post(path, **extra):
        return api.request("POST", path, json={**base, **extra})

    assert_error(post("/endpoints", mode="fast"), 400)
    assert_error(post("/endpoints", name="Bad Name"), 400)
    assert_error(post("/endpoints", pipeline_name="nope"), 404)
    assert_error(post("/endpoints", schedule="* * * * *"), 400)
    assert_error(post("/endpoints", endpoint_url_path="v1"), 400)
    assert_error(post("/periodic-deployment"), 400)  # no schedule
    for bad in ("61 * * * *", "* * * *", "every minute", "* * * * * *"):
        assert_error(post("/periodic-deployment", schedule=bad), 400)
    # periodic needs every input and output mapped, and no endpoint source
    assert_error(post("/periodic-deployment", schedule="* * * * *"), 400)
    assert_error(post("/periodic-deployment", schedule="* * * * *", inputs_mapping=[
        {"pipeline_input_name": "a", "endpoint_input_name": "a"}]), 400)
    assert_error(post("/endpoints", inputs_mapping=[{"pipeline_input_name": "zz", "is_null": True}]), 400)
    assert_error(post("/endpoints", max_parallel_executions_per_pod="six"), 400)
    assert_error(post("/endpoints", unknown_field=1), 400)
    assert api.request("POST", "/endpoints", json={**base, "name": "d1"}).status_code == 201
    assert_error(post("/endpoints"), 409)
    assert_error(post("/endpoints", name="d2", endpoint_url_path="d1"), 409)
    assert_error(api.request("PATCH", "/deployments/d1", json={"inputs_mapping": [
        {"pipeline_input_name": "a", "constant_value": 3}]}), 400)  # type change
    assert_error(api.request("PATCH", "/deployments/d1", json={"schedule": "* * * * *"}), 400)
    assert_error(api.request("GET", "/deployments/nope"), 404)
    api.request("DELETE", "/deployments/d1")


def test_data_store_mappings_and_placeholders(api, sdk):
    code = ("def run(model, scale):\n"
            "    data = open(model['path']).read()\n"
            "    open('out.txt', 'w').write(data * scale)\n"
            "    return {'report': {'path': 'out.txt'}, 'size': len(data) * scale}\n")
    fields = {"inputs[0][name]": "model", "inputs[0][data_type]": "file",
              "inputs[1][name]": "scale", "inputs[1][data_type]": "number",
              "outputs[0][name]": "report", "outputs[0][data_type]": "file",
              "outputs[1][name]": "size", "outputs[1][data_type]": "number"}
    create_step_http(api, "ds-map", {"main.py": code}, kind="pipelines", fields=fields)
    import io

    sdk.upload_data_store_object(io.BytesIO(b"ab"), "maps/model.txt")
    api.request("PUT", "/environment-variables", json={"environment_variables": {"SCALE": "3"}})
    dep = _deploy(api, "/endpoints", {
        "pipeline_name": "ds-map", "name": "ds-map-ep",
        "inputs_mapping": [
            {"pipeline_input_name": "model", "datastore_path": "maps/model.txt"},
            {"pipeline_input_name": "scale", "environment_variable_name": "SCALE"}],
        "outputs_mapping": [
            {"pipeline_output_name": "report", "datastore_path": "maps/out/{execution_id}.txt"}]})
    r = _trigger(api, "ds-map-ep", dep["endpoint_token"], {})
    execution_id = r.json()["execution_id"]
    res = _result(api, "ds-map-ep", execution_id, dep["endpoint_token"])
    assert res.json()["outputs"] == {"size": 6}
    buf = io.BytesIO()
    sdk.download_data_store_object(f"maps/out/{execution_id}.txt", buf)
    assert buf.getvalue() == b"ababab"
    execution = api.request("GET", f"/executions/{execution_id}").json()
    outputs = {o["pipeline_output_name"]: o for o in execution["outputs"]}
    assert outputs["report"]["mapping_type"] == "datastore"
    assert outputs["report"]["value"] == f"maps/out/{execution_id}.txt"
    inputs = {i["pipeline_input_name"]: i for i in execution["inputs"]}
    assert inputs["scale"]["mapping_value"] == {"environment_variable_name": "SCALE"}
    assert inputs["scale"]["value"] == 3
    # Constant and null mappings through run_pipeline.
    from shipyard.io import InputSource, OutputDestination

    run = sdk.run_pipeline("ds-map", inputs_mapping=[
        InputSource(pipeline_input_name="model", datastore_path="maps/model.txt"),
        InputSource(pipeline_input_name="scale", constant_value=2)],
        outputs_mapping=[OutputDestination(pipeline_output_name="report", is_null=True)])
    assert run["outputs"]["size"] == 4 and "report" not in {
        k for k, v in run["outputs"].items() if v is not None}
    sdk.delete_deployment("ds-map-ep")


def test_periodic_rule_fields(api):
    create_step_http(api, "tick", {"main.py": "def run(n):\n    print('tick', n)\n"},
                     kind="pipelines", fields={"inputs[0][name]": "n", "inputs[0][data_type]": "number"})
    dep = _deploy(api, "/periodic-deployment", {
        "pipeline_name": "tick", "name": "tick-every-2", "schedule": "*/2 * * * *",
        "inputs_mapping": [{"pipeline_input_name": "n", "constant_value": 7}]})
    assert dep["status"] == "up" and dep["human_readable_schedule"] == "Every 2 minutes"
    assert "endpoint_token" not in dep
    patched = api.request("PATCH", "/deployments/tick-every-2", json={"schedule": "0 0 * * 0"})
    assert patched.json()["human_readable_schedule"].startswith("At 00:00")
    assert api.request("DELETE", "/deployments/tick-every-2").status_code == 200


def test_endpoint_file_in_file_out(api):
    code = ("def run(doc, suffix):\n"
            "    text = open(doc['path']).read() + suffix\n"
            "    open('r.txt', 'w').write(text)\n"
            "    return {'result': {'path': 'r.txt'}}\n")
    fields = {"inputs[0][name]": "doc", "inputs[0][data_type]": "file",
              "inputs[1][name]": "suffix", "inputs[1][data_type]": "string",
              "inputs[1][default_value]": "!",
              "outputs[0][name]": "result", "outputs[0][data_type]": "file"}
    create_step_http(api, "files", {"main.py": code}, kind="pipelines", fields=fields)
    dep = _deploy(api, "/endpoints", {"pipeline_name": "files", "name": "files-ep"})
    r = _trigger(api, "files-ep", dep["endpoint_token"], files={"doc": ("doc.txt", b"hello")})
    execution_id = r.headers["Craft-Ai-Execution-Id"]
    assert r.content == b"hello!"  # a plain caller gets the file in the answer
    res = _result(api, "files-ep", execution_id, dep["endpoint_token"])
    assert res.headers["Content-Type"] == "application/octet-stream"
    assert res.headers["Content-Disposition"] == (
        f"attachment; filename=result_{execution_id}_result")
    assert res.content == b"hello!"
    two_files = _trigger(api, "files-ep", dep["endpoint_token"],
                         files={"doc": ("a", b"1"), "other": ("b", b"2")})
    assert_error(two_files, 400)


def test_failed_execution_results_are_500(api):
    create_step_http(api, "boom", {"main.py": "def run():\n    raise RuntimeError('kaboom')\n"},
                     kind="pipelines")
    dep = _deploy(api, "/endpoints", {"pipeline_name": "boom", "name": "boom-ep"})
    direct = _trigger(api, "boom-ep", dep["endpoint_token"])
    assert_error(direct, 500, "ExecutionFailed")
    execution_id = direct.json()["additional_data"]["execution_id"]
    err = assert_error(_result(api, "boom-ep", execution_id, dep["endpoint_token"]), 500)
    assert "kaboom" in err["message"]


