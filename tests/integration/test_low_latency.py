"""F13/F14: resident runners (preloading, globals, logs, health, reload, crash recovery) and
parallel executions, through our SDK and plain HTTP."""

from __future__ import annotations

import os
import threading
import time

import psutil
import requests

from ..helpers import Api, ServerProcess, create_step_http

COUNTER = '''
import os, time
# Code run at the low latency deployment creation
count = 0
loaded_data = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]

print("Init count at : " + str(count))

def my_step_source_code():
    global loaded_data, count
    count += 1
    print(count, loaded_data)
    return {"count": count, "pid": os.getpid()}
'''
COUNTER_FIELDS = {"outputs[0][name]": "count", "outputs[0][data_type]": "number",
                  "outputs[1][name]": "pid", "outputs[1][data_type]": "number"}

SLEEPY = '''
import threading, time, asyncio
lock = threading.Lock()
running = 0

def my_fct(tag):
    global running
    with lock:
        running += 1
        seen = running
    print("start", tag)
    time.sleep(1)
    with lock:
        running -= 1
    return {"seen": seen}
'''
ASYNC_SLEEPY = '''
import asyncio
running = 0

async def my_fct(tag):
    global running
    running += 1
    seen = running
    print("start", tag)
    await asyncio.sleep(1)
    running -= 1
    return {"seen": seen}
'''
SLEEPY_FIELDS = {"inputs[0][name]": "tag", "inputs[0][data_type]": "number",
                 "outputs[0][name]": "seen", "outputs[0][data_type]": "number"}


