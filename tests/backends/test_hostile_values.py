"""Hostile values on SQLite and PostgreSQL, through a real server.

Numbers JSON cannot carry (NaN, ±Infinity, 1e309), integers past 64 bits and list sums
past the double range, sent to a real server on SQLite and on PostgreSQL: through plain HTTP
(pipeline runs as JSON and as form fields, endpoint calls, the metric routes) and through our
SDK from inside a step.

Before: NaN/Infinity inputs were stored and answered as bare `NaN` (invalid JSON); a list
metric holding an integer past 64 bits was a 500; a list whose sum passed the double range
was stored as an infinite mean on SQLite and a 500 on PostgreSQL."""

from __future__ import annotations

import json
import re
import time
import uuid

import requests
from shipyard_service.domain import comparison
from shipyard_service.store import db as store_db
from shipyard_service.store.models import Environment

from ..helpers import ROOT, Api, ServerProcess, assert_error, create_step_http, run_and_wait

HOLD = '''
import os, time

def run(x, release):
    deadline = time.time() + 120
    while not os.path.exists(release) and time.time() < deadline:
        time.sleep(0.05)
    return {"y": x}
'''

SDK_STEP = '''
from shipyard import CraftAiSdk
from shipyard.exceptions import SdkException

def run():
    sdk = CraftAiSdk()
    report = {}
    attempts = {
        "single_nan": lambda: sdk.record_metric_value("s", float("nan")),
        "single_inf": lambda: sdk.record_metric_value("s", float("-inf")),
        "list_inf": lambda: sdk.record_list_metric_values("l", [1.0, float("inf")]),
        "list_huge_int": lambda: sdk.record_list_metric_values("l", [10**400]),
        "list_sum": lambda: sdk.record_list_metric_values("l", [1e308, 1e308]),
        "list_ok": lambda: sdk.record_list_metric_values("l", [2**70, 1e308]),
        "list_sum_later": lambda: sdk.record_list_metric_values("l", [1e308]),
        # Sent in two requests: the NaN in the second stops both (none of it is recorded).
        "list_nan_late": lambda: sdk.record_list_metric_values("late", [0.5] * 10_000 + [float("nan")]),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            report[name] = "sent"
        except SdkException as error:
            report[name] = [error.name, error.status_code, error.message]
    return {"report": report}
'''

NUL_STEP = '''
def run(fail):
    print("before\\x00after")
    if fail:
        raise RuntimeError("bad\\x00byte")
    return {"text": "x\\x00y", "data": {"k\\x00": ["v\\x00"]}}
'''

NON_FINITE = ("NaN", "Infinity", "-Infinity", "1e309", "-1e309")


def _strict(text: str):
    """What a strict client (JavaScript's JSON.parse) accepts."""
    def refuse(token):
        raise AssertionError(f"{token} in an answer: not JSON")
    return json.loads(text, parse_constant=refuse)


def _raw(api: Api, method: str, path: str, body: str) -> requests.Response:
    return api.request(method, path, data=body, headers={"Content-Type": "application/json"})


