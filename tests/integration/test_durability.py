"""Restarts keep every record; an execution interrupted by a crash ends failed with a reason."""

from __future__ import annotations

import time

from ..helpers import Api, ServerProcess, create_step_http, run_and_wait

SLOW = "import time\ndef run():\n    print('started', flush=True)\n    time.sleep(60)\n"
QUICK = "def run():\n    return {'o': 'ok'}\n"


def _wait_status(api: Api, execution_id: str, wanted: str, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = api.request("GET", f"/executions/{execution_id}").json()
        if body["status"] == wanted:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{execution_id} never became {wanted}: {body}")


def test_kill9_while_running_then_restart(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        api = Api(server)
        create_step_http(api, "slow", {"main.py": SLOW}, kind="pipelines")
        create_step_http(api, "quick", {"main.py": QUICK}, kind="pipelines",
                         fields={"outputs[0][name]": "o", "outputs[0][data_type]": "string"})
        done_id, _ = run_and_wait(api, "quick")
        r = api.request("POST", "/pipelines/slow/run", data={"json_inputs": "{}"})
        slow_id = r.json()["execution_id"]
        _wait_status(api, slow_id, "Running")
        server.kill9()
        server = ServerProcess(data, port=server.port).start()
        api = Api(server)
        body = api.request("GET", f"/executions/{slow_id}").json()
        assert body["status"] == "Failed"
        assert "server stopped" in body["error"]
        assert body["end_date"] is not None
        # Nothing else was lost.
        assert api.request("GET", f"/executions/{done_id}").json()["status"] == "Succeeded"
        names = {p["pipeline_name"] for p in api.request("GET", "/pipelines").json()}
        assert {"slow", "quick"} <= names
        # And the platform still runs things after the crash.
        _, out = run_and_wait(api, "quick")
        assert out.json()["outputs"][0]["value"] == "ok"
    finally:
        server.stop()


def test_sigterm_stops_cleanly_and_fails_running(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    api = Api(server)
    create_step_http(api, "slow", {"main.py": SLOW}, kind="pipelines")
    slow_id = api.request("POST", "/pipelines/slow/run", data={"json_inputs": "{}"}).json()["execution_id"]
    _wait_status(api, slow_id, "Running")
    code = server.stop()
    assert code == 0
    server = ServerProcess(data, port=server.port).start()
    try:
        body = Api(server).request("GET", f"/executions/{slow_id}").json()
        assert body["status"] == "Failed" and "server stopped" in body["error"]
    finally:
        server.stop()


def test_first_start_prints_the_password_once(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    server.stop()
    first = server.log_path.read_text()
    password = server.credentials["admin_password"]
    assert f"password {password}" in first
    assert server.credentials["sdk_token"] in first and "/ui/" in first
    server = ServerProcess(data, port=server.port).start()
    server.stop()
    assert server.log_path.read_text().count(password) == 1  # not printed again


ADD = "def add(a):\n    print('adding', a, flush=True)\n    return {'total': a + 1}\n"
ADD_FIELDS = {"inputs[0][name]": "a", "inputs[0][data_type]": "number",
              "outputs[0][name]": "total", "outputs[0][data_type]": "number"}


def _low_latency_endpoint(api: Api, pipeline_name: str, name: str) -> tuple[str, dict]:
    """A low-latency endpoint of the pipeline, up: its URL and its callers' headers."""
    r = api.request("POST", "/endpoints", json={"pipeline_name": pipeline_name, "name": name,
                                                "mode": "low_latency"})
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 120
    while api.request("GET", f"/deployments/{name}?wait_for_completion=true").json()["status"] != "up":
        assert time.monotonic() < deadline
    return (f"{api.env_url}/endpoints/{name}",
            {"Authorization": f"EndpointToken {r.json()['endpoint_token']}"})


def test_low_latency_call_survives_kill9_right_after_the_answer(tmp_path):
    """What a low-latency call records (the execution, its inputs, outputs and log lines)
    is committed before its answer leaves: a server killed with -9 the moment the caller
    has the answer loses none of it. (SQLite in WAL mode with synchronous=NORMAL: a commit
    is in the WAL file, so it survives the process; only an OS crash could drop it.)"""
    import requests

    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        api = Api(server)
        create_step_http(api, "adder", {"main.py": ADD}, kind="pipelines",
                         function_name="add", fields=ADD_FIELDS)
        url, headers = _low_latency_endpoint(api, "adder", "add-ll")
        ids = []
        for value in (1, 41):  # the second answer is the last thing before the kill
            answer = requests.post(url, json={"a": value}, headers=headers, timeout=30)
            assert answer.status_code == 200 and answer.json()["outputs"] == {"total": value + 1}
            ids.append(answer.headers["Craft-Ai-Execution-Id"])
        server.kill9()
        server = ServerProcess(data, port=server.port).start()
        api = Api(server)
        for value, execution_id in zip((1, 41), ids):
            body = api.request("GET", f"/executions/{execution_id}").json()
            assert body["status"] == "Succeeded", body
            assert body["end_date"] is not None
            assert [(i["pipeline_input_name"], i["value"]) for i in body["inputs"]] == [("a", value)]
            assert [(o["pipeline_output_name"], o["value"]) for o in body["outputs"]] == [
                ("total", value + 1)]
            [logs] = api.request("POST", f"/executions/{execution_id}/logs", json={}).json()
            assert [line["message"] for line in logs] == [f"adding {value}"]
    finally:
        server.stop()


def test_low_latency_call_killed_during_the_call_is_not_left_running(tmp_path):
    """A plain HTTP call's execution is written when it ends, or as Running once it has
    run for a moment (domain/deferred.py): a server killed with -9 during a long call
    leaves it Running in the store, and the restart ends it Failed, never Running forever."""
    import threading

    import requests

    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        api = Api(server)
        create_step_http(api, "sleeper", {"main.py": SLOW}, kind="pipelines")
        url, headers = _low_latency_endpoint(api, "sleeper", "nap-ll")

        def call() -> None:
            try:
                requests.post(url, json={}, headers=headers, timeout=60)
            except requests.RequestException:
                pass  # the server is killed under it

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        deadline = time.monotonic() + 30
        running: list = []
        while not running:
            assert time.monotonic() < deadline, "the long call never showed as Running"
            running = [e for e in api.request("GET", "/pipelines/sleeper/executions").json()
                       if e["status"] == "Running"]
            time.sleep(0.05)
        server.kill9()
        caller.join(30)
        server = ServerProcess(data, port=server.port).start()
        api = Api(server)
        body = _wait_status(api, running[0]["execution_id"], "Failed")
        assert "server stopped" in body["error"], body
    finally:
        server.stop()
