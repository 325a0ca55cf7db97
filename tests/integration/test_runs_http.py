"""F5/F7/F8 through plain HTTP: runs, typed inputs, outputs, files, logs, failures."""

from __future__ import annotations

import json

import requests

from ..helpers import assert_error, create_step_http, run_and_wait

CODE = '''
import os, sys, json

def run(s, n, b, j, a, f):
    print("got", s, n, b)
    print("to stderr", file=sys.stderr)
    with open(f["path"]) as fh:
        text = fh.read()
    with open("out.txt", "w") as fh:
        fh.write(text.upper())
    return {"s2": s + "!", "n2": n * 2, "j2": {"j": j, "a": a}, "file_out": {"path": "out.txt"},
            "env": os.environ.get("GREETING", "")}
'''

FIELDS = {}
for i, (name, dtype) in enumerate([("s", "string"), ("n", "number"), ("b", "boolean"),
                                   ("j", "json"), ("a", "array"), ("f", "file")]):
    FIELDS[f"inputs[{i}][name]"] = name
    FIELDS[f"inputs[{i}][data_type]"] = dtype
    FIELDS[f"inputs[{i}][is_required]"] = "True" if name in ("s", "f") else "False"
FIELDS["inputs[2][default_value]"] = "True"
for i, (name, dtype) in enumerate([("s2", "string"), ("n2", "number"), ("j2", "json"),
                                   ("file_out", "file"), ("env", "string")]):
    FIELDS[f"outputs[{i}][name]"] = name
    FIELDS[f"outputs[{i}][data_type]"] = dtype


def _pipeline(api, name: str, code: str = CODE, fields=FIELDS) -> None:
    body = create_step_http(api, name, {"main.py": code}, fields=fields, kind="pipelines")
    assert body["creation_info"]["status"] == "ready", body


def test_typed_run_with_files_and_logs(api):
    _pipeline(api, "typed")
    api.request("PUT", "/environment-variables", json={"environment_variables": {"GREETING": "hey"}})
    execution_id, out = run_and_wait(
        api, "typed", {"s": "x", "n": 2.5, "j": {"k": [1, None]}, "a": [1, "two"]},
        files={"f": ("input.txt", b"hello file")})
    assert out.status_code == 200, out.text
    outputs = {o["pipeline_output_name"]: o for o in out.json()["outputs"]}
    assert outputs["s2"]["value"] == "x!" and outputs["n2"]["value"] == 5.0
    assert outputs["j2"]["value"] == {"j": {"k": [1, None]}, "a": [1, "two"]}
    assert outputs["env"]["value"] == "hey"
    assert outputs["file_out"]["mapping_type"] == "run" and outputs["file_out"]["value"] is None
    file_out = api.request("GET", f"/executions/{execution_id}/outputs/file_out")
    assert file_out.headers["Content-Type"] == "application/octet-stream"
    assert file_out.content == b"HELLO FILE"
    assert api.request("GET", f"/executions/{execution_id}/inputs/f").content == b"hello file"
    assert api.request("GET", f"/executions/{execution_id}/inputs/n").json() == 2.5
    assert api.request("GET", f"/executions/{execution_id}/inputs/b").json() is True  # default
    assert_error(api.request("GET", f"/executions/{execution_id}/inputs/zz"), 404)
    execution = api.request("GET", f"/executions/{execution_id}").json()
    assert execution["status"] == "Succeeded" and execution["created_by"]
    assert execution["end_date"].endswith("Z")
    for item in execution["inputs"] + execution["outputs"]:
        assert isinstance(item["mapping_value"], dict)
    no_values = api.request("GET", f"/executions/{execution_id}?include_io_values=false").json()
    assert all("value" not in item for item in no_values["inputs"])
    [logs] = api.request("POST", f"/executions/{execution_id}/logs", json={}).json()
    streams = {(e["stream"], e["message"]) for e in logs}
    assert ("stdout", "got x 2.5 True") in streams and ("stderr", "to stderr") in streams
    [limited] = api.request("POST", f"/executions/{execution_id}/logs", json={"limit": 1}).json()
    assert len(limited) == 1
    listed = api.request("GET", "/pipelines/typed/executions").json()
    assert listed[0]["execution_id"] == execution_id
    latest = api.request("GET", "/pipelines/typed/executions/latest").json()
    assert latest["execution_id"] == execution_id


