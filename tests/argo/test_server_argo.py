"""The real server with SHIPYARD_ORCHESTRATOR=argo against the cluster stub: pipelines become
image builds and WorkflowTemplates, runs become Workflows whose pods fetch their job from the
API, periodic deployments become CronWorkflows whose ticks reach the API, low-latency
deployments become Deployments + Services. Plain HTTP, as curl would; every payload the
server sends is validated by the stub against the Argo / Kubernetes schemas."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import requests

from ..helpers import Api, ServerProcess, assert_error, create_step_http, run_and_wait
from ..helpers import wait_ended as _wait_execution
from .schemas import require_schemas
from .stub import ClusterStub

CODE = '''
import os

def run(n, f):
    with open(f["path"]) as fh:
        text = fh.read()
    print("doubling", n, "with", os.environ.get("GREETING", "-"))
    return {"double": n * 2, "text": text.upper()}
'''
FIELDS = {"inputs[0][name]": "n", "inputs[0][data_type]": "number",
          "inputs[1][name]": "f", "inputs[1][data_type]": "file",
          "outputs[0][name]": "double", "outputs[0][data_type]": "number",
          "outputs[1][name]": "text", "outputs[1][data_type]": "string"}
TICK = "def run():\n    print('tick')\n"
RESIDENT = '''
import os
calls = 0

def run(x):
    global calls
    calls += 1
    return {"y": x + 1, "calls": calls, "pid": os.getpid()}
'''
RESIDENT_FIELDS = {"inputs[0][name]": "x", "inputs[0][data_type]": "number",
                   "outputs[0][name]": "y", "outputs[0][data_type]": "number",
                   "outputs[1][name]": "calls", "outputs[1][data_type]": "number",
                   "outputs[2][name]": "pid", "outputs[2][data_type]": "number"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_schemas()
    stub = ClusterStub(tmp_path_factory.mktemp("cluster")).start()
    yield stub
    stub.stop()
    assert stub.errors == [], stub.errors


@pytest.fixture(scope="module")
def argo_api(cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("argo-server")
    env = {"SHIPYARD_ORCHESTRATOR": "argo", "SHIPYARD_ARGO_SERVER": cluster.url,
           "SHIPYARD_KUBECONFIG": str(cluster.kubeconfig(root / "kubeconfig")),
           "SHIPYARD_NAMESPACE": cluster.namespace,
           "SHIPYARD_IMAGE_REGISTRY": "registry.test/shipyard",
           "SHIPYARD_DISPATCH_VIA": "proxy", "SHIPYARD_ARGO_POLL_S": "0.2"}
    server = ServerProcess(root / "data", env=env).start()
    yield Api(server)
    server.stop()


def _deployment_objects(cluster: ClusterStub, name: str) -> dict[str, dict]:
    """The cluster objects labelled with a Shipyard deployment's name, by kind."""
    found = {}
    for kind in ("cronworkflows", "deployments", "services", "secrets"):
        for document in cluster.objects[kind].values():
            if (document["metadata"].get("labels") or {}).get("shipyard.io/deployment") == name:
                found[kind] = document
    return found