def _wait_up(sdk, name: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dep = sdk.get_deployment(name)
        if dep["status"] == "up":
            return dep
        time.sleep(0.2)
    raise AssertionError(dep)


def _runner_pids(pod_prefix: str, data_dir) -> list[int]:
    """Resident runners of one server (others may run on this machine at the same time)."""
    pids = []
    for proc in psutil.process_iter(["cmdline", "environ", "cwd", "name"]):
        if proc.info["name"] == "bwrap":  # the sandbox around the runner, not the runner
            continue
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            env = proc.info["environ"] or {}
            cwd = proc.info["cwd"] or ""
        except psutil.Error:
            continue
        if ("shipyard_runner serve" in cmd and cwd.startswith(str(data_dir))
                and env.get("SHIPYARD_POD_ID", "").startswith(pod_prefix)):
            pids.append(proc.pid)
    return pids


def test_preloaded_module_globals_and_logs(api, sdk):
    create_step_http(api, "counter", {"src/counter.py": COUNTER}, kind="pipelines",
                     function_path="src/counter.py", function_name="my_step_source_code",
                     fields=COUNTER_FIELDS)
    sdk.create_deployment(execution_rule="endpoint", pipeline_name="counter",
                          deployment_name="counter-ll", mode="low_latency")
    dep = _wait_up(sdk, "counter-ll")
    assert dep["deployment_health"] == "Ready"
    assert dep["pods"] == [{"pod_id": "counter-ll-0", "status": "Running"}]
    assert dep["max_parallel_executions_per_pod"] == 6
    token = dep["endpoint_token"]
    first = sdk.trigger_endpoint("counter-ll", token)
    second = sdk.trigger_endpoint("counter-ll", token)
    assert first["outputs"]["count"] == 1 and second["outputs"]["count"] == 2
    assert first["outputs"]["pid"] == second["outputs"]["pid"]  # the same resident process
    deadline = time.monotonic() + 15  # logs are shipped in batches, asynchronously
    while True:
        messages = [log["message"] for log in sdk.get_deployment_logs("counter-ll")]
        if "Init count at : 0" in messages or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "Init count at : 0" in messages
    assert any("imported successfully" in m for m in messages)
    logs = sdk.get_pipeline_execution_logs(execution_id=second["execution_id"])
    assert [entry["message"] for entry in logs] == ["2 [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]"]
    # update_deployment with nothing to change reloads the runner: globals start over.
    sdk.update_deployment("counter-ll")
    _wait_up(sdk, "counter-ll")
    assert sdk.trigger_endpoint("counter-ll", token)["outputs"]["count"] == 1


def test_killed_runner_comes_back_and_inflight_fails(api, sdk, server):
    code = COUNTER + "\ndef slow():\n    time.sleep(30)\n"
    create_step_http(api, "crashy", {"src/counter.py": code}, kind="pipelines",
                     function_path="src/counter.py", function_name="slow")
    sdk.create_deployment(execution_rule="endpoint", pipeline_name="crashy",
                          deployment_name="crashy-ll", mode="low_latency")
    dep = _wait_up(sdk, "crashy-ll")
    triggered = sdk.trigger_endpoint("crashy-ll", dep["endpoint_token"], wait_for_results=False)
    execution_id = triggered["execution_id"]
    deadline = time.monotonic() + 30
    while sdk.get_pipeline_execution(execution_id)["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    [pid] = _runner_pids("crashy-ll-", server.data_dir)
    psutil.Process(pid).kill()
    deadline = time.monotonic() + 30
    while True:
        execution = sdk.get_pipeline_execution(execution_id)
        if execution["status"] == "Failed":
            break
        assert time.monotonic() < deadline, execution
        time.sleep(0.1)
    assert "resident runner" in api.request("GET", f"/executions/{execution_id}").json()["error"]
    # The call's own connection sees the runner die at once, maybe before its supervisor
    # does: wait for the replacement runner, then for the deployment to be up on it.
    deadline = time.monotonic() + 60
    while _runner_pids("crashy-ll-", server.data_dir) in ([], [pid]):
        assert time.monotonic() < deadline, "the killed runner was not replaced"
        time.sleep(0.1)
    [new_pid] = _runner_pids("crashy-ll-", server.data_dir)
    dep = _wait_up(sdk, "crashy-ll")
    assert any("exited" in log["message"] for log in sdk.get_deployment_logs("crashy-ll"))

    # A plain HTTP caller, whose call the server carries in the caller's own request: the
    # runner dies, the answer is the failure at once, in the error shape.
    answer: dict = {}

    def call() -> None:
        answer["r"] = requests.post(f"{api.env_url}/endpoints/crashy-ll", json={}, timeout=60,
                                    headers={"Authorization": f"EndpointToken {dep['endpoint_token']}"})

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 30
    while not [e for e in api.request("GET", "/pipelines/crashy/executions").json()
               if e["status"] == "Running"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    psutil.Process(new_pid).kill()
    caller.join(60)
    r = answer["r"]
    assert r.status_code == 500, r.text
    assert "resident runner" in r.json()["message"] and r.json()["name"]
    _wait_up(sdk, "crashy-ll")


def _parallel(api, sdk, name: str, code: str) -> tuple[list[int], float]:
    create_step_http(api, name, {"code_step.py": code}, kind="pipelines",
                     function_path="code_step.py", function_name="my_fct", fields=SLEEPY_FIELDS)
    sdk.create_deployment(execution_rule="endpoint", pipeline_name=name,
                          deployment_name=f"{name}-ll", mode="low_latency",
                          enable_parallel_executions=True, max_parallel_executions_per_pod=5)
    dep = _wait_up(sdk, f"{name}-ll")
    token = dep["endpoint_token"]
    results: list = []
    errors: list = []

    def call(i: int) -> None:
        try:
            r = requests.post(f"{api.env_url}/endpoints/{name}-ll",
                              headers={"Authorization": f"EndpointToken {token}"},
                              json={"tag": i}, timeout=60, allow_redirects=False)
            execution_id = r.json()["execution_id"]
            res = requests.get(f"{api.env_url}/endpoints/{name}-ll/executions/{execution_id}",
                               params={"token": token}, timeout=120)
            results.append(res.json()["outputs"]["seen"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    start = time.monotonic()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - start
    assert not errors, errors
    return results, elapsed


def test_parallel_threads_limited_to_max(api, sdk):
    seen, elapsed = _parallel(api, sdk, "par-def", SLEEPY)
    assert len(seen) == 20
    assert max(seen) == 5  # never more than max_parallel_executions_per_pod at once
    assert elapsed >= 4.0  # 20 one-second calls, 5 at a time, cannot take less
    print(f"20 x 1 s with max 5 (threads): {elapsed:.2f} s")


def test_parallel_async_limited_to_max(api, sdk):
    seen, elapsed = _parallel(api, sdk, "par-async", ASYNC_SLEEPY)
    assert len(seen) == 20 and max(seen) == 5
    assert elapsed >= 4.0
    print(f"20 x 1 s with max 5 (asyncio): {elapsed:.2f} s")


def test_resident_runners_come_back_after_restart(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        api = Api(server)
        create_step_http(api, "counter", {"src/counter.py": COUNTER}, kind="pipelines",
                         function_path="src/counter.py", function_name="my_step_source_code",
                         fields=COUNTER_FIELDS)
        r = api.request("POST", "/endpoints", json={"pipeline_name": "counter", "name": "c-ll",
                                                    "mode": "low_latency"})
        assert r.status_code == 201
        token = r.json()["endpoint_token"]
        deadline = time.monotonic() + 120
        while api.request("GET", "/deployments/c-ll?wait_for_completion=true").json()["status"] != "up":
            assert time.monotonic() < deadline
        server.kill9()
        server = ServerProcess(data, port=server.port).start()
        api = Api(server)
        deadline = time.monotonic() + 120
        while api.request("GET", "/deployments/c-ll?wait_for_completion=true").json()["status"] != "up":
            assert time.monotonic() < deadline
        assert len(_runner_pids("c-ll-", data)) == 1  # the orphan was replaced, not duplicated
        r = requests.post(f"{api.env_url}/endpoints/c-ll",
                          headers={"Authorization": f"EndpointToken {token}"}, json={}, timeout=30)
        assert r.status_code == 200 and r.json()["outputs"]["count"] == 1
        # A second deployment, then a clean stop: every resident runner ends with the server
        # (stopped together, within the server's own stop timeout), none is left behind.
        r = api.request("POST", "/endpoints", json={"pipeline_name": "counter", "name": "d-ll",
                                                    "mode": "low_latency"})
        assert r.status_code == 201
        while api.request("GET", "/deployments/d-ll?wait_for_completion=true").json()["status"] != "up":
            assert time.monotonic() < deadline
        assert server.stop() == 0
        assert _runner_pids("c-ll-", data) == [] and _runner_pids("d-ll-", data) == []
    finally:
        server.stop()


def test_plain_http_call_longer_than_the_hold(tmp_path):
    """A plain HTTP caller is held while its low-latency call runs, up to the hold
    (SHIPYARD_LONG_POLL_S): past it, a 303 to the results, and the call goes on in the
    background and is recorded. Short calls on the same runner still answer in the POST.
    The data folder's path is long: the runner's Unix socket (at most ~107 bytes of path)
    goes to a short private folder instead."""
    data = tmp_path / ("long-folder-name-" * 5) / "data"
    server = ServerProcess(data, env={"SHIPYARD_LONG_POLL_S": "1"}).start()
    try:
        api = Api(server)
        code = ("import time\n"
                "def my_fct(tag):\n"
                "    time.sleep(tag)\n"
                "    return {'seen': tag}\n")
        create_step_http(api, "napper", {"nap.py": code}, kind="pipelines", function_path="nap.py",
                         function_name="my_fct", fields=SLEEPY_FIELDS)
        r = api.request("POST", "/endpoints", json={"pipeline_name": "napper", "name": "nap-ll",
                                                    "mode": "low_latency"})
        assert r.status_code == 201
        headers = {"Authorization": f"EndpointToken {r.json()['endpoint_token']}"}
        deadline = time.monotonic() + 120
        while api.request("GET", "/deployments/nap-ll?wait_for_completion=true").json()["status"] != "up":
            assert time.monotonic() < deadline
        url = f"{api.env_url}/endpoints/nap-ll"
        long_call = requests.post(url, json={"tag": 2.5}, headers=headers, timeout=30,
                                  allow_redirects=False)
        assert long_call.status_code == 303
        execution_id = long_call.json()["execution_id"]
        assert long_call.headers["Craft-Ai-Execution-Id"] == execution_id
        results = requests.get(long_call.headers["Location"], timeout=30)
        while results.status_code == 307:  # still running after the results hold
            results = requests.get(long_call.headers["Location"], timeout=30)
        assert results.status_code == 200 and results.json()["outputs"] == {"seen": 2.5}
        short_call = requests.post(url, json={"tag": 0}, headers=headers, timeout=30,
                                   allow_redirects=False)
        assert short_call.status_code == 200 and short_call.json()["outputs"] == {"seen": 0}
        executions = api.request("GET", "/pipelines/napper/executions").json()
        assert sorted(e["status"] for e in executions) == ["Succeeded", "Succeeded"]
        [pid] = _runner_pids("nap-ll-", data)
        socket_arg = psutil.Process(pid).cmdline()
        socket_path = socket_arg[socket_arg.index("--socket") + 1]
        assert len(socket_path) < 100 and not socket_path.startswith(str(data))
        assert server.stop() == 0
        assert not os.path.exists(socket_path)  # removed with the deployment's runners
    finally:
        server.stop()


def test_a_changed_environment_variable_reaches_the_next_call(api, sdk):
    """Calls hand the environment's variables to the runner from a short per-app cache;
    a change through the API or the UI forgets it, so the very next call sees the new
    value (and a deleted variable is gone)."""
    code = "import os\ndef my_fct():\n    return {'v': os.environ.get('LL_VAR', '<unset>')}\n"
    create_step_http(api, "envreader", {"env.py": code}, kind="pipelines", function_path="env.py",
                     function_name="my_fct",
                     fields={"outputs[0][name]": "v", "outputs[0][data_type]": "string"})
    r = api.request("POST", "/endpoints", json={"pipeline_name": "envreader", "name": "env-ll",
                                                "mode": "low_latency"})
    assert r.status_code == 201, r.text
    token = r.json()["endpoint_token"]
    _wait_up(sdk, "env-ll")

    def call() -> str:
        answer = requests.post(f"{api.env_url}/endpoints/env-ll", json={}, timeout=30,
                               headers={"Authorization": f"EndpointToken {token}"})
        assert answer.status_code == 200, answer.text
        return answer.json()["outputs"]["v"]

    seen = [call()]
    for value in ("one", "two"):
        api.request("PUT", "/environment-variables", json={"environment_variables": {"LL_VAR": value}})
        seen.append(call())
    api.request("DELETE", "/environment-variables/LL_VAR")
    seen.append(call())
    assert seen == ["<unset>", "one", "two", "<unset>"]


REACHES_THE_API = '''
from shipyard import CraftAiSdk

def run(x):
    CraftAiSdk().record_metric_value("x", x)
    print("recorded", x)
    open("r.txt", "w").write("got %s" % x)
    return {"result": {"path": "r.txt"}}
'''


def test_a_plain_http_call_that_reaches_the_api_during_the_call(api, sdk):
    """A plain HTTP caller's execution is written once, ended, after the runner answers
    (domain/deferred.py). During the call the step's SDK records a metric (an execution
    token exchanged for an access token) and the runner uploads a file output (a runner
    callback): each needs the row, which is then written first, and the call still records
    all of it."""
    create_step_http(api, "reacher", {"main.py": REACHES_THE_API}, kind="pipelines",
                     function_name="run",
                     fields={"inputs[0][name]": "x", "inputs[0][data_type]": "number",
                             "outputs[0][name]": "result", "outputs[0][data_type]": "file"})
    sdk.create_deployment(execution_rule="endpoint", pipeline_name="reacher",
                          deployment_name="reacher-ll", mode="low_latency")
    dep = _wait_up(sdk, "reacher-ll")
    headers = {"Authorization": f"EndpointToken {dep['endpoint_token']}"}
    for x in (3, 4):
        r = requests.post(f"{api.env_url}/endpoints/reacher-ll", json={"x": x}, headers=headers,
                          timeout=60)
        assert r.status_code == 200 and r.content == f"got {x}".encode(), r.text
        execution_id = r.headers["Craft-Ai-Execution-Id"]
        body = api.request("GET", f"/executions/{execution_id}").json()
        assert body["status"] == "Succeeded" and body["end_date"], body
        assert [(m["name"], m["value"]) for m in sdk.get_metrics(execution_id=execution_id)] == [
            ("x", x)]
        [logs] = api.request("POST", f"/executions/{execution_id}/logs", json={}).json()
        assert [line["message"] for line in logs] == [f"recorded {x}"]


ENV_SEER = '''
import os, subprocess
NAMES = ("SHIPYARD_EXECUTION_ID", "CRAFT_AI_EXECUTION_ID", "SHIPYARD_SDK_TOKEN")

def my_fct(spawn):
    shell = subprocess.run(["sh", "-c", 'printf "%s %s %s" "$SHIPYARD_EXECUTION_ID" '
                            '"$CRAFT_AI_EXECUTION_ID" "$SHIPYARD_SDK_TOKEN"'],
                           capture_output=True, text=True, check=True).stdout if spawn else ""
    return {"python": " ".join(os.environ.get(n, "") for n in NAMES), "shell": shell}
'''


def test_each_call_s_id_and_token_reach_subprocesses_and_are_not_kept(api, sdk, server):
    """A resident runner gives each call its own execution id and token, seen by os.environ
    and by a subprocess the step starts (the C environment), without the runner keeping
    memory for each (glibc's setenv() would keep every value: ~550 B per call)."""
    create_step_http(api, "envseer", {"seer.py": ENV_SEER}, kind="pipelines",
                     function_path="seer.py", function_name="my_fct",
                     fields={"inputs[0][name]": "spawn", "inputs[0][data_type]": "boolean",
                             "outputs[0][name]": "python", "outputs[0][data_type]": "string",
                             "outputs[1][name]": "shell", "outputs[1][data_type]": "string"})
    r = api.request("POST", "/endpoints", json={"pipeline_name": "envseer", "name": "seer-ll",
                                                "mode": "low_latency"})
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"EndpointToken {r.json()['endpoint_token']}"}
    _wait_up(sdk, "seer-ll")
    session = requests.Session()

    def call(spawn: bool = True) -> tuple[str, dict]:
        answer = session.post(f"{api.env_url}/endpoints/seer-ll", json={"spawn": spawn},
                              timeout=30, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.headers["Craft-Ai-Execution-Id"], answer.json()["outputs"]

    tokens = set()
    for _ in range(3):
        execution_id, outputs = call()
        assert outputs["python"] == outputs["shell"]
        seen_id, seen_id_too, token = outputs["shell"].split(" ")
        assert seen_id == seen_id_too == execution_id and token
        tokens.add(token)
    assert len(tokens) == 3
    [pid] = _runner_pids("seer-ll-", server.data_dir)
    runner = psutil.Process(pid)
    # Measured without a subprocess per call: the runner's own memory, not fork's.
    for _ in range(200):
        call(spawn=False)
    before = runner.memory_info().rss
    for _ in range(2_000):
        call(spawn=False)
    per_call = (runner.memory_info().rss - before) / 2_000
    assert per_call < 250, "the resident runner kept %.0f B per call" % per_call