def _wait_running(api: Api, execution_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.request("GET", f"/executions/{execution_id}").json()["status"] == "Running":
            return
        time.sleep(0.05)
    raise AssertionError("the execution did not start")


def test_numbers_json_cannot_carry(database_url, tmp_path):
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_DATABASE_URL": database_url}).start()
    release = ROOT / "test-output" / f"hostile-release-{uuid.uuid4().hex}"
    release.parent.mkdir(parents=True, exist_ok=True)
    try:
        api = Api(server)
        create_step_http(api, "hold", {"main.py": HOLD}, kind="pipelines", fields={
            "inputs[0][name]": "x", "inputs[0][data_type]": "number",
            "inputs[1][name]": "release", "inputs[1][data_type]": "string",
            "outputs[0][name]": "y", "outputs[0][data_type]": "number"})
        create_step_http(api, "sdk-numbers", {"main.py": SDK_STEP}, kind="pipelines", fields={
            "outputs[0][name]": "report", "outputs[0][data_type]": "json"})

        # Runs: a clear 400 for each, as a JSON body and as a form field; nothing started.
        for token in NON_FINITE:
            body = assert_error(_raw(api, "POST", "/pipelines/hold/run",
                                     f'{{"inputs": {{"x": {token}, "release": "r"}}}}'), 400,
                                "BadRequest")
            assert token in body["message"], body
            body = assert_error(api.request("POST", "/pipelines/hold/run", data={
                "json_inputs": f'{{"x": {token}, "release": "r"}}'}), 400, "BadRequest")
            assert "json_inputs" in body["message"] and token in body["message"], body
        assert api.request("GET", "/pipelines/hold/executions").json() == []
        # A form-made default of "nan" is not a number either.
        assert_error(api.request("POST", "/pipelines", data={
            "pipeline_name": "nan-default", "step_name": "x", "inputs[0][name]": "x",
            "inputs[0][data_type]": "number", "inputs[0][default_value]": "nan"}), 400)

        # An integer past 64 bits is a JSON number: kept exactly.
        big = 2**70
        r = _raw(api, "POST", "/pipelines/hold/run",
                 json.dumps({"inputs": {"x": big, "release": str(release)}}))
        assert r.status_code == 200, r.text
        held = r.json()["execution_id"]
        _wait_running(api, held)

        def single(value: str) -> requests.Response:
            return _raw(api, "PUT", "/metrics/single-value/s",
                        f'{{"value": {value}, "execution_id": "{held}"}}')

        def append(values: str) -> requests.Response:
            return _raw(api, "POST", "/metrics/list-values/l",
                        f'{{"values": {values}, "execution_id": "{held}"}}')

        for token in NON_FINITE:
            assert_error(single(token), 400, "BadRequest")
            assert_error(append(f"[1, {token}]"), 400, "BadRequest")
        assert_error(single(str(10**400)), 400, "BadRequest")
        assert_error(append(f"[{10**400}]"), 400, "BadRequest")  # was a 500
        assert_error(append("[1e308, 1e308]"), 400, "BadRequest")  # its sum
        assert append(f"[1, {big}]").status_code == 200  # was a 500
        assert single(str(big)).status_code == 200
        assert append("[-1e308]").status_code == 200
        body = assert_error(append("[-1e308]"), 400, "BadRequest")  # was a 500 on PostgreSQL
        assert "sum" in body["message"], body
        assert append("[1e308]").status_code == 200
        release.write_text("go")

        sdk_run, out = run_and_wait(api, "sdk-numbers")
        assert out.status_code == 200, out.text
        report = out.json()["outputs"][0]["value"]
        for name in ("single_nan", "single_inf", "list_inf", "list_nan_late"):  # before sending
            assert report[name][:2] == ["InvalidValue", None], report
        for name in ("list_huge_int", "list_sum", "list_sum_later"):
            assert report[name][:2] == ["BadRequest", 400], report
        assert report["list_ok"] == "sent", report

        # Endpoint calls: the same 400 before anything runs.
        r = api.request("POST", "/endpoints", json={"pipeline_name": "hold", "name": "hold-ep"})
        assert r.status_code in (200, 201), r.text
        token = r.json()["endpoint_token"]
        r = requests.post(f"{api.env_url}/endpoints/hold-ep", data='{"x": NaN, "release": "r"}',
                          headers={"Authorization": f"EndpointToken {token}",
                                   "Content-Type": "application/json"}, timeout=30)
        assert_error(r, 400, "BadRequest")

        # Everything the server answers is JSON a strict parser reads.
        deadline = time.monotonic() + 60
        while _strict(api.request("GET", f"/executions/{held}").text)["status"] == "Running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        record = _strict(api.request("GET", f"/executions/{held}").text)
        assert record["status"] == "Succeeded", record
        assert {i["pipeline_input_name"]: i["value"] for i in record["inputs"]}["x"] == big
        outputs = _strict(api.request("GET", f"/executions/{held}/outputs").text)
        assert outputs["outputs"][0]["value"] == big
        lists = _strict(api.request("GET", "/metrics/list-values").text)["metrics"]
        assert sorted((m["execution_id"], m["name"], m["values"]) for m in lists) == sorted([
            (held, "l", [1, float(big), -1e308, 1e308]), (sdk_run, "l", [float(big), 1e308])])
        singles = _strict(api.request("GET", "/metrics/single-value").text)["metrics"]
        assert [(m["execution_id"], m["value"]) for m in singles] == [(held, float(big))]
    finally:
        release.unlink(missing_ok=True)
        server.stop()

    db = store_db.init_db(database_url)
    with db.connection_context():
        env = Environment.get()
        for sort, aggregation in (("in:x", "last"), ("out:y", "last"), ("lm:l", "mean"),
                                  ("m:s", "last")):
            page = comparison.page_of(env, comparison.Filters(), sort, False, 1, 25, aggregation)
            assert held in [x.execution_id for x in page.executions], sort
    db.close()


def test_nul_in_urls_and_bodies_is_a_400(database_url, tmp_path):
    """Found by the fuzz on PostgreSQL (seeds 77, 99): a NUL (%00) in a query filter or a
    JSON body reached PostgreSQL, which refuses NUL in text (psycopg2's ValueError: a 500).
    SQLite read it."""
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_DATABASE_URL": database_url}).start()
    try:
        api = Api(server)
        for path in ("/metrics/list-values?filters[name]=a%00b",
                     "/metrics/single-value?filters[pipeline_name]=%00",
                     "/pipelines/a%00b", "/steps/a%00b", "/deployments/a%00b",
                     "/executions/a%00b/logs"):
            body = assert_error(api.request("GET", path), 400, "BadRequest")
            assert "NUL" in body["message"], (path, body)
        assert api.request("GET", "/metrics/list-values?filters[name]=ab").status_code == 200
        # In a JSON body (seed 99: an execution id holding one, a 500 on PostgreSQL).
        for path, method, body in (
                ("/metrics/single-value/m", "PUT", {"value": 1, "execution_id": "a\x00b"}),
                ("/steps", "POST", {"step_name": "a\x00b", "function_path": "m.py",
                                    "function_name": "run"}),
                ("/pipelines/x/run", "POST", {"inputs": {"k\x00": 1}})):
            body = assert_error(api.request(method, path, json=body), 400, "BadRequest")
            assert "NUL" in body["message"], body
        # UTF-16 or UTF-32 JSON (which json.loads reads), where `\u0000`'s bytes are spread
        # out: refused as a whole, as RFC 8259 asks JSON between systems to be UTF-8.
        for encoding in ("utf-16-le", "utf-16", "utf-32-be"):
            text = json.dumps({"value": 1, "execution_id": "a\x00b"})
            for path, method in (("/metrics/single-value/m", "PUT"),
                                 ("/endpoints/any", "POST")):
                body = assert_error(api.request(method, path, data=text.encode(encoding),
                                                headers={"Content-Type": "application/json"}),
                                    400, "BadRequest")
                assert "UTF-8" in body["message"], (encoding, path, body)
        # Named by the field holding it (the datastore's own path errors name theirs too).
        body = assert_error(api.request("GET", "/data-store/upload",
                                        params={"path_to_object": "a\x00b"}), 400)
        assert body["additional_data"]["field"] == "path_to_object", body
        body = assert_error(api.request("POST", "/data-store/information",
                                        json={"path_to_object": "a\x00b"}), 400)
        assert body["additional_data"]["path_to_object"] == "a\x00b", body
        # Text a step produced cannot be refused: its NULs become U+FFFD, on both databases
        # (PostgreSQL refuses NUL in text and in jsonb, which the sort index reads).
        create_step_http(api, "nul-maker", {"main.py": NUL_STEP}, kind="pipelines", fields={
            "inputs[0][name]": "fail", "inputs[0][data_type]": "boolean",
            "outputs[0][name]": "text", "outputs[0][data_type]": "string",
            "outputs[1][name]": "data", "outputs[1][data_type]": "json"})
        execution_id, out = run_and_wait(api, "nul-maker", {"fail": False})
        assert out.status_code == 200, out.text
        values = {o["pipeline_output_name"]: o["value"] for o in out.json()["outputs"]}
        assert values == {"text": "x\ufffdy", "data": {"k\ufffd": ["v\ufffd"]}}, values
        logs = api.request("POST", f"/executions/{execution_id}/logs", json={}).json()
        assert "before\ufffdafter" in json.dumps(logs, ensure_ascii=False), logs
        execution_id, out = run_and_wait(api, "nul-maker", {"fail": True})
        failed = api.request("GET", f"/executions/{execution_id}").json()
        assert failed["status"] == "Failed", failed
        assert "bad\ufffdbyte" in json.dumps(failed, ensure_ascii=False), failed
        # A form field: the web UI's sign-in (its e-mail looked up as typed).
        ui = requests.Session()
        page = ui.get(server.url + "/ui/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = ui.post(server.url + "/ui/login", timeout=10, allow_redirects=False,
                    data={"csrf_token": csrf, "email": "a\x00b@x.y", "password": "p", "next": ""})
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    finally:
        server.stop()
