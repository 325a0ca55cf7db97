"""Elastic executions forked by the step environment's fork server (issue 16): each one
still runs in a fresh process that never ran another execution's code. Module state,
environment variables and the working folder never leak from one execution to the next,
nor does the server's own environment; the fork server runs in the sandbox when there is
one. With SHIPYARD_FORK_SERVER=false runners start cold, as before."""

from __future__ import annotations

import json

import pytest

from ..helpers import Api, ServerProcess, create_step_http, run_and_wait

STEP = '''
import json
import os
import sys

CALLS = []


def run(tag):
    CALLS.append(tag)
    seen = {
        "calls_in_module": len(CALLS),
        "env_mark": os.environ.get("LEAKED_MARK"),
        "server_secret": os.environ.get("SERVER_ONLY_SECRET"),
        "stdlib_mark": getattr(json, "LEAKED_MARK", None),
        "files": sorted(os.listdir(".")),
        "cwd": os.getcwd(),
        "forked": "shipyard_runner.forkserver" in sys.modules,
        "pid": os.getpid(),
    }
    # Leave traces behind: the next execution must see none of them.
    os.environ["LEAKED_MARK"] = tag
    json.LEAKED_MARK = tag
    with open("leftover-" + tag, "w") as f:
        f.write(tag)
    return {"seen": seen}
'''


@pytest.fixture(params=["fork-server", "cold"])
def server(request, tmp_path):
    env = {"SERVER_ONLY_SECRET": "do-not-leak",
           "SHIPYARD_FORK_SERVER": "true" if request.param == "fork-server" else "false"}
    server = ServerProcess(tmp_path / "data", env=env).start()
    yield request.param, server
    server.stop()


def test_executions_never_see_each_others_state(server):
    mode, server = server
    api = Api(server)
    create_step_http(api, "isolated", {"main.py": STEP}, kind="pipelines", fields={
        "inputs[0][name]": "tag", "inputs[0][data_type]": "string",
        "outputs[0][name]": "seen", "outputs[0][data_type]": "json"})
    seen = []
    for tag in ("first", "second", "third"):
        _, out = run_and_wait(api, "isolated", {"tag": tag})
        assert out.status_code == 200, out.text
        outputs = {o["pipeline_output_name"]: o["value"] for o in out.json()["outputs"]}
        seen.append(outputs["seen"])
    for item in seen:
        assert item["calls_in_module"] == 1, item  # the step's module is fresh each time
        assert item["env_mark"] is None, item
        assert item["stdlib_mark"] is None, item  # even modules the parent imported
        assert item["server_secret"] is None, item
        assert not [f for f in item["files"] if f.startswith("leftover-")], item
        assert item["forked"] == (mode == "fork-server"), item
    if mode == "fork-server":  # one sandbox, one pid namespace: a new process each time
        assert len({item["pid"] for item in seen}) == 3
    assert len({item["cwd"] for item in seen}) == 3


def test_a_failing_step_and_a_deleted_execution_under_the_fork_server(tmp_path):
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_FORK_SERVER": "true"}).start()
    try:
        api = Api(server)
        create_step_http(api, "crashes", {"main.py": (
            "import os, time\n"
            "def run(how):\n"
            "    if how == 'exit':\n"
            "        os._exit(7)\n"
            "    if how == 'sleep':\n"
            "        time.sleep(60)\n"
            "    raise ValueError('boom ' + how)\n")}, kind="pipelines", fields={
            "inputs[0][name]": "how", "inputs[0][data_type]": "string"})
        _, out = run_and_wait(api, "crashes", {"how": "raise"})
        assert out.status_code >= 400 and "boom raise" in out.text, out.text
        execution_id, out = run_and_wait(api, "crashes", {"how": "exit"})
        assert out.status_code >= 400, out.text
        state = api.request("GET", f"/executions/{execution_id}").json()
        assert state["status"] == "Failed", state
        # A running one, deleted: its process is killed and the next run still works.
        r = api.request("POST", "/pipelines/crashes/run",
                        data={"json_inputs": json.dumps({"how": "sleep"})})
        assert r.status_code == 200, r.text
        sleeper = r.json()["execution_id"]
        assert api.request("DELETE", f"/executions/{sleeper}").status_code == 200
        _, out = run_and_wait(api, "crashes", {"how": "raise"})
        assert "boom raise" in out.text
    finally:
        server.stop()
