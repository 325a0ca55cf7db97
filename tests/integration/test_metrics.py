"""F16 pipeline metrics through a real server: recorded by real step code with our SDK
(inside the execution), read with our SDK and plain HTTP; every rule of contract §6.9 and
the bad inputs around it."""

from __future__ import annotations

import json
import time
import uuid
import warnings

import pytest

from ..helpers import ROOT, assert_error, create_step_http, run_and_wait

RECORDER = '''
from shipyard import CraftAiSdk

def run(mode):
    sdk = CraftAiSdk()
    if mode == "basic":
        sdk.record_metric_value("accuracy", 0.5)
        sdk.record_metric_value("accuracy", 0.75)        # last value wins
        sdk.record_metric_value("loss", 1)
        sdk.record_list_metric_values("loss_list", [1.4, 1.2])
        sdk.record_list_metric_values("loss_list", [1.1, 1.0])   # appended in order
        for i in range(1, 4):
            sdk.record_list_metric_values("logx", i)      # one value at a time
        sdk.record_metric_value("logx", 42)               # same name, other kind: allowed
        return {"result": "ok"}
    if mode == "cap":
        sent = sdk.record_list_metric_values("big", [float(i) for i in range(50_000)])
        try:
            sdk.record_list_metric_values("big", [1.0])
            return {"result": f"accepted {sent}"}
        except Exception as exc:                           # the SDK raises the 4xx
            return {"result": "refused " + str(exc)[:400]}
    return {"result": "unknown mode"}
'''
RECORDER_FIELDS = {"inputs[0][name]": "mode", "inputs[0][data_type]": "string",
                   "outputs[0][name]": "result", "outputs[0][data_type]": "string"}

HOLD = '''
import os, time

def run(release):
    deadline = time.monotonic() + 120
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {}
'''

CROSS = '''
import os, requests

def run(other):
    env = os.environ["CRAFT_AI_ENVIRONMENT_URL"]
    token = requests.post(os.environ["CRAFT_AI_CONTROL_URL"] + "/api/v1/auth/refresh",
                          json={"refresh_token": os.environ["CRAFT_AI_SDK_TOKEN"]}).json()["access_token"]
    r = requests.put(env + "/api/v1/metrics/single-value/stolen",
                     json={"value": 1, "execution_id": other},
                     headers={"Authorization": "Bearer " + token})
    return {"status": r.status_code}
'''


def _outputs(response) -> dict:
    assert response.status_code == 200, response.text
    return {o["pipeline_output_name"]: o["value"] for o in response.json()["outputs"]}


@pytest.fixture(scope="module")
def recorder(api):
    body = create_step_http(api, "metrics-recorder", {"main.py": RECORDER},
                            fields=RECORDER_FIELDS, kind="pipelines")
    assert body["creation_info"]["status"] == "ready", body
    return "metrics-recorder"


@pytest.fixture(scope="module")
def basic_runs(api, recorder):
    ids = []
    for _ in range(2):
        execution_id, out = run_and_wait(api, recorder, {"mode": "basic"})
        assert _outputs(out) == {"result": "ok"}
        ids.append(execution_id)
    return ids


def test_single_last_wins_and_lists_append_in_order(sdk, basic_runs):
    first = basic_runs[0]
    singles = {m["name"]: m for m in sdk.get_metrics(execution_id=first)}
    assert set(singles) == {"accuracy", "loss", "logx"}
    assert singles["accuracy"]["value"] == 0.75
    assert singles["loss"]["value"] == 1 and singles["logx"]["value"] == 42
    item = singles["accuracy"]
    assert set(item) == {"name", "value", "created_at", "execution_id", "deployment_name",
                         "pipeline_name"}
    assert item["pipeline_name"] == "metrics-recorder" and item["deployment_name"] is None
    assert item["created_at"].endswith("Z")
    lists = {m["name"]: m for m in sdk.get_list_metrics(execution_id=first)}
    assert lists["loss_list"]["values"] == [1.4, 1.2, 1.1, 1.0]
    assert lists["logx"]["values"] == [1, 2, 3]
    # `value` as the seed and 0.60.0 document it, `values` as later clients read it.
    assert lists["logx"]["value"] == [1, 2, 3]
    assert set(lists["logx"]) == {"name", "value", "values", "created_at", "execution_id",
                                  "deployment_name", "pipeline_name"}


