"""Issue 12 point 1: retries of a failing step (max_retries, retry_delay_s), through our SDK
and plain HTTP."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from shipyard.io import Input, Output

from ..helpers import Api, ServerProcess, assert_error, create_step_http, write_files

FLAKY = '''
def run(x):
    return {"y": x + 1}
'''

# Each run counts itself with a marker in the data store (read back through the SDK), so
# the count survives the runner: a retry is a new process, or a restarted resident one.
COUNTED = '''
import io
import time

from shipyard import CraftAiSdk


def _count(key):
    sdk = CraftAiSdk()
    runs = [o for o in sdk.list_data_store_objects() if o["path"].startswith(f"runs/{key}/")]
    n = len(runs) + 1
    sdk.upload_data_store_object(io.BytesIO(b"run"), f"runs/{key}/{n}")
    print(f"run {n} of {key}", flush=True)
    return n


def first(key):
    return {"key": key}


def flaky(key, fail_times):
    n = _count(key)
    if n <= fail_times:
        raise RuntimeError(f"failure {n} of {key}")
    return {"runs": n}


def hangs_first(key):
    n = _count(key)
    if n == 1:
        time.sleep(120)  # killed meanwhile by the test
    return {"runs": n}
'''
FLAKY_IO = ([Input("key", "string"), Input("fail_times", "number")], [Output("runs", "number")])


def _dates(item: dict) -> tuple[datetime, datetime]:
    return tuple(datetime.fromisoformat(item[k].replace("Z", "+00:00"))
                 for k in ("start_date", "end_date"))


def sdk_of(server):
    from shipyard import CraftAiSdk

    creds = server.credentials
    return CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                      control_url=creds["control_url"])


def test_step_fields_are_stored_and_returned(sdk, api, tmp_path):
    folder = write_files(tmp_path, {"main.py": FLAKY})
    created = sdk.create_step("rt-fields", function_path="main.py", function_name="run",
                              container_config={"local_folder": str(folder)},
                              inputs=[Input("x", "number")], outputs=[Output("y", "number")],
                              max_retries=3, retry_delay_s=5)
    assert created["parameters"]["max_retries"] == 3
    assert created["parameters"]["retry_delay_s"] == 5
    got = api.request("GET", "/steps/rt-fields").json()
    assert (got["parameters"]["max_retries"], got["parameters"]["retry_delay_s"]) == (3, 5)
    # Left out: no retry, as before the fields existed.
    plain = create_step_http(api, "rt-plain", {"main.py": FLAKY})
    assert (plain["parameters"]["max_retries"], plain["parameters"]["retry_delay_s"]) == (0, 0)
    # A pipeline created from a function carries them to its step.
    sdk.create_pipeline("rt-fn", function_path="main.py", function_name="run",
                        container_config={"local_folder": str(folder)},
                        inputs=[Input("x", "number")], outputs=[Output("y", "number")],
                        max_retries=1, retry_delay_s=0)
    assert sdk.get_pipeline("rt-fn")["parameters"]["max_retries"] == 1


@pytest.mark.parametrize("fields, word", [
    ({"max_retries": "-1"}, "max_retries"),
    ({"max_retries": "11"}, "max_retries"),
    ({"max_retries": "1.5"}, "max_retries"),
    ({"max_retries": "two"}, "max_retries"),
    ({"retry_delay_s": "-5"}, "retry_delay_s"),
    ({"retry_delay_s": "3601"}, "retry_delay_s"),
    ({"retry_delay_s": "99999999999999999999999"}, "retry_delay_s"),
])
def test_bad_retry_values_are_400_in_forms(api, fields, word):
    body = assert_error(api.request("POST", "/steps", data={
        "step_name": "rt-bad", "function_path": "main.py", "function_name": "run", **fields},
        files={"step_file": ("step_file", b"not read")}), 400, "BadRequest")
    assert word in body["message"], body


@pytest.mark.parametrize("value", [-1, 11, 1.5, True, "x", [1], 10**30])
def test_bad_retry_values_are_400_in_json(api, value):
    for kind, name_field in (("steps", "step_name"), ("pipelines", "pipeline_name")):
        body = assert_error(api.request("POST", f"/{kind}", json={
            name_field: "rt-bad", "function_path": "main.py", "function_name": "run",
            "max_retries": value}), 400, "BadRequest")
        assert "max_retries" in body["message"], body


def test_sdk_refuses_a_non_integer_before_sending(sdk):
    with pytest.raises(ValueError, match="max_retries"):
        sdk.create_step("rt-float", function_path="main.py", function_name="run",
                        max_retries=1.5)


def _flaky_steps(sdk, folder, prefix: str, max_retries: int, delay_s: int) -> None:
    write_files(folder, {"steps.py": COUNTED})
    sdk.create_step(f"{prefix}first", function_path="steps.py", function_name="first",
                    container_config={"local_folder": str(folder)},
                    inputs=[Input("key", "string")], outputs=[Output("key", "string")])
    sdk.create_step(f"{prefix}flaky", function_path="steps.py", function_name="flaky",
                    container_config={"local_folder": str(folder)},
                    inputs=FLAKY_IO[0], outputs=FLAKY_IO[1],
                    max_retries=max_retries, retry_delay_s=delay_s)


def _wait_final(sdk, execution_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        execution = sdk.get_pipeline_execution(execution_id)
        if execution["status"] not in ("Pending", "Running"):
            return execution
        assert time.monotonic() < deadline, execution
        time.sleep(0.2)


def check_fails_twice_then_succeeds(sdk, folder, prefix: str) -> None:
    """A step of a graph fails twice and succeeds at its third attempt, 1 s then 2 s
    after the failures."""
    _flaky_steps(sdk, folder, prefix, max_retries=2, delay_s=1)
    sdk.create_pipeline(f"{prefix}chain", step_names=[f"{prefix}first", f"{prefix}flaky"],
                        connections=[(f"{prefix}first.key", f"{prefix}flaky.key")])
    run = sdk.run_pipeline(f"{prefix}chain", {"key": f"{prefix}twice", "fail_times": 2},
                           wait_for_completion=False)
    execution = _wait_final(sdk, run["execution_id"])
    assert execution["status"] == "Succeeded", execution["steps"]
    assert execution["outputs"][0]["value"] == 3
    flaky = execution["steps"][1]
    assert (flaky["name"], flaky["status"], flaky["attempt"], flaky["max_attempts"]) == (
        f"{prefix}flaky", "Succeeded", 3, 3)
    attempts = flaky["attempts"]
    assert [(a["number"], a["status"]) for a in attempts] == [
        (1, "Failed"), (2, "Failed"), (3, "Succeeded")]
    assert f"failure 1 of {prefix}twice" in attempts[0]["error"]
    assert f"failure 2 of {prefix}twice" in attempts[1]["error"]
    assert attempts[2]["error"] is None
    # The delay doubles from retry_delay_s: the recorded dates say so.
    (s1, e1), (s2, e2), (s3, _) = (_dates(a) for a in attempts)
    assert (s2 - e1).total_seconds() >= 1 and (s3 - e2).total_seconds() >= 2, attempts
    assert (s2 - s1).total_seconds() >= 1 and (s3 - s2).total_seconds() >= 2
    assert execution["steps"][0]["attempts"] == [{**execution["steps"][0]["attempts"][0],
                                                  "number": 1, "status": "Succeeded"}]
    # Each attempt's log lines carry its number; the SDK keeps one step's lines.
    lines = sdk.get_pipeline_execution_logs(execution_id=run["execution_id"],
                                            step_name=f"{prefix}flaky")
    said = [(line["attempt"], line["message"]) for line in lines if "run " in line["message"]]
    assert said == [(n, f"run {n} of {prefix}twice") for n in (1, 2, 3)], lines
    assert any(line["attempt"] == 1 and "failure 1" in line["message"] for line in lines)


def check_fails_three_times(sdk, folder, prefix: str) -> None:
    """A single-step pipeline whose step fails at each of its 3 attempts fails, naming it."""
    sdk.create_pipeline(f"{prefix}alone", step_name=f"{prefix}flaky")
    run = sdk.run_pipeline(f"{prefix}alone", {"key": f"{prefix}thrice", "fail_times": 5},
                           wait_for_completion=False)
    execution = _wait_final(sdk, run["execution_id"])
    assert execution["status"] == "Failed"
    [step] = execution["steps"]
    assert [(a["number"], a["status"]) for a in step["attempts"]] == [
        (1, "Failed"), (2, "Failed"), (3, "Failed")]
    assert f"Step '{prefix}flaky' failed after 3 attempts" in execution["error"]
    assert f"failure 3 of {prefix}thrice" in execution["error"]


def test_retries_on_the_embedded_backend(sdk, tmp_path):
    check_fails_twice_then_succeeds(sdk, tmp_path, "rl-")
    check_fails_three_times(sdk, tmp_path, "rl-")


def _markers(sdk, key: str) -> int:
    return sum(o["path"].startswith(f"runs/{key}/") for o in sdk.list_data_store_objects())


def test_a_resident_runner_killed_during_a_call_is_a_failed_attempt(sdk, server, tmp_path):
    """Low-latency: the resident runner dies in the middle of a call (killed by its pid);
    that attempt fails, the retry goes to the restarted runner and succeeds."""
    import psutil

    from .test_low_latency import _runner_pids, _wait_up

    write_files(tmp_path, {"steps.py": COUNTED})
    sdk.create_pipeline("rt-hang", function_path="steps.py", function_name="hangs_first",
                        container_config={"local_folder": str(tmp_path)},
                        inputs=[Input("key", "string")], outputs=[Output("runs", "number")],
                        max_retries=1, retry_delay_s=1)
    sdk.create_deployment(execution_rule="endpoint", pipeline_name="rt-hang",
                          deployment_name="rt-hang-ll", mode="low_latency")
    dep = _wait_up(sdk, "rt-hang-ll")
    [pid] = _runner_pids("rt-hang-ll-", server.data_dir)
    triggered = sdk.trigger_endpoint("rt-hang-ll", dep["endpoint_token"],
                                     inputs={"key": "rt-ll"}, wait_for_results=False)
    deadline = time.monotonic() + 60
    while _markers(sdk, "rt-ll") < 1:  # the first call is under way
        assert time.monotonic() < deadline
        time.sleep(0.2)
    psutil.Process(pid).kill()
    execution = _wait_final(sdk, triggered["execution_id"])
    assert execution["status"] == "Succeeded", execution["steps"]
    assert execution["outputs"][0]["value"] == 2
    [step] = execution["steps"]
    assert [(a["number"], a["status"]) for a in step["attempts"]] == [
        (1, "Failed"), (2, "Succeeded")]
    assert "resident runner" in step["attempts"][0]["error"]
    [new_pid] = _runner_pids("rt-hang-ll-", server.data_dir)
    assert new_pid != pid


def test_kill9_while_a_retry_waits_fails_it_with_the_reason(tmp_path):
    """The server dies while a step waits for its retry: after the restart the attempt and
    the execution are Failed with the reason, nothing stays Pending."""
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        sdk = sdk_of(server)
        _flaky_steps(sdk, tmp_path / "code", "rk-", max_retries=2, delay_s=600)
        sdk.create_pipeline("rk-alone", step_name="rk-flaky")
        execution_id = sdk.run_pipeline("rk-alone", {"key": "rk", "fail_times": 5},
                                        wait_for_completion=False)["execution_id"]
        deadline = time.monotonic() + 60
        while True:
            [step] = sdk.get_pipeline_execution(execution_id)["steps"]
            if len(step["attempts"]) == 2:
                break
            assert time.monotonic() < deadline, step
            time.sleep(0.2)
        waiting = step["attempts"][1]
        assert waiting["status"] == "Pending" and waiting["retry_at"], step
        server.kill9()
        server = ServerProcess(data, port=server.port).start()
        body = Api(server).request("GET", f"/executions/{execution_id}").json()
        assert body["status"] == "Failed" and "server stopped" in body["error"]
        [step] = body["steps"]
        assert [(a["number"], a["status"]) for a in step["attempts"]] == [
            (1, "Failed"), (2, "Failed")]
        assert "waited for its retry" in step["attempts"][1]["error"]
        assert _markers(sdk_of(server), "rk") == 1  # the retry never ran
    finally:
        server.stop()



def test_retries_in_elastic_endpoint_and_periodic_deployments(sdk, tmp_path):
    """The deployments' executions retry too: an elastic endpoint call and a scheduled tick
    each get their result after one failed attempt."""
    from shipyard.io import InputSource, OutputDestination

    write_files(tmp_path, {"steps.py": COUNTED})
    sdk.create_pipeline("rt-dep", function_path="steps.py", function_name="flaky",
                        container_config={"local_folder": str(tmp_path)},
                        inputs=FLAKY_IO[0], outputs=FLAKY_IO[1], max_retries=1)
    endpoint = sdk.create_deployment("rt-dep", "rt-dep-ep", "endpoint")
    result = sdk.trigger_endpoint("rt-dep-ep", endpoint["endpoint_token"],
                                  {"key": "rt-ep", "fail_times": 1})
    assert result["outputs"] == {"runs": 2}
    [step] = sdk.get_pipeline_execution(result["execution_id"])["steps"]
    assert [a["status"] for a in step["attempts"]] == ["Failed", "Succeeded"]

    sdk.create_deployment("rt-dep", "rt-dep-cron", "periodic", schedule="* * * * *",
                          inputs_mapping=[
                              InputSource(pipeline_input_name="key", constant_value="rt-cron"),
                              InputSource(pipeline_input_name="fail_times", constant_value=1)],
                          outputs_mapping=[OutputDestination(pipeline_output_name="runs",
                                                             is_null=True)])
    deadline = time.monotonic() + 100
    ended = []
    while not ended:
        assert time.monotonic() < deadline, "no tick ended"
        time.sleep(1)
        ended = [e for e in sdk.list_pipeline_executions("rt-dep")
                 if e["deployment_name"] == "rt-dep-cron"
                 and e["status"] not in ("Pending", "Running")]
    sdk.delete_deployment("rt-dep-cron")
    assert ended[-1]["status"] == "Succeeded", ended
    [step] = ended[-1]["steps"]
    assert [a["status"] for a in step["attempts"]] == ["Failed", "Succeeded"]
