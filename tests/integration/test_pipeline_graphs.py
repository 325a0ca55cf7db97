"""Issue 11: multi-step pipelines (a graph of steps) through our SDK and plain HTTP. The
graph rules (each bad graph a 400 naming its fault) are tested in-process:
tests/app/test_graph_rules.py."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from shipyard.io import Input, Output

from ..helpers import Api, ServerProcess, assert_error, write_files

CODE = '''
import time

def a(text):
    print("a got", text)
    with open("a.txt", "w") as f:
        f.write(text)
    return {"num": len(text), "data": {"path": "a.txt"}}

def b(num, data):
    time.sleep(1.5)
    with open(data["path"]) as f:
        print("b read", f.read())
    return {"b_out": num * 2}

def c(data):
    time.sleep(1.5)
    with open(data["path"]) as f:
        text = f.read()
    with open("c.txt", "w") as f:
        f.write(text.upper())
    return {"c_file": {"path": "c.txt"}}

def d(b_out, c_file):
    with open(c_file["path"]) as f:
        text = f.read()
    with open("report.txt", "w") as f:
        f.write(f"{text}:{b_out}")
    return {"result": f"{text}-{b_out}", "report": {"path": "report.txt"}}

def boom(num):
    raise ValueError("middle step broke")

def slow(num):
    time.sleep(120)
    return {"b_out": num}
'''

STEPS = {
    "a": ([Input("text", "string")], [Output("num", "number"), Output("data", "file")]),
    "b": ([Input("num", "number"), Input("data", "file")], [Output("b_out", "number")]),
    "c": ([Input("data", "file")], [Output("c_file", "file")]),
    "d": ([Input("b_out", "number"), Input("c_file", "file")],
          [Output("result", "string"), Output("report", "file")]),
    "boom": ([Input("num", "number")], [Output("b_out", "number")]),
    "slow": ([Input("num", "number")], [Output("b_out", "number")]),
}
DIAMOND = [("a.num", "b.num"), ("a.data", "b.data"), ("a.data", "c.data"),
           ("b.b_out", "d.b_out"), ("c.c_file", "d.c_file")]


def _steps(sdk, folder, prefix: str, names) -> None:
    write_files(folder, {"steps.py": CODE})
    for name in names:
        inputs, outputs = STEPS[name]
        sdk.create_step(f"{prefix}{name}", function_path="steps.py", function_name=name,
                        container_config={"local_folder": str(folder)},
                        inputs=inputs, outputs=outputs)


def _dates(step: dict) -> tuple[datetime, datetime]:
    return tuple(datetime.fromisoformat(step[k].replace("Z", "+00:00"))
                 for k in ("start_date", "end_date"))


@pytest.fixture(scope="module")
def diamond_steps(server, tmp_path_factory):
    from shipyard import CraftAiSdk

    creds = server.credentials
    sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                     control_url=creds["control_url"])
    _steps(sdk, tmp_path_factory.mktemp("dag-code"), "g-", STEPS)
    return sdk


def _connections(prefix: str, pairs):
    return [(f"{prefix}{s}", f"{prefix}{t}") for s, t in pairs]


def test_diamond_passes_values_and_files(diamond_steps, api):
    sdk = diamond_steps
    created = sdk.create_pipeline("diamond", step_names=["g-a", "g-b", "g-c", "g-d"],
                                  connections=_connections("g-", DIAMOND))
    assert created["steps"] == ["g-a", "g-b", "g-c", "g-d"]
    got = sdk.get_pipeline("diamond")
    assert got["connections"][0] == {"source": "g-a.num", "target": "g-b.num"}
    assert got["open_inputs"] == [{"input_name": "text", "step_name": "g-a",
                                   "data_type": "string"}]
    assert {o["output_name"] for o in got["open_outputs"]} == {"result", "report"}

    run = sdk.run_pipeline("diamond", {"text": "hello"})
    assert run["outputs"]["result"] == "HELLO-10"
    execution_id = run["execution_id"]
    report = api.request("GET", f"/executions/{execution_id}/outputs/report")
    assert report.content == b"HELLO:10"
    execution = sdk.get_pipeline_execution(execution_id)
    assert execution["status"] == "Succeeded"
    steps = {s["name"]: s for s in execution["steps"]}
    assert [s["name"] for s in execution["steps"]] == ["g-a", "g-b", "g-c", "g-d"]
    assert all(s["status"] == "Succeeded" for s in steps.values())
    b_start, b_end = _dates(steps["g-b"])
    c_start, c_end = _dates(steps["g-c"])
    assert b_start < c_end and c_start < b_end, (steps["g-b"], steps["g-c"])  # in parallel
    d_start, _ = _dates(steps["g-d"])
    assert d_start >= max(b_end, c_end)  # fan-in waits for both
    b_inputs = {i["name"]: i for i in steps["g-b"]["inputs"]}
    assert b_inputs["num"]["value"] == 5
    assert b_inputs["num"]["source"] == {"step_name": "g-a", "output_name": "num"}
    assert steps["g-d"]["outputs"][0] == {"name": "result", "data_type": "string",
                                          "value": "HELLO-10"}
    # Each log line names its step; the SDK keeps one step's lines on demand.
    lines = sdk.get_pipeline_execution_logs(execution_id=execution_id)
    assert {"g-a", "g-b"} <= {line["step_name"] for line in lines}
    only_b = sdk.get_pipeline_execution_logs(execution_id=execution_id, step_name="g-b")
    assert [line["message"] for line in only_b] == ["b read hello"]
    assert execution["resources"]["cpu_time_s"] > 0  # the steps' CPU time, added up
    assert execution["resources"]["peak_rss_bytes"] > 0
    listed = sdk.list_pipeline_executions("diamond")
    assert [s["status"] for s in listed[0]["steps"]] == ["Succeeded"] * 4


def test_failing_middle_step_skips_downstream(diamond_steps):
    sdk = diamond_steps
    sdk.create_pipeline("broken", step_names=["g-a", "g-boom", "g-d", "g-c"],
                        connections=_connections("g-", [
                            ("a.num", "boom.num"), ("a.data", "c.data"),
                            ("boom.b_out", "d.b_out"), ("c.c_file", "d.c_file")]))
    run = sdk.run_pipeline("broken", {"text": "x"}, wait_for_completion=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        execution = sdk.get_pipeline_execution(run["execution_id"])
        if execution["status"] not in ("Pending", "Running"):
            break
        time.sleep(0.3)
    assert execution["status"] == "Failed"
    assert "Step 'g-boom' failed" in execution["error"]
    assert "middle step broke" in execution["error"]
    statuses = {s["name"]: s["status"] for s in execution["steps"]}
    assert statuses == {"g-a": "Succeeded", "g-boom": "Failed", "g-c": "Succeeded",
                        "g-d": "Skipped"}


def test_kill9_mid_graph(tmp_path):
    from shipyard import CraftAiSdk

    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        creds = server.credentials
        sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                         control_url=creds["control_url"])
        _steps(sdk, tmp_path / "code", "k-", ["a", "slow", "b"])
        sdk.create_pipeline("chain", step_names=["k-a", "k-slow", "k-b"],
                            connections=[("k-a.num", "k-slow.num"),
                                         ("k-slow.b_out", "k-b.num"), ("k-a.data", "k-b.data")])
        execution_id = sdk.run_pipeline("chain", {"text": "hi"},
                                        wait_for_completion=False)["execution_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            steps = {s["name"]: s for s in sdk.get_pipeline_execution(execution_id)["steps"]}
            if steps["k-slow"]["status"] == "Running":
                break
            time.sleep(0.2)
        assert steps["k-slow"]["status"] == "Running"
        server.kill9()
        server = ServerProcess(data, port=server.port).start()
        api = Api(server)
        body = api.request("GET", f"/executions/{execution_id}").json()
        assert body["status"] == "Failed" and "server stopped" in body["error"]
        statuses = {s["name"]: (s["status"], s["error"]) for s in body["steps"]}
        assert statuses["k-a"][0] == "Succeeded"
        assert statuses["k-slow"][0] == "Failed" and "server stopped" in statuses["k-slow"][1]
        assert statuses["k-b"][0] == "Skipped"
    finally:
        server.stop()


def test_diamond_as_endpoint_and_schedule(diamond_steps):
    from shipyard.io import InputSource, OutputDestination

    sdk = diamond_steps
    sdk.create_pipeline("diamond-d", step_names=["g-a", "g-b", "g-c", "g-d"],
                        connections=_connections("g-", DIAMOND))
    deployment = sdk.create_deployment(
        "diamond-d", "diamond-ep", "endpoint",
        inputs_mapping=[InputSource(pipeline_input_name="text", endpoint_input_name="words")],
        outputs_mapping=[OutputDestination(pipeline_output_name="report",
                                           datastore_path="dag/{execution_id}.txt")])
    result = sdk.trigger_endpoint("diamond-ep", deployment["endpoint_token"],
                                  {"words": "abc"})
    assert result["outputs"]["result"] == "ABC-6"
    import io

    buffer = io.BytesIO()
    sdk.download_data_store_object(f"dag/{result['execution_id']}.txt", buffer)
    assert buffer.getvalue() == b"ABC:6"
    execution = sdk.get_pipeline_execution(result["execution_id"])
    assert execution["deployment_name"] == "diamond-ep"
    assert [s["status"] for s in execution["steps"]] == ["Succeeded"] * 4
    # Low latency: each step has its own resident runner.
    low = sdk.create_deployment(
        "diamond-d", "diamond-ll", "endpoint", mode="low_latency",
        inputs_mapping=[InputSource(pipeline_input_name="text", endpoint_input_name="text")],
        outputs_mapping=[OutputDestination(pipeline_output_name="report", is_null=True)])
    pods = sdk.get_deployment("diamond-ll")["pods"]
    assert {p["pod_id"] for p in pods} == {f"diamond-ll.g-{s}-0" for s in "abcd"}, pods
    for word in ("low", "latency"):
        fast = sdk.trigger_endpoint("diamond-ll", low["endpoint_token"], {"text": word})
        assert fast["outputs"]["result"] == f"{word.upper()}-{2 * len(word)}", fast
    steps = {s["name"]: s for s in sdk.get_pipeline_execution(fast["execution_id"])["steps"]}
    assert all(s["status"] == "Succeeded" for s in steps.values())
    b_start, b_end = _dates(steps["g-b"])
    c_start, c_end = _dates(steps["g-c"])
    assert b_start < c_end and c_start < b_end
    lines = sdk.get_pipeline_execution_logs(execution_id=fast["execution_id"], step_name="g-b")
    assert [line["message"] for line in lines] == ["b read latency"]
    sdk.delete_deployment("diamond-ll")

    sdk.create_deployment(
        "diamond-d", "diamond-cron", "periodic", schedule="* * * * *",
        inputs_mapping=[InputSource(pipeline_input_name="text", constant_value="tick")],
        outputs_mapping=[OutputDestination(pipeline_output_name="result", is_null=True),
                         OutputDestination(pipeline_output_name="report", is_null=True)])
    deadline = time.monotonic() + 100
    executions = []
    while time.monotonic() < deadline:
        executions = [e for e in sdk.list_pipeline_executions("diamond-d")
                      if e["deployment_name"] == "diamond-cron"
                      and e["status"] not in ("Pending", "Running")]
        if executions:
            break
        time.sleep(1)
    assert executions and executions[0]["status"] == "Succeeded", executions
    assert [s["status"] for s in executions[0]["steps"]] == ["Succeeded"] * 4
    sdk.delete_deployment("diamond-cron")


def test_deleting_graphs_and_their_steps(diamond_steps, api):
    sdk = diamond_steps
    sdk.create_pipeline("to-delete", step_names=["g-a", "g-c"],
                        connections=[("g-a.data", "g-c.data")])
    run = sdk.run_pipeline("to-delete", {"text": "bye"})
    assert api.request("GET", f"/executions/{run['execution_id']}").status_code == 200
    # A step used by a graph is protected like a pipeline's only step.
    refused = api.request("DELETE", "/steps/g-c")
    assert_error(refused, 409)
    assert "to-delete" in refused.text
    deleted = api.request("DELETE", "/pipelines/to-delete")
    assert deleted.status_code == 200, deleted.text
    assert api.request("GET", f"/executions/{run['execution_id']}").status_code == 404
    assert api.request("GET", "/steps/g-c").status_code == 200  # steps stay
