"""Issue 13 point 3: step code runs in a sandbox (bubblewrap, and `nobody` when the server is
root). A step that goes for the server's secrets finds nothing, elastic and resident alike,
while a normal step next to it (numpy from its venv, the data store through the SDK, files
in its working folder, /tmp) works."""

from __future__ import annotations

import os
import time

import pytest
import requests

from ..helpers import Api, ServerProcess, create_step_http, run_and_wait
from ..sandbox_tools import ensure_bwrap

ATTACK = '''
import os
import sys

def _read(path):
    try:
        with open(path, "rb") as f:
            return "READ %d bytes" % len(f.read())
    except OSError as exc:
        return "refused: %s" % type(exc).__name__

def _write(path):
    try:
        with open(path, "w") as f:
            f.write("pwned")
        return "WROTE"
    except OSError as exc:
        return "refused: %s" % type(exc).__name__

def run(targets):
    report = {name: _read(path) for name, path in targets["read"].items()}
    report.update({name: _write(path) for name, path in targets["write"].items()})
    try:
        report["list_data_dir"] = sorted(os.listdir(targets["data_dir"]))
    except OSError as exc:
        report["list_data_dir"] = "refused: %s" % type(exc).__name__
    report["uid"] = os.getuid()
    report["own_work_folder"] = _write("mine.txt")
    report["own_tmp"] = _write("/tmp/mine.txt")
    report["forked"] = "shipyard_runner.forkserver" in sys.modules
    return {"report": report}
'''
ATTACK_FIELDS = {"inputs[0][name]": "targets", "inputs[0][data_type]": "json",
                 "outputs[0][name]": "report", "outputs[0][data_type]": "json"}

NORMAL = '''
import numpy as np
from shipyard import CraftAiSdk

def run(n):
    values = np.arange(n, dtype=float)
    with open("values.txt", "w") as f:
        f.write(" ".join(str(v) for v in values))
    with open("/tmp/scratch.txt", "w") as f:
        f.write("scratch")
    sdk = CraftAiSdk()
    sdk.upload_data_store_object("values.txt", "sandbox/values.txt")
    sdk.download_data_store_object("sandbox/values.txt", "back.txt")
    return {"total": float(np.loadtxt("back.txt").sum())}
'''
NORMAL_FIELDS = {"inputs[0][name]": "n", "inputs[0][data_type]": "number",
                 "outputs[0][name]": "total", "outputs[0][data_type]": "number",
                 "container_config[requirements_path]": "requirements.txt"}


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    ensure_bwrap()
    data = tmp_path_factory.mktemp("sandboxed") / "data"
    # Another project's object in the local data store, as the server keeps it.
    other = data / "datastore" / "other-project" / "production"
    other.mkdir(parents=True)
    (other / "secret.csv").write_text("theirs")
    # Another step's code, where the server keeps it.
    other_step = data / "steps" / "999" / "code"
    other_step.mkdir(parents=True)
    (other_step / "main.py").write_text("API_KEY = 'theirs'\n")
    server = ServerProcess(data, env={"SHIPYARD_SANDBOX": "bwrap"}).start()
    yield server
    server.stop()


def _targets(data) -> dict:
    return {
        "data_dir": str(data),
        "read": {"signing_key": str(data / "secret.key"),
                 "encryption_key": str(data / "encryption.key"),
                 "database": str(data / "shipyard.db"),
                 "credentials": str(data / "credentials.json"),
                 "other_project_data": str(data / "datastore" / "other-project" / "production"
                                           / "secret.csv"),
                 "other_step_code": str(data / "steps" / "999" / "code" / "main.py")},
        "write": {"write_data_dir": str(data / "pwned.txt"),
                  "write_steps": str(data / "steps" / "pwned.txt"),
                  "write_system": "/etc/pwned.txt",
                  "write_repository": os.path.join(os.getcwd(), "pwned.txt")},
    }


def _assert_contained(report: dict, data) -> None:
    for name in ("signing_key", "encryption_key", "database", "credentials",
                 "other_project_data", "other_step_code", "write_data_dir", "write_steps", "write_system",
                 "write_repository"):
        assert report[name].startswith("refused"), (name, report)
    # Only the skeleton leading to the runner's own mounts: no key, database, data store.
    assert set(report["list_data_dir"]) <= {"envs", "steps", "work", "resident"}, report
    assert report["own_work_folder"] == "WROTE" and report["own_tmp"] == "WROTE", report
    if os.geteuid() == 0:
        assert report["uid"] == 65534, report  # `nobody`, not the server's root
    assert not (data / "pwned.txt").exists() and not (data / "steps" / "pwned.txt").exists()
    assert not os.path.exists("/etc/pwned.txt")
    assert not os.path.exists(os.path.join(os.getcwd(), "pwned.txt"))


def test_elastic_step_cannot_reach_the_servers_secrets(sandboxed):
    api = Api(sandboxed)
    data = sandboxed.data_dir
    assert (data / "secret.key").is_file() and (data / "encryption.key").is_file()
    body = create_step_http(api, "attacker", {"main.py": ATTACK}, kind="pipelines",
                            fields=ATTACK_FIELDS)
    assert body["creation_info"]["status"] == "ready", body
    # Started cold first, then forked by the environment's fork server (in the background
    # from the first execution on): contained both ways.
    starts = []
    while True not in starts:
        assert len(starts) < 50, "never forked"
        _, out = run_and_wait(api, "attacker", {"targets": _targets(data)})
        assert out.status_code == 200, out.text
        [report] = [o["value"] for o in out.json()["outputs"]]
        _assert_contained(report, data)
        starts.append(report["forked"])
    assert starts[0] is False

    body = create_step_http(api, "normal", {"main.py": NORMAL, "requirements.txt": "numpy\n"},
                            kind="pipelines", fields=NORMAL_FIELDS)
    assert body["creation_info"]["status"] == "ready", body
    _, out = run_and_wait(api, "normal", {"n": 5})
    assert out.status_code == 200, out.text
    assert [o["value"] for o in out.json()["outputs"]] == [10.0]