def test_filters_name_pipeline_execution(sdk, api, basic_runs):
    by_pipeline = sdk.get_metrics(pipeline_name="metrics-recorder")
    assert {m["execution_id"] for m in by_pipeline} >= set(basic_runs)
    by_name = sdk.get_metrics(name="accuracy")
    assert {m["name"] for m in by_name} == {"accuracy"}
    assert {m["execution_id"] for m in by_name} >= set(basic_runs)
    # The documentation's own example: a name within one pipeline.
    both = sdk.get_list_metrics(name="loss_list", pipeline_name="metrics-recorder")
    assert {m["execution_id"] for m in both} >= set(basic_runs)
    assert all(m["values"] == [1.4, 1.2, 1.1, 1.0] for m in both)
    assert sdk.get_metrics(pipeline_name="no-such-pipeline") == []
    assert sdk.get_metrics(deployment_name="no-such-deployment") == []
    # More than one of pipeline / deployment / execution: a clear 400.
    r = api.request("GET", "/metrics/single-value", params={
        "filters[pipeline_name]": "metrics-recorder", "filters[execution_id]": basic_runs[0]})
    body = assert_error(r, 400, "BadRequest")
    assert "at most one" in body["message"]
    assert_error(api.request("GET", "/metrics/list-values", params={
        "filters[deployment_name]": "d", "filters[execution_id]": "e"}), 400)
    assert_error(api.request("GET", "/metrics/single-value", params={"filters[color]": "x"}), 400)


def test_pagination_is_consistent(api, basic_runs):
    seen = []
    total = None
    for page in range(1, 20):
        r = api.request("GET", "/metrics/single-value", params={
            "filters[pipeline_name]": "metrics-recorder", "items_per_page": 2, "page": page})
        assert r.status_code == 200, r.text
        body = r.json()
        total = body["total_count"] if total is None else total
        assert body["total_count"] == total
        if not body["metrics"]:
            break
        assert len(body["metrics"]) <= 2
        seen.extend((m["execution_id"], m["name"]) for m in body["metrics"])
    assert len(seen) == total == len(set(seen)) >= 6
    beyond = api.request("GET", "/metrics/list-values", params={"page": 999}).json()
    assert beyond["metrics"] == [] and beyond["total_count"] >= 4
    for params in ({"page": 0}, {"page": "two"}, {"items_per_page": 0},
                   {"items_per_page": 5001}, {"items_per_page": "x"}):
        assert_error(api.request("GET", "/metrics/single-value", params=params), 400)


def test_list_cap_of_50000_values(api, sdk, recorder):
    execution_id, out = run_and_wait(api, recorder, {"mode": "cap"})
    result = _outputs(out)["result"]
    assert result.startswith("refused"), result
    assert "50000" in result and "PayloadTooLarge" in result
    [big] = sdk.get_list_metrics(name="big", execution_id=execution_id)
    assert len(big["values"]) == 50_000
    assert big["values"][:3] == [0.0, 1.0, 2.0] and big["values"][-1] == 49_999.0