def test_run_bad_inputs_are_4xx(api):
    _pipeline(api, "typed-bad")

    def run(inputs, files=None, **extra):
        data = {"json_inputs": json.dumps(inputs), **extra}
        return api.request("POST", "/pipelines/typed-bad/run", data=data, files=files)

    f = {"f": ("f.txt", b"x")}
    assert_error(run({"s": "x"}), 400)  # missing required file
    assert_error(run({"n": 1}, f), 400)  # missing required string
    assert_error(run({"s": 1}, f), 400)  # wrong type
    assert_error(run({"s": "x", "n": "1"}, f), 400)
    assert_error(run({"s": "x", "b": "yes"}, f), 400)
    assert_error(run({"s": "x", "a": {"no": 1}}, f), 400)
    assert_error(run({"s": "x", "zz": 1}, f), 400)  # unknown input
    assert_error(run({"s": "x" * 70_000}, f), 413)
    assert_error(run({"s": "x"}, f, json_inputs_extra="1", inputs_mapping="not json"), 400)
    assert_error(run({"s": "x"}, f, inputs_mapping=json.dumps(
        [{"pipeline_input_name": "f", "constant_value": "x"}])), 400)
    assert_error(api.request("POST", "/pipelines/nope/run", data={"json_inputs": "{}"}), 404)
    assert api.request("GET", "/pipelines/typed-bad/executions").json() == []


def test_failures_are_reported(api):
    code = "def run():\n    print('before')\n    raise ValueError('bad thing')\n"
    create_step_http(api, "fails", {"main.py": code}, kind="pipelines")
    execution_id, out = run_and_wait(api, "fails")
    err = assert_error(out, 500, "ExecutionFailed")
    assert "bad thing" in err["message"]
    execution = api.request("GET", f"/executions/{execution_id}").json()
    assert execution["status"] == "Failed", execution
    # The exception's type is named once, as the runner wrote it ("Type: text").
    assert execution["error"].startswith("ValueError: bad thing\n"), execution["error"]
    assert "ValueError: ValueError" not in execution["error"]
    assert "ValueError: ValueError" not in err["message"]
    bad_output = ("def run():\n    return {'o': 3}\n")
    create_step_http(api, "bad-output", {"main.py": bad_output}, kind="pipelines",
                     fields={"outputs[0][name]": "o", "outputs[0][data_type]": "string"})
    execution_id, out = run_and_wait(api, "bad-output")
    assert_error(out, 500, "ExecutionFailed")
    # A runner error carries its bare text: the server names the type before it.
    error = api.request("GET", f"/executions/{execution_id}").json()["error"]
    assert error.startswith("OutputTypeError: output 'o' must be"), error
    crash = "import os\ndef run():\n    os._exit(3)\n"
    create_step_http(api, "crashes", {"main.py": crash}, kind="pipelines")
    execution_id, out = run_and_wait(api, "crashes")
    err = assert_error(out, 500)
    assert "code 3" in err["message"]


def test_execution_token_is_scoped_and_revoked(api, server):
    code = '''
import os, json
def run():
    return {"token": os.environ["CRAFT_AI_SDK_TOKEN"], "env_url": os.environ["CRAFT_AI_ENVIRONMENT_URL"],
            "ctl": os.environ["CRAFT_AI_CONTROL_URL"], "eid": os.environ["CRAFT_AI_EXECUTION_ID"]}
'''
    fields = {}
    for i, name in enumerate(["token", "env_url", "ctl", "eid"]):
        fields[f"outputs[{i}][name]"] = name
        fields[f"outputs[{i}][data_type]"] = "string"
    create_step_http(api, "leaks-token", {"main.py": code}, kind="pipelines", fields=fields)
    execution_id, out = run_and_wait(api, "leaks-token")
    values = {o["pipeline_output_name"]: o["value"] for o in out.json()["outputs"]}
    assert values["eid"] == execution_id and values["ctl"] == server.url
    assert values["env_url"] == api.env_url
    r = requests.post(server.url + "/api/v1/auth/refresh", json={"refresh_token": values["token"]},
                      timeout=10)
    assert_error(r, 401)  # the execution ended: its token is dead
    runner_call = requests.post(
        f"{api.env_url}/api/v1/runner/executions/{execution_id}/finish",
        headers={"Authorization": f"ExecutionToken {values['token']}"},
        json={"status": "Succeeded", "outputs": {}}, timeout=10)
    assert_error(runner_call, 401)
    assert api.request("GET", f"/executions/{execution_id}").json()["status"] == "Succeeded"