def _wait_objects_deleted(cluster: ClusterStub, name: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while _deployment_objects(cluster, name):
        assert time.monotonic() < deadline, _deployment_objects(cluster, name).keys()
        time.sleep(0.2)


def _wait_up(api: Api, name: str, pods: int, timeout_s: float = 120) -> dict:
    """The low-latency deployment once up with `pods` resident runners."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = api.request("GET", f"/deployments/{name}?wait_for_completion=true").json()
        if body["status"] == "up" and len(body.get("pods") or []) == pods:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_run_builds_an_image_and_runs_a_workflow(argo_api, cluster):
    api = argo_api
    body = create_step_http(api, "doubler", {"main.py": CODE}, kind="pipelines", fields=FIELDS)
    assert body["creation_info"]["status"] == "ready", body
    logs = api.request("POST", "/pipelines/doubler/logs", json={}).json()
    assert any("shipyard-build-" in line["message"] for line in logs), logs
    templates = cluster.objects["workflowtemplates"]
    assert len(templates) == 1
    api.request("PUT", "/environment-variables", json={"environment_variables": {"GREETING": "hi"}})

    execution_id, out = run_and_wait(api, "doubler", {"n": 21},
                                     files={"f": ("input.txt", b"from a file")})
    assert out.status_code == 200, out.text
    outputs = {o["pipeline_output_name"]: o["value"] for o in out.json()["outputs"]}
    assert outputs == {"double": 42, "text": "FROM A FILE"}
    workflow = next(w for w in cluster.objects["workflows"].values()
                    if w["metadata"].get("annotations", {}).get("shipyard.io/execution-id")
                    == execution_id)
    assert workflow["spec"]["workflowTemplateRef"]["name"] in templates
    # The token travels in a Secret, never in the workflow the Argo UI shows...
    assert "exe_" not in json.dumps(workflow)
    # ...and the Secret is gone once the execution has ended.
    deadline = time.monotonic() + 30
    while any(s["metadata"]["name"].startswith("shipyard-exe-") for s in
              cluster.objects["secrets"].values()):
        assert time.monotonic() < deadline, "the execution's Secret was not deleted"
        time.sleep(0.2)
    logs = api.request("POST", f"/executions/{execution_id}/logs", json={}).json()
    assert any("doubling 21 with hi" in line["message"] for group in logs for line in group)


def test_failures_and_the_runner_routes_refuse_bad_tokens(argo_api, cluster):
    api = argo_api
    create_step_http(api, "failing", {"main.py": "def run():\n    raise KeyError('nope')\n"},
                     kind="pipelines")
    execution_id, out = run_and_wait(api, "failing")
    body = _wait_execution(api, execution_id)
    assert body["status"] == "Failed" and "KeyError" in body["error"]
    job_url = f"{api.env_url}/api/v1/runner/executions/{execution_id}/job"
    for headers in ({}, {"Authorization": "ExecutionToken wrong"},
                    {"Authorization": "Bearer " + api.token()}):
        assert_error(requests.get(job_url, headers=headers, timeout=10), 401)
    assert_error(requests.get(f"{api.env_url}/api/v1/runner/executions/unknown-1/job",
                              headers={"Authorization": "ExecutionToken x"}, timeout=10), 401)


def test_cancelling_by_deleting_a_running_execution(argo_api, cluster):
    api = argo_api
    create_step_http(api, "sleeper", {"main.py": "import time\ndef run():\n    time.sleep(300)\n"},
                     kind="pipelines")
    r = api.request("POST", "/pipelines/sleeper/run", data={"json_inputs": "{}"})
    execution_id = r.json()["execution_id"]
    deadline = time.monotonic() + 60
    while api.request("GET", f"/executions/{execution_id}").json()["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert api.request("DELETE", f"/executions/{execution_id}").status_code == 200
    workflow = next(w for w in cluster.objects["workflows"].values()
                    if w["metadata"].get("annotations", {}).get("shipyard.io/execution-id")
                    == execution_id)
    deadline = time.monotonic() + 30
    while workflow["status"]["phase"] != "Failed":
        assert time.monotonic() < deadline, workflow["status"]
        time.sleep(0.2)
    assert "Terminate" in workflow["status"]["message"]


def test_periodic_deployment_is_a_cron_workflow_whose_ticks_run_once(argo_api, cluster):
    api = argo_api
    create_step_http(api, "ticker", {"main.py": TICK}, kind="pipelines")
    for name in ("every-minute", "other"):
        r = api.request("POST", "/periodic-deployment", json={
            "pipeline_name": "ticker", "name": name, "schedule": "*/5 * * * *"})
        assert r.status_code == 201, r.text
    deadline = time.monotonic() + 30
    while "cronworkflows" not in _deployment_objects(cluster, "other"):
        assert time.monotonic() < deadline, "no CronWorkflow"
        time.sleep(0.2)
    objects = _deployment_objects(cluster, "every-minute")
    cron = objects["cronworkflows"]
    assert cron["spec"]["schedules"] == ["*/5 * * * *"] and cron["spec"]["timezone"] == "UTC"
    assert cron["spec"]["suspend"] is False
    deployment_id = int(cron["metadata"]["labels"]["shipyard.io/deployment-id"])
    token = objects["secrets"]["stringData"]["token"]
    other_token = _deployment_objects(cluster, "other")["secrets"]["stringData"]["token"]
    url = f"{api.env_url}/api/v1/runner/deployments/{deployment_id}/ticks"

    def tick(body, auth=f"DeploymentToken {token}"):
        return requests.post(url, json=body, headers={"Authorization": auth}, timeout=30)

    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    stamp = (now - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_error(tick({"fire_time": stamp}, auth=""), 401)
    assert_error(tick({"fire_time": stamp}, auth="DeploymentToken wrong"), 401)
    assert_error(tick({"fire_time": stamp}, auth=f"DeploymentToken {other_token}"), 403)
    for bad in ({}, {"fire_time": "tomorrow"}, {"fire_time": 5},
                {"fire_time": (now + dt.timedelta(hours=2)).isoformat()}):
        assert_error(tick(bad), 400)
    assert api.request("GET", "/deployments/every-minute/executions/latest").json() in (None, {})

    first = tick({"fire_time": stamp})
    assert first.status_code == 200 and first.json()["started"] is True
    again = tick({"fire_time": stamp})  # Argo retried, or a second replica: no second run
    assert again.status_code == 200 and again.json() == {"execution_id": None, "started": False}
    assert _wait_execution(api, first.json()["execution_id"])["status"] == "Succeeded"

    # What the Argo agent does at a tick: the HTTP template, headers from the Secret.
    run = cluster.fire_cron(cron["metadata"]["name"], now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert run["status"]["phase"] == "Succeeded", run
    fired = json.loads(run["response"]["body"])["execution_id"]
    assert _wait_execution(api, fired)["status"] == "Succeeded"

    # Disabling suspends the CronWorkflow; deleting removes it and its Secret.
    r = api.request("PATCH", "/deployments/every-minute", json={"is_enabled": False})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while not _deployment_objects(cluster, "every-minute")["cronworkflows"]["spec"].get("suspend"):
        assert time.monotonic() < deadline, "not suspended"
        time.sleep(0.2)
    assert api.request("DELETE", "/deployments/every-minute").status_code == 200
    _wait_objects_deleted(cluster, "every-minute")
    assert_error(tick({"fire_time": stamp}), 401)  # its token died with it


def test_low_latency_deployment_runs_resident_pods(argo_api, cluster):
    api = argo_api
    create_step_http(api, "counter", {"main.py": RESIDENT}, kind="pipelines",
                     fields=RESIDENT_FIELDS)
    r = api.request("POST", "/endpoints", json={"pipeline_name": "counter", "name": "count-ll",
                                                "mode": "low_latency", "replicas": 2})
    assert r.status_code == 201, r.text
    token = r.json()["endpoint_token"]
    _wait_up(api, "count-ll", pods=2)
    objects = _deployment_objects(cluster, "count-ll")
    assert objects["deployments"]["spec"]["replicas"] == 2
    assert objects["services"]["spec"]["ports"][0]["port"] == 8080

    def call(x: int) -> dict:
        r = requests.post(f"{api.env_url}/endpoints/count-ll", json={"x": x}, timeout=60,
                          headers={"Authorization": f"EndpointToken {token}"})
        assert r.status_code == 200, r.text
        return r.json()["outputs"]

    results = [call(x) for x in range(6)]
    assert [r["y"] for r in results] == [1, 2, 3, 4, 5, 6]
    assert max(r["calls"] for r in results) >= 2  # module globals live on between executions
    old_pids = {r["pid"] for r in results}
    generation = objects["deployments"]["spec"]["template"]["metadata"]["annotations"]

    # update_deployment rolls the pods: a new pod template, new processes.
    r = api.request("PATCH", "/deployments/count-ll", json={})  # update_deployment(name)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 120
    while True:
        current = _deployment_objects(cluster, "count-ll")["deployments"]
        annotations = current["spec"]["template"]["metadata"]["annotations"]
        if annotations != generation:
            result = call(1)
            if result["pid"] not in old_pids:
                break
        assert time.monotonic() < deadline, "the pods were not replaced"
        time.sleep(0.5)
    assert api.request("DELETE", "/deployments/count-ll").status_code == 200
    _wait_objects_deleted(cluster, "count-ll")


def _io_fields(inputs, outputs) -> dict:
    fields = {}
    for i, (name, data_type) in enumerate(inputs):
        fields.update({f"inputs[{i}][name]": name, f"inputs[{i}][data_type]": data_type})
    for i, (name, data_type) in enumerate(outputs):
        fields.update({f"outputs[{i}][name]": name, f"outputs[{i}][data_type]": data_type})
    return fields


@pytest.fixture(scope="module")
def argo_diamond(argo_api) -> str:
    """The diamond a -> (b, c) -> d of tests/integration/test_pipeline_graphs.py, passing a
    value and files, as the pipeline `argo-diamond` (steps `argo-a` .. `argo-d`)."""
    from ..integration.test_pipeline_graphs import CODE as GRAPH_CODE

    declared = {
        "a": ([("text", "string")], [("num", "number"), ("data", "file")]),
        "b": ([("num", "number"), ("data", "file")], [("b_out", "number")]),
        "c": ([("data", "file")], [("c_file", "file")]),
        "d": ([("b_out", "number"), ("c_file", "file")],
              [("result", "string"), ("report", "file")]),
    }
    for name, (inputs, outputs) in declared.items():
        body = create_step_http(argo_api, f"argo-{name}", {"steps.py": GRAPH_CODE},
                                function_path="steps.py", function_name=name,
                                fields=_io_fields(inputs, outputs))
        assert body["creation_info"]["status"] == "ready", body
    pairs = [("a.num", "b.num"), ("a.data", "b.data"), ("a.data", "c.data"),
             ("b.b_out", "d.b_out"), ("c.c_file", "d.c_file")]
    created = argo_api.request("POST", "/pipelines", json={
        "pipeline_name": "argo-diamond", "step_names": [f"argo-{s}" for s in "abcd"],
        "connections": [{"source": f"argo-{s}", "target": f"argo-{t}"} for s, t in pairs]})
    assert created.status_code == 201, created.text
    return "argo-diamond"


def test_diamond_runs_as_one_dag_workflow(argo_api, cluster, argo_diamond):
    """Issue 11 on the cluster backend: a multi-step pipeline is one WorkflowTemplate with
    a DAG entrypoint (a task per step, dependencies from the connections); an execution is
    one Workflow referencing it. Each task's pod fetches its step's job (inputs from
    upstream steps: values, files as signed URLs) and reports with its step's token."""
    execution_id, out = run_and_wait(argo_api, argo_diamond, {"text": "dag"})
    assert out.status_code == 200, out.text
    outputs = {o["pipeline_output_name"]: o for o in out.json()["outputs"]}
    assert outputs["result"]["value"] == "DAG-6"
    report = argo_api.request("GET", f"/executions/{execution_id}/outputs/report")
    assert report.content == b"DAG:6"
    body = argo_api.request("GET", f"/executions/{execution_id}").json()
    assert [(s["name"], s["status"]) for s in body["steps"]] == [
        (f"argo-{s}", "Succeeded") for s in "abcd"]
    [workflow] = [w for w in cluster.objects["workflows"].values()
                  if w["metadata"].get("annotations", {}).get("shipyard.io/execution-id", "")
                  .startswith(execution_id)]
    template = cluster.objects["workflowtemplates"][
        workflow["spec"]["workflowTemplateRef"]["name"]]
    [dag] = [t["dag"] for t in template["spec"]["templates"]
             if t["name"] == template["spec"]["entrypoint"]]
    assert {t["name"]: sorted(t.get("dependencies") or []) for t in dag["tasks"]} == {
        "argo-a": [], "argo-b": ["argo-a"], "argo-c": ["argo-a"],
        "argo-d": ["argo-b", "argo-c"]}
    order = cluster.pods[workflow["metadata"]["name"]].order
    assert order[0] == "argo-a" and order[-1] == "argo-d", order
    steps = {s["name"]: s for s in body["steps"]}
    assert steps["argo-b"]["inputs"][0]["source"] == {"step_name": "argo-a",
                                                      "output_name": "num"}

    # A failing middle step: the DAG stops there, what follows is Skipped.
    for name, code in (("argo-bad", "def bad(num):\n    raise ValueError('no')\n"),):
        body = create_step_http(argo_api, name, {"steps.py": code}, function_path="steps.py",
                                function_name="bad",
                                fields=_io_fields([("num", "number")], [("b_out", "number")]))
        assert body["creation_info"]["status"] == "ready", body
    created = argo_api.request("POST", "/pipelines", json={
        "pipeline_name": "argo-broken", "step_names": ["argo-a", "argo-bad", "argo-d", "argo-c"],
        "connections": [{"source": "argo-a.num", "target": "argo-bad.num"},
                        {"source": "argo-a.data", "target": "argo-c.data"},
                        {"source": "argo-bad.b_out", "target": "argo-d.b_out"},
                        {"source": "argo-c.c_file", "target": "argo-d.c_file"}]})
    assert created.status_code == 201, created.text
    run = argo_api.request("POST", "/pipelines/argo-broken/run",
                           data={"json_inputs": json.dumps({"text": "x"})})
    assert run.status_code == 200, run.text
    failed = _wait_execution(argo_api, run.json()["execution_id"], 90)
    assert failed["status"] == "Failed" and "Step 'argo-bad' failed" in failed["error"]
    assert {s["name"]: s["status"] for s in failed["steps"]} == {
        "argo-a": "Succeeded", "argo-bad": "Failed", "argo-c": "Succeeded",
        "argo-d": "Skipped"}


def test_rerun_and_step_cache_on_the_cluster(argo_api, cluster):
    """Issue 12 on the cluster backend: the DAG Workflow runs every task; a task whose step
    takes a result (Reused by a re-run, or Cached) gets a job saying so from the API and its
    pod exits without running the step code (the markers its code writes are counted)."""
    import io
    import uuid

    from shipyard import CraftAiSdk

    from ..integration.test_reruns_and_cache import CODE as RERUN_CODE
    from ..integration.test_reruns_and_cache import _markers

    creds = argo_api.server.credentials
    sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                     control_url=creds["control_url"])
    declared = {
        "first": ([("tag", "string"), ("text", "string")], [("data", "file"), ("n", "number")]),
        "second": ([("tag", "string"), ("data", "file"), ("n", "number")], [("data2", "file")]),
        "third": ([("tag", "string"), ("data2", "file")], [("result", "string")]),
        "cached": ([("tag", "string"), ("x", "number"), ("f", "file")],
                   [("y", "number"), ("rev", "file")]),
        "after": ([("y", "number"), ("rev", "file")], [("summary", "string")]),
    }
    for name, (inputs, outputs) in declared.items():
        fields = _io_fields(inputs, outputs)
        if name == "cached":
            fields["cache_results"] = "true"
        body = create_step_http(argo_api, f"ar-{name}", {"steps.py": RERUN_CODE},
                                function_path="steps.py", function_name=name, fields=fields)
        assert body["creation_info"]["status"] == "ready", body
    pairs = [("ar-first.data", "ar-second.data"), ("ar-first.n", "ar-second.n"),
             ("ar-second.data2", "ar-third.data2")]
    sdk.create_pipeline("ar-chain", step_names=["ar-first", "ar-second", "ar-third"],
                        connections=pairs)
    tag = uuid.uuid4().hex[:8]
    started = sdk.run_pipeline("ar-chain", {"tag": tag, "text": "dag"}, wait_for_completion=False)
    failed = _wait_execution(argo_api, started["execution_id"], 120)
    assert failed["status"] == "Failed" and "ar-third" in failed["error"], failed["error"]
    sdk.upload_data_store_object(io.BytesIO(b"yes"), f"flags/{tag}/ok")
    rerun = sdk.rerun_pipeline_execution(failed["execution_id"], from_step="ar-third")
    assert rerun["outputs"] == {"result": "DAG:3"}
    assert _markers(sdk, tag) == {"first": 1, "second": 1, "third": 2}
    steps = {s["name"]: s for s in sdk.get_pipeline_execution(rerun["execution_id"])["steps"]}
    assert [steps[f"ar-{n}"]["status"] for n in ("first", "second", "third")] == [
        "Reused", "Reused", "Succeeded"]
    assert steps["ar-first"]["reused_from"] == failed["execution_id"]

    sdk.create_pipeline("ar-cache", step_names=["ar-cached", "ar-after"],
                        connections=[("ar-cached.y", "ar-after.y"),
                                     ("ar-cached.rev", "ar-after.rev")])
    outs = [sdk.run_pipeline("ar-cache", {"tag": tag, "x": 2, "f": b"abc"}) for _ in range(2)]
    assert outs[0]["outputs"] == outs[1]["outputs"] == {"summary": "4/cba"}
    assert _markers(sdk, tag)["cached"] == 1
    steps = {s["name"]: s for s in sdk.get_pipeline_execution(outs[1]["execution_id"])["steps"]}
    assert steps["ar-cached"]["status"] == "Cached"
    assert steps["ar-cached"]["cached_from"] == outs[0]["execution_id"]
    forced = sdk.run_pipeline("ar-cache", {"tag": tag, "x": 2, "f": b"abc"}, use_cache=False)
    assert _markers(sdk, tag)["cached"] == 2

    # A single-step pipeline of the same step: a cached run (the newest result of the step,
    # whatever pipeline ran it) starts no Workflow; a re-run runs the step again in a
    # Workflow of its own, with the origin's file input.
    sdk.create_pipeline("ar-solo", step_name="ar-cached")
    workflows = len(cluster.objects["workflows"])
    cached = sdk.run_pipeline("ar-solo", {"tag": tag, "x": 2, "f": b"abc"})
    assert cached["outputs"] == {"y": 4, "rev": b"cba"}
    [step] = sdk.get_pipeline_execution(cached["execution_id"])["steps"]
    assert step["status"] == "Cached" and step["cached_from"] == forced["execution_id"]
    assert len(cluster.objects["workflows"]) == workflows
    again = sdk.rerun_pipeline_execution(cached["execution_id"])
    assert again["outputs"] == {"y": 4, "rev": b"cba"}
    assert _markers(sdk, tag)["cached"] == 3
    assert len(cluster.objects["workflows"]) == workflows + 1