def test_recording_outside_an_execution_warns_and_sends_nothing(sdk, monkeypatch):
    for name in ("CRAFT_AI_EXECUTION_ID", "SHIPYARD_EXECUTION_ID"):
        monkeypatch.delenv(name, raising=False)
    before = len(sdk.get_metrics())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sdk.record_metric_value("outside", 1.0) is False
        assert sdk.record_list_metric_values("outside", [1.0]) is False
    assert any("outside" in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert len(sdk.get_metrics()) == before


def _wait_running(api, execution_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = api.request("GET", f"/executions/{execution_id}").json()["status"]
        if status == "Running":
            return
        assert status == "Pending", status
        time.sleep(0.05)
    raise AssertionError("the execution did not start")


def test_rules_while_running_and_after(api, tmp_path):
    create_step_http(api, "metrics-hold", {"main.py": HOLD}, kind="pipelines", fields={
        "inputs[0][name]": "release", "inputs[0][data_type]": "string"})
    create_step_http(api, "metrics-cross", {"main.py": CROSS}, kind="pipelines", fields={
        "inputs[0][name]": "other", "inputs[0][data_type]": "string",
        "outputs[0][name]": "status", "outputs[0][data_type]": "number"})
    # Outside /tmp and the data folder: the step's sandbox shows it the rest of the machine
    # (read-only), not the test's temporary folder.
    release = ROOT / "test-output" / f"metrics-release-{uuid.uuid4().hex}"
    release.parent.mkdir(parents=True, exist_ok=True)
    r = api.request("POST", "/pipelines/metrics-hold/run",
                    data={"json_inputs": json.dumps({"release": str(release)})})
    held = r.json()["execution_id"]
    try:
        _wait_running(api, held)

        def put(name, body, raw=None):
            if raw is not None:
                return api.request("PUT", f"/metrics/single-value/{name}", data=raw,
                                   headers={"Content-Type": "application/json"})
            return api.request("PUT", f"/metrics/single-value/{name}", json=body)

        def post(name, body):
            return api.request("POST", f"/metrics/list-values/{name}", json=body)

        # Wrong types, missing fields, non-finite numbers, bad names, bad bodies: 4xx.
        for bad in ("x", True, None, [1], {"v": 1}):
            assert_error(put("m", {"value": bad, "execution_id": held}), 400)
        assert_error(put("m", None, raw=json.dumps({"execution_id": held})[:-1] + ', "value": NaN}'),
                     400)
        assert_error(put("m", None, raw=f'{{"value": Infinity, "execution_id": "{held}"}}'), 400)
        assert_error(put("m", {"value": 1}), 400)
        assert_error(put("m", {"value": 1, "execution_id": 12}), 400)
        assert_error(put("m", None, raw="not json"), 400)
        assert_error(put("m", None, raw="[1, 2]"), 400)
        assert_error(put("bad name!", {"value": 1, "execution_id": held}), 400)
        assert_error(put("-dash-first", {"value": 1, "execution_id": held}), 400)
        assert_error(put("m" * 200, {"value": 1, "execution_id": held}), 400)
        assert_error(put("m", {"value": 1, "execution_id": "no-such-execution"}), 403)
        assert_error(post("l", {"values": [], "execution_id": held}), 400)
        assert_error(post("l", {"values": ["a"], "execution_id": held}), 400)
        assert_error(post("l", {"values": [1, None], "execution_id": held}), 400)
        assert_error(post("l", {"values": "1,2", "execution_id": held}), 400)
        assert_error(post("l", {"values": [1.0] * 10_001, "execution_id": held}), 413)
        assert_error(post("l", {"values": [1.0]}), 400)
        # Nothing of that was stored.
        stored = api.request("GET", "/metrics/single-value",
                             params={"filters[execution_id]": held}).json()
        assert stored == {"metrics": [], "total_count": 0}
        # A valid call for the running execution is accepted (a user token with its id).
        assert put("ok", {"value": 3, "execution_id": held}).status_code == 200
        assert post("okl", {"values": [1, 2.5], "execution_id": held}).status_code == 200
        # Another execution's token cannot write into this one: 403 from inside the step.
        cross_id, out = run_and_wait(api, "metrics-cross", {"other": held})
        assert _outputs(out) == {"status": 403}
    finally:
        release.write_text("go")
    out = api.request("GET", f"/executions/{held}/outputs?wait_for_completion=true")
    release.unlink()
    for _ in range(10):
        if out.status_code != 307:
            break
        out = api.request("GET", f"/executions/{held}/outputs?wait_for_completion=true")
    assert out.status_code == 200, out.text
    # Once the execution has ended, its metrics are closed.
    assert_error(api.request("PUT", "/metrics/single-value/late",
                             json={"value": 1, "execution_id": held}), 403)
    assert_error(api.request("POST", "/metrics/list-values/late",
                             json={"values": [1], "execution_id": held}), 403)
    singles = api.request("GET", "/metrics/single-value",
                          params={"filters[execution_id]": held}).json()
    assert [(m["name"], m["value"]) for m in singles["metrics"]] == [("ok", 3)]
    lists = api.request("GET", "/metrics/list-values",
                        params={"filters[execution_id]": held}).json()
    assert [(m["name"], m["values"]) for m in lists["metrics"]] == [("okl", [1, 2.5])]


def test_metrics_routes_need_a_valid_token(server, api):
    import requests

    url = api.env_url + "/api/v1/metrics/single-value"
    assert_error(requests.get(url, timeout=10), 401)
    assert_error(requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10), 401)
    assert_error(requests.put(url + "/x", json={"value": 1, "execution_id": "e"},
                              headers={"Authorization": "Bearer a.b.c"}, timeout=10), 401)


def test_filter_by_deployment(api, sdk, recorder):
    import requests

    r = api.request("POST", "/endpoints", json={
        "pipeline_name": recorder, "name": "metrics-ep", "mode": "elastic",
        "inputs_mapping": [{"pipeline_input_name": "mode", "constant_value": "basic"}]})
    assert r.status_code in (200, 201), r.text
    deployment = api.request("GET", "/deployments/metrics-ep").json()
    url = f"{api.env_url}/endpoints/{deployment['endpoint_url_path']}"
    r = requests.post(url, json={}, timeout=120,
                      headers={"Authorization": f"EndpointToken {deployment['endpoint_token']}"})
    assert r.status_code == 200 and r.json()["outputs"] == {"result": "ok"}, r.text
    execution_id = r.history[0].headers["Craft-Ai-Execution-Id"] if r.history else \
        r.headers["Craft-Ai-Execution-Id"]
    found = sdk.get_metrics(deployment_name="metrics-ep")
    assert {(m["execution_id"], m["deployment_name"]) for m in found} == {
        (execution_id, "metrics-ep")}
    assert {m["name"] for m in found} == {"accuracy", "loss", "logx"}
    lists = sdk.get_list_metrics(deployment_name="metrics-ep", name="loss_list")
    assert [m["values"] for m in lists] == [[1.4, 1.2, 1.1, 1.0]]
    # The pipeline filter sees the deployment's execution too.
    assert execution_id in {m["execution_id"] for m in sdk.get_metrics(pipeline_name=recorder)}


def _object_pages(api, kind: str, filters: dict) -> list[dict]:
    """What the official client reads: `{metrics, total_count}` pages of 5,000, plain HTTP."""
    items, page = [], 1
    while True:
        r = api.request("GET", f"/metrics/{kind}", params={
            **{f"filters[{k}]": v for k, v in filters.items()}, "items_per_page": 5000,
            "page": page})
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["metrics"]
        if not body["metrics"] or len(items) >= body["total_count"]:
            return items
        page += 1


def test_sdk_reads_columns_equal_to_the_official_pages(api, sdk, basic_runs):
    """Our SDK asks `format=columns` pages (up to 50,000 rows each): it returns exactly what
    the `{metrics}` pages hold (values to the last bit, ints as ints, key order), and the
    pages the official client reads are unchanged."""
    for filters in ({"pipeline_name": "metrics-recorder"}, {"execution_id": basic_runs[0]},
                    {"name": "accuracy"}, {"name": "loss_list", "pipeline_name": "metrics-recorder"},
                    {}, {"pipeline_name": "no-such-pipeline"}):
        for kind, read in (("single-value", sdk.get_metrics), ("list-values", sdk.get_list_metrics)):
            expected = _object_pages(api, kind, filters)
            got = read(**filters)
            assert got == expected and repr(got) == repr(expected), (kind, filters)
            assert [list(m) for m in got] == [list(m) for m in expected]
    r = api.request("GET", "/metrics/single-value", params={
        "filters[pipeline_name]": "metrics-recorder", "format": "columns", "items_per_page": 1})
    body = r.json()
    assert set(body) == {"total_count", "constant", "columns"}, body
    assert body["constant"] == {"pipeline_name": "metrics-recorder"}
    assert list(body["columns"]) == ["name", "created_at", "execution_id", "deployment_name",
                                     "value"]
    assert all(len(column) == 1 for column in body["columns"].values())


def test_page_size_caps_are_enforced_with_a_400(api):
    ok = api.request("GET", "/metrics/single-value", params={"format": "columns",
                                                              "items_per_page": 50_000})
    assert ok.status_code == 200, ok.text
    for kind, params, field in (
            ("single-value", {"format": "columns", "items_per_page": 50_001}, "items_per_page"),
            ("list-values", {"format": "columns", "items_per_page": 5_001}, "items_per_page"),
            # the official pages: as before
            ("single-value", {"items_per_page": 5_001}, "items_per_page"),
            ("list-values", {"format": "objects", "items_per_page": 5_001}, "items_per_page"),
            ("single-value", {"format": "rows"}, "format"),
            ("single-value", {"format": "columns", "items_per_page": 50_000,
                              "page": 10 ** 15}, "page")):  # past a database integer
        body = assert_error(api.request("GET", f"/metrics/{kind}", params=params), 400)
        named = body["additional_data"].get("fields", {}).get("query", body["additional_data"])
        assert field in named, body
