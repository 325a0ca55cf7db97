"""F4/F6 through plain HTTP: steps from a local folder, pipelines, bad input."""

from __future__ import annotations

import io
import os
import tarfile

import requests

from ..helpers import assert_error, create_step_http, make_archive

HELLO = {"main.py": "def run():\n    print('hi')\n"}


def test_step_lifecycle(api):
    body = create_step_http(api, "lifecycle", HELLO, fields={
        "description": "a step",
        "inputs[0][name]": "a", "inputs[0][data_type]": "number",
        "inputs[0][is_required]": "False", "inputs[0][default_value]": "5",
        "outputs[0][name]": "o", "outputs[0][data_type]": "string",
    })
    assert body["creation_info"]["status"] == "ready", body
    assert body["creation_info"]["origin"] == "local"
    params = body["parameters"]
    assert params["step_name"] == "lifecycle" and params["description"] == "a step"
    assert params["inputs"] == [{"name": "a", "data_type": "number", "description": None,
                                 "is_required": False, "default_value": 5}]
    assert params["container_config"]["language"].startswith("python:3.")
    assert "repository_deploy_key" not in params["container_config"]
    listed = api.request("GET", "/steps").json()
    assert "lifecycle" in [s["step_name"] for s in listed]
    logs = api.request("POST", "/steps/lifecycle/logs", json={}).json()
    assert logs and all({"timestamp", "message"} <= set(entry) for entry in logs)
    # The archive can be downloaded back through its signed URL.
    url = api.request("GET", "/steps/lifecycle/download").json()["signed_url"]
    data = requests.get(url, timeout=10).content
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile("main.py").read() == HELLO["main.py"].encode()
    assert_error(api.request("POST", "/steps", data={"step_name": "lifecycle", "function_path": "main.py",
                                                    "function_name": "run"},
                             files={"step_file": ("step_file", make_archive(HELLO))}), 409, "Conflict")
    # In use by a pipeline: refused unless forced.
    r = api.request("POST", "/pipelines", json={"pipeline_name": "lifecycle-p", "step_names": ["lifecycle"]})
    assert r.status_code == 201 and r.json()["pipeline_name"] == "lifecycle-p"
    err = assert_error(api.request("DELETE", "/steps/lifecycle?force_dependents_deletion=False"), 409)
    assert err["additional_data"]["pipelines"] == ["lifecycle-p"]
    assert api.request("DELETE", "/steps/lifecycle?force_dependents_deletion=True").json() == {
        "step_name": "lifecycle"}
    assert_error(api.request("GET", "/pipelines/lifecycle-p"), 404)
    assert_error(api.request("GET", "/steps/lifecycle"), 404, "NotFound")


def test_step_bad_inputs_store_nothing(api):
    base = {"function_path": "main.py", "function_name": "run"}

    def post(fields, archive=make_archive(HELLO)):
        return api.request("POST", "/steps", data=fields,
                           files={"step_file": ("step_file", archive)} if archive else None)

    assert_error(post({**base}), 400)  # no name
    assert_error(post({**base, "step_name": "Bad Name"}), 400)
    assert_error(post({**base, "step_name": "x", "function_name": "not valid"}), 400)
    assert_error(post({**base, "step_name": "x", "inputs[0][name]": "a",
                       "inputs[0][data_type]": "tensor"}), 400)
    assert_error(post({**base, "step_name": "x", "container_config[language]": "java:17"}), 400)
    big = make_archive({"main.py": HELLO["main.py"], "blob.bin": os.urandom(5 * 1024 * 1024 + 10)})
    assert_error(post({**base, "step_name": "too-big"}, big), 413, "PayloadTooLarge")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../escape.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    assert_error(post({**base, "step_name": "escape"}, buf.getvalue()), 400)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("src/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    assert_error(post({**base, "step_name": "link"}, buf.getvalue()), 400)
    assert_error(post({**base, "step_name": "garbage"}, b"not a tar"), 400)
    names = [s["step_name"] for s in api.request("GET", "/steps").json()]
    assert not {"x", "too-big", "escape", "link", "garbage"} & set(names)


def test_missing_function_file_fails_with_reason(api):
    body = create_step_http(api, "no-function", HELLO, function_path="src/absent.py")
    assert body["creation_info"]["status"] == "creation_failed"
    logs = api.request("POST", "/steps/no-function/logs", json={}).json()
    assert any("src/absent.py" in entry["message"] for entry in logs)


def test_unavailable_python_names_the_available_ones(api):
    body = create_step_http(api, "old-python", HELLO,
                            fields={"container_config[language]": "python:3.99-slim"})
    assert body["creation_info"]["status"] == "creation_failed"
    logs = " ".join(e["message"] for e in api.request("POST", "/steps/old-python/logs", json={}).json())
    assert "3.99" in logs and "available" in logs


def test_pipeline_from_function_and_latest(api):
    body = create_step_http(api, "from-function", HELLO, kind="pipelines")
    assert body["creation_info"]["status"] == "ready"
    assert body["parameters"]["pipeline_name"] == "from-function"
    latest = api.request("GET", "/pipelines/from-function/executions/latest")
    assert latest.status_code == 200 and latest.json() in ({}, None)
    assert "from-function" not in [s["step_name"] for s in api.request("GET", "/steps").json()]
    assert_error(api.request("POST", "/pipelines", json={"pipeline_name": "pp", "step_names": ["nope"]}), 404)
    assert_error(api.request("POST", "/pipelines", json={"pipeline_name": "pp", "step_names": []}), 400)
    deleted = api.request("DELETE", "/pipelines/from-function?force_deployments_deletion=False")
    assert deleted.json() == {"pipeline": {"name": "from-function"}, "deployments": []}