def test_diamond_as_a_low_latency_endpoint(argo_api, cluster, argo_diamond):
    """A multi-step pipeline in low-latency mode on the cluster backend: a Deployment +
    Service per step, each selecting its step's pods; the API advances the graph, calling
    each step's Service in dependency order (b and c at once) with values and files passed
    between steps, and records the execution's `steps` as in embedded mode."""
    from ..integration.test_pipeline_graphs import _dates

    r = argo_api.request("POST", "/endpoints", json={
        "pipeline_name": argo_diamond, "name": "diamond-ll", "mode": "low_latency",
        "outputs_mapping": [{"pipeline_output_name": "report", "is_null": True}]})
    assert r.status_code == 201, r.text
    token = r.json()["endpoint_token"]
    _wait_up(argo_api, "diamond-ll", pods=4)  # a resident runner per step
    deployment_id = next(d for d in cluster.objects["secrets"].values()
                         if d["metadata"]["labels"].get("shipyard.io/deployment") == "diamond-ll"
                         )["metadata"]["labels"]["shipyard.io/deployment-id"]
    residents = {n: d for n, d in cluster.objects["deployments"].items()
                 if d["metadata"]["labels"].get("shipyard.io/deployment") == "diamond-ll"}
    assert set(residents) == {f"shipyard-dep-{deployment_id}-argo-{s}" for s in "abcd"}
    for name, document in residents.items():
        step = document["metadata"]["labels"]["shipyard.io/step"]
        assert document["spec"]["selector"]["matchLabels"]["shipyard.io/step"] == step
        assert cluster.objects["services"][name]["spec"]["selector"] == \
            document["spec"]["selector"]["matchLabels"]
        runner = document["spec"]["template"]["spec"]["containers"][0]
        assert runner["args"][runner["args"].index("--function-name") + 1] == step[-1]

    for word in ("low", "latency"):
        r = requests.post(f"{argo_api.env_url}/endpoints/diamond-ll", json={"text": word},
                          headers={"Authorization": f"EndpointToken {token}"}, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"]["result"] == f"{word.upper()}-{2 * len(word)}", r.json()
    execution = _wait_execution(argo_api, r.json()["execution_id"])
    assert execution["status"] == "Succeeded" and execution["deployment_name"] == "diamond-ll"
    steps = {s["name"]: s for s in execution["steps"]}
    assert [(s["name"], s["status"]) for s in execution["steps"]] == [
        (f"argo-{s}", "Succeeded") for s in "abcd"]
    assert steps["argo-b"]["inputs"][0]["source"] == {"step_name": "argo-a",
                                                      "output_name": "num"}
    assert steps["argo-d"]["outputs"][0] == {"name": "result", "data_type": "string",
                                             "value": "LATENCY-14"}
    b_start, b_end = _dates(steps["argo-b"])
    c_start, c_end = _dates(steps["argo-c"])
    assert b_start < c_end and c_start < b_end, "b and c ran one after the other"
    assert _dates(steps["argo-a"])[1] <= min(b_start, c_start)
    assert max(b_end, c_end) <= _dates(steps["argo-d"])[0]
    logs = argo_api.request("POST", f"/executions/{execution['execution_id']}/logs",
                            json={}).json()
    assert any("b read latency" in line["message"] for group in logs for line in group), logs
    # No elastic Workflow ran: every step went to its resident runners.
    assert not [w for w in cluster.objects["workflows"].values()
                if w["metadata"].get("annotations", {}).get("shipyard.io/execution-id", "")
                .startswith(execution["execution_id"])]

    assert argo_api.request("DELETE", "/deployments/diamond-ll").status_code == 200
    _wait_objects_deleted(cluster, "diamond-ll")
    deadline = time.monotonic() + 30
    while any(d["metadata"]["labels"].get("shipyard.io/deployment") == "diamond-ll"
              for kind in ("deployments", "services") for d in cluster.objects[kind].values()):
        assert time.monotonic() < deadline, "a step's runners were left behind"
        time.sleep(0.2)


def test_a_failing_step_of_a_low_latency_graph_skips_what_follows(argo_api, cluster,
                                                                   argo_diamond):
    """Low-latency on the cluster backend, as in embedded mode: a step whose function fails
    (its resident runner answers the failure) fails the execution with an error naming it;
    the step that needed it is Skipped, the independent branch still ran."""
    from ..integration.test_pipeline_graphs import CODE as GRAPH_CODE

    body = create_step_http(argo_api, "argo-boom", {"steps.py": GRAPH_CODE},
                            function_path="steps.py", function_name="boom",
                            fields=_io_fields([("num", "number")], [("b_out", "number")]))
    assert body["creation_info"]["status"] == "ready", body
    created = argo_api.request("POST", "/pipelines", json={
        "pipeline_name": "argo-boom-graph",
        "step_names": ["argo-a", "argo-boom", "argo-c", "argo-d"],
        "connections": [{"source": "argo-a.num", "target": "argo-boom.num"},
                        {"source": "argo-a.data", "target": "argo-c.data"},
                        {"source": "argo-boom.b_out", "target": "argo-d.b_out"},
                        {"source": "argo-c.c_file", "target": "argo-d.c_file"}]})
    assert created.status_code == 201, created.text
    r = argo_api.request("POST", "/endpoints", json={
        "pipeline_name": "argo-boom-graph", "name": "boom-ll", "mode": "low_latency",
        "outputs_mapping": [{"pipeline_output_name": "report", "is_null": True}]})
    assert r.status_code == 201, r.text
    _wait_up(argo_api, "boom-ll", pods=4)
    call = requests.post(f"{argo_api.env_url}/endpoints/boom-ll", json={"text": "x"},
                         headers={"Authorization": f"EndpointToken {r.json()['endpoint_token']}"},
                         timeout=120)
    assert call.status_code == 500 and call.json()["name"] == "ExecutionFailed", call.text
    latest = argo_api.request("GET", "/deployments/boom-ll/executions/latest").json()
    failed = _wait_execution(argo_api, latest["execution_id"])
    assert failed["status"] == "Failed", failed
    assert "Step 'argo-boom' failed" in failed["error"] and "middle step broke" in failed["error"]
    assert {s["name"]: s["status"] for s in failed["steps"]} == {
        "argo-a": "Succeeded", "argo-boom": "Failed", "argo-c": "Succeeded",
        "argo-d": "Skipped"}
    assert argo_api.request("DELETE", "/deployments/boom-ll").status_code == 200
    _wait_objects_deleted(cluster, "boom-ll")


def test_retries_on_argo(argo_api, cluster, tmp_path):
    """The same cases on the cluster backend (against the stub): the flaky step's DAG task
    has a retryStrategy, Argo starts a new pod after each failure, and each new pod asks
    the API for its job as the step's next attempt."""
    from ..integration.test_retries import (
        check_fails_three_times,
        check_fails_twice_then_succeeds,
        sdk_of,
    )

    sdk = sdk_of(argo_api.server)
    check_fails_twice_then_succeeds(sdk, tmp_path, "ra-")
    check_fails_three_times(sdk, tmp_path, "ra-")
    strategies = {t["name"]: t.get("retryStrategy")
                  for template in cluster.objects["workflowtemplates"].values()
                  for t in template["spec"]["templates"] if "container" in t}
    assert strategies["ra-flaky"] == {"limit": "2", "retryPolicy": "OnFailure",
                                      "backoff": {"duration": "1", "factor": "2"}}
    assert strategies["ra-first"] is None


def test_periodic_low_latency_graph_ticks_into_the_step_residents(argo_api, cluster,
                                                                  argo_diamond):
    """A periodic deployment of a multi-step pipeline in low-latency mode: one CronWorkflow
    (the deployment's, however many steps), a Deployment per step; a tick runs the graph on
    the step residents."""
    r = argo_api.request("POST", "/periodic-deployment", json={
        "pipeline_name": argo_diamond, "name": "diamond-tick", "mode": "low_latency",
        "schedule": "0 3 * * *",
        "inputs_mapping": [{"pipeline_input_name": "text", "constant_value": "tick"}],
        "outputs_mapping": [{"pipeline_output_name": "result", "is_null": True},
                            {"pipeline_output_name": "report", "is_null": True}]})
    assert r.status_code == 201, r.text
    _wait_up(argo_api, "diamond-tick", pods=4)
    [cron] = [c for c in cluster.objects["cronworkflows"].values()
              if c["metadata"]["labels"].get("shipyard.io/deployment") == "diamond-tick"]
    assert len([d for d in cluster.objects["deployments"].values()
                if d["metadata"]["labels"].get("shipyard.io/deployment") == "diamond-tick"]) == 4
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    run = cluster.fire_cron(cron["metadata"]["name"], now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert run["status"]["phase"] == "Succeeded", run
    ticked = _wait_execution(argo_api, json.loads(run["response"]["body"])["execution_id"])
    assert ticked["status"] == "Succeeded", ticked
    assert [s["status"] for s in ticked["steps"]] == ["Succeeded"] * 4
    assert ticked["steps"][-1]["outputs"][0]["value"] == "TICK-8"
    assert argo_api.request("DELETE", "/deployments/diamond-tick").status_code == 200
    _wait_objects_deleted(cluster, "diamond-tick")


def test_a_killed_resident_pod_is_a_failed_attempt_on_argo(argo_api, cluster):
    """Low-latency on the cluster backend: the step's resident pod dies during a call (its
    process killed); that attempt fails, and the retry, once Kubernetes (the stub) has
    restarted the pod, succeeds."""
    import threading

    from ..integration.test_retries import COUNTED, sdk_of

    sdk = sdk_of(argo_api.server)
    body = create_step_http(argo_api, "ra-hang", {"steps.py": COUNTED}, kind="pipelines",
                            function_path="steps.py", function_name="hangs_first",
                            fields={**_io_fields([("key", "string")], [("runs", "number")]),
                                    "max_retries": "2", "retry_delay_s": "2"})
    assert body["creation_info"]["status"] == "ready", body
    r = argo_api.request("POST", "/endpoints", json={
        "pipeline_name": "ra-hang", "name": "ra-hang-ll", "mode": "low_latency"})
    assert r.status_code == 201, r.text
    token = r.json()["endpoint_token"]
    _wait_up(argo_api, "ra-hang-ll", pods=1)
    answer: dict = {}

    def call() -> None:
        answer["r"] = requests.post(f"{argo_api.env_url}/endpoints/ra-hang-ll",
                                    json={"key": "ra-ll"}, timeout=120,
                                    headers={"Authorization": f"EndpointToken {token}"})

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 60
    while not any(o["path"].startswith("runs/ra-ll/") for o in sdk.list_data_store_objects()):
        assert time.monotonic() < deadline, "the first call did not start"
        time.sleep(0.2)
    [resident] = [name for name, d in cluster.objects["deployments"].items()
                  if d["metadata"]["labels"].get("shipyard.io/deployment") == "ra-hang-ll"]
    cluster.replicas[resident][0]["pod"].kill()
    caller.join(120)
    assert answer["r"].status_code == 200, answer["r"].text
    assert answer["r"].json()["outputs"]["runs"] >= 2
    execution = _wait_execution(argo_api, answer["r"].json()["execution_id"])
    [step] = execution["steps"]
    assert step["attempts"][0]["status"] == "Failed"
    assert "resident runner" in step["attempts"][0]["error"], step["attempts"][0]
    assert step["attempts"][-1]["status"] == "Succeeded" and len(step["attempts"]) >= 2
    assert argo_api.request("DELETE", "/deployments/ra-hang-ll").status_code == 200