def test_resident_step_cannot_reach_the_servers_secrets(sandboxed):
    api = Api(sandboxed)
    data = sandboxed.data_dir
    create_step_http(api, "attacker-ll", {"main.py": ATTACK}, kind="pipelines",
                     fields=ATTACK_FIELDS)
    r = api.request("POST", "/endpoints", json={
        "pipeline_name": "attacker-ll", "name": "attacker-ll", "mode": "low_latency",
        "inputs_mapping": [{"pipeline_input_name": "targets", "endpoint_input_name": "targets"}]})
    assert r.status_code == 201, r.text
    token = r.json()["endpoint_token"]
    deadline = time.monotonic() + 120
    while api.request("GET", "/deployments/attacker-ll").json()["status"] != "up":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    answer = requests.post(f"{api.env_url}/endpoints/attacker-ll",
                           headers={"Authorization": f"EndpointToken {token}"},
                           json={"targets": _targets(data)}, timeout=60)
    assert answer.status_code == 200, answer.text
    _assert_contained(answer.json()["outputs"]["report"], data)


SLEEPER = "import time\ndef run():\n    print('started', flush=True)\n    time.sleep(300)\n"


def test_a_server_killed_hard_leaves_no_runner_behind(tmp_path):
    """Runners are started from one long-lived thread of the server (so that one started from
    a thread that ends soon after lives on: see tests/orchestrators, test_a_runner_outlives_
    the_thread_that_started_it); bubblewrap's parent-death signal still takes every runner,
    and the fork server, down with a server killed by SIGKILL (no stop hook runs)."""
    import psutil

    ensure_bwrap()
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_SANDBOX": "bwrap"}).start()
    try:
        api = Api(server)
        create_step_http(api, "sleeper", {"main.py": SLEEPER}, kind="pipelines")
        r = api.request("POST", "/pipelines/sleeper/run", data={"json_inputs": "{}"})
        assert r.status_code in (200, 201), r.text
        execution_id = r.json()["execution_id"]
        deadline = time.monotonic() + 60
        while api.request("GET", f"/executions/{execution_id}").json()["status"] != "Running":
            assert time.monotonic() < deadline, "the step never ran"
            time.sleep(0.1)
        gunicorn = psutil.Process(server.proc.pid)

        def runner_processes() -> dict:
            """{process: its command line} of the runners under the server."""
            found = {}
            for worker in gunicorn.children():
                for p in worker.children(recursive=True):
                    try:
                        command = " ".join(p.cmdline())
                    except psutil.Error:  # ended meanwhile
                        continue
                    if "shipyard_runner" in command:
                        found[p] = command
            return found

        # The execution's runner, and the fork server its start asked for.
        while not any("forkserver" in c for c in runner_processes().values()):
            assert time.monotonic() < deadline, "no fork server was started"
            time.sleep(0.05)
        found = runner_processes()
        assert any(" run " in c for c in found.values()), "no runner under the server"
        runners = list(found)
        server.kill9()
        gone, alive = psutil.wait_procs(runners, timeout=15)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]
    finally:
        server.stop()


def test_sandbox_off_is_a_setting(tmp_path):
    """SHIPYARD_SANDBOX=off runs step code as the server's user (documented); the same
    step then reads the signing key: what the sandbox prevents above."""
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_SANDBOX": "off"}).start()
    try:
        api = Api(server)
        create_step_http(api, "reader", {"main.py": ATTACK}, kind="pipelines",
                         fields=ATTACK_FIELDS)
        targets = dict(_targets(server.data_dir), write={})
        _, out = run_and_wait(api, "reader", {"targets": targets})
        [report] = [o["value"] for o in out.json()["outputs"]]
        assert report["signing_key"].startswith("READ"), report
    finally:
        server.stop()



SIZE = "import os\n\ndef run(f):\n    return {'n': os.path.getsize(f['path'])}\n"


def test_resident_runner_gets_file_inputs_it_cannot_read_on_disk(sandboxed):
    """File inputs are kept in the data folder, which a sandboxed resident runner cannot
    see: they reach it as signed URLs it downloads into its own folder."""
    api = Api(sandboxed)
    create_step_http(api, "sizer", {"main.py": SIZE}, kind="pipelines", fields={
        "inputs[0][name]": "f", "inputs[0][data_type]": "file",
        "outputs[0][name]": "n", "outputs[0][data_type]": "number"})
    r = api.request("POST", "/endpoints", json={
        "pipeline_name": "sizer", "name": "sizer-ll", "mode": "low_latency",
        "inputs_mapping": [{"pipeline_input_name": "f", "endpoint_input_name": "f"}]})
    assert r.status_code == 201, r.text
    token = r.json()["endpoint_token"]
    deadline = time.monotonic() + 120
    while api.request("GET", "/deployments/sizer-ll").json()["status"] != "up":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    answer = requests.post(f"{api.env_url}/endpoints/sizer-ll",
                           headers={"Authorization": f"EndpointToken {token}"},
                           files={"f": ("blob.bin", b"z" * 12345)}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"] == {"n": 12345}
