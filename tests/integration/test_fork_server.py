"""Elastic executions forked by the step environment's fork server (issue 16, by default):
each one still runs in a fresh process that never ran another execution's code, in a
sandbox of its own inside the fork server's. Module state, environment variables, the
working folder and /tmp never leak from one execution to the next, nor does the server's
own environment; two executions of one step running at the same time cannot see each
other's work folder or /tmp; a stopped server leaves no fork server behind. With
SHIPYARD_FORK_SERVERS=0 runners start cold, as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
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
        "tmp": sorted(os.listdir("/tmp")),
    }
    # Leave traces behind: the next execution must see none of them.
    os.environ["LEAKED_MARK"] = tag
    json.LEAKED_MARK = tag
    with open("leftover-" + tag, "w") as f:
        f.write(tag)
    with open("/tmp/leftover-" + tag, "w") as f:
        f.write(tag)
    return {"seen": seen}
'''
SEEN_FIELDS = {"inputs[0][name]": "tag", "inputs[0][data_type]": "string",
               "outputs[0][name]": "seen", "outputs[0][data_type]": "json"}


def _runner_processes(server: ServerProcess, kind: str = "") -> list[psutil.Process]:
    """The server's runner processes (`kind` "forkserver": the fork servers only)."""
    found = []
    for proc in psutil.Process(server.proc.pid).children(recursive=True):
        try:
            argv = proc.cmdline()
        except psutil.Error:
            continue
        if "shipyard_runner" in argv and (not kind or kind in argv):
            found.append(proc)
    return found


def _until_forked(api: Api, pipeline: str, inputs: dict) -> None:
    """Run until an execution is forked: the first of an environment starts cold and asks
    for a fork server, which starts in the background."""
    for _ in range(50):
        _, out = run_and_wait(api, pipeline, inputs)
        assert out.status_code == 200, out.text
        if out.json()["outputs"][0]["value"]["forked"]:
            return
        time.sleep(0.2)
    raise AssertionError("no execution was forked")


def _outputs_when_done(api: Api, execution_id: str):
    """The outputs of an execution started earlier, once it has succeeded."""
    deadline = time.monotonic() + 120
    while True:
        out = api.request("GET", f"/executions/{execution_id}/outputs?wait_for_completion=true")
        if out.status_code != 307:
            break
        assert time.monotonic() < deadline, "execution did not finish"
    assert out.status_code == 200, out.text
    return out


@pytest.fixture(params=["fork-server", "cold"])
def server(request, tmp_path):
    env = {"SERVER_ONLY_SECRET": "do-not-leak"}
    if request.param == "cold":
        env["SHIPYARD_FORK_SERVERS"] = "0"
    server = ServerProcess(tmp_path / "data", env=env).start()
    yield request.param, server
    server.stop()


def test_executions_never_see_each_others_state(server):
    mode, server = server
    api = Api(server)
    create_step_http(api, "isolated", {"main.py": STEP}, kind="pipelines", fields=SEEN_FIELDS)
    if mode == "fork-server":
        _until_forked(api, "isolated", {"tag": "warm-up"})
    seen = []
    for tag in ("first", "second", "third"):
        _, out = run_and_wait(api, "isolated", {"tag": tag})
        assert out.status_code == 200, out.text
        outputs = {o["pipeline_output_name"]: o["value"] for o in out.json()["outputs"]}
        seen.append(outputs["seen"])
    for item in seen:
        assert item["calls_in_module"] == 1, item  # the step's module is fresh each time
        assert item["env_mark"] is None, item
        assert item["stdlib_mark"] is None, item  # even modules the fork server imported
        assert item["server_secret"] is None, item
        assert not [f for f in item["files"] if f.startswith("leftover-")], item
        assert not [f for f in item["tmp"] if f.startswith("leftover-")], item
        assert item["forked"] == (mode == "fork-server"), item
    if mode == "fork-server":  # pid 1 of a pid namespace of its own, each time
        assert [item["pid"] for item in seen] == [1, 1, 1], seen
    assert len({item["cwd"] for item in seen}) == 3
    if mode == "cold":
        assert not _runner_processes(server, "forkserver")


# What the rendezvous steps below share: a data-store object awaited (bounded), and an
# attempt whose refusal is the expected answer.
STEP_HELPERS = '''
import time


def _fetch(sdk, key, local):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            sdk.download_data_store_object(key, local)
            return True
        except Exception:
            time.sleep(0.1)
    return False


def _try(action):
    try:
        return action()
    except OSError as exc:
        return "refused: %s" % type(exc).__name__
'''

RENDEZVOUS = STEP_HELPERS + '''
import json
import os
import sys
import time

from shipyard import CraftAiSdk


def run(role, key):
    if role == "warm-up":
        return {"report": {"forked": "shipyard_runner.forkserver" in sys.modules}}
    sdk = CraftAiSdk()
    with open("secret-" + role, "w") as f:
        f.write(role)
    with open("/tmp/secret-" + role, "w") as f:
        f.write(role)
    me = {"cwd": os.getcwd(), "forked": "shipyard_runner.forkserver" in sys.modules}
    if role == "first":
        # Tell the second where this execution works, and stay running until it has looked.
        with open("me.json", "w") as f:
            json.dump(me, f)
        sdk.upload_data_store_object("me.json", key + "/first.json")
        return {"report": dict(me, waited=_fetch(sdk, key + "/second-done", "done.txt"))}
    assert _fetch(sdk, key + "/first.json", "first.json")
    with open("first.json") as f:
        other = json.load(f)["cwd"]
    report = dict(me, other=other,
                  other_listing=_try(lambda: sorted(os.listdir(other))),
                  other_secret=_try(lambda: open(os.path.join(other, "secret-first")).read()),
                  work_root=_try(lambda: sorted(os.listdir(os.path.dirname(os.getcwd())))),
                  other_tmp_secret=_try(lambda: open("/tmp/secret-first").read()),
                  tmp=sorted(os.listdir("/tmp")))
    with open("done.txt", "w") as f:
        f.write("done")
    sdk.upload_data_store_object("done.txt", key + "/second-done")
    return {"report": report}
'''


def test_concurrent_executions_of_one_step_cannot_see_each_other(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        api = Api(server)
        create_step_http(api, "pair", {"main.py": RENDEZVOUS}, kind="pipelines", fields={
            "inputs[0][name]": "role", "inputs[0][data_type]": "string",
            "inputs[1][name]": "key", "inputs[1][data_type]": "string",
            "outputs[0][name]": "report", "outputs[0][data_type]": "json"})
        _until_forked(api, "pair", {"role": "warm-up", "key": "none"})
        ids = {}
        for role in ("first", "second"):
            r = api.request("POST", "/pipelines/pair/run", data={
                "json_inputs": json.dumps({"role": role, "key": "rendezvous"})})
            assert r.status_code == 200, r.text
            ids[role] = r.json()["execution_id"]
        reports = {}
        for role, execution_id in ids.items():
            out = _outputs_when_done(api, execution_id)
            reports[role] = out.json()["outputs"][0]["value"]
        first, second = reports["first"], reports["second"]
        assert first["waited"], first  # the first was still running when the second looked
        assert first["forked"] and second["forked"], reports  # by the same fork server
        assert second["other"] == first["cwd"] != second["cwd"], reports
        assert second["other_listing"].startswith("refused"), second
        assert second["other_secret"].startswith("refused"), second
        assert second["work_root"] == [second["cwd"].rsplit("/", 1)[1]], second
        assert second["other_tmp_secret"].startswith("refused"), second
        # (its /tmp also holds the way to its work folder when the data folder is in /tmp)
        assert "secret-second" in second["tmp"] and "secret-first" not in second["tmp"], second
    finally:
        server.stop()


def test_a_failing_step_and_a_deleted_execution_under_the_fork_server(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        api = Api(server)
        create_step_http(api, "crashes", {"main.py": (
            "import os, sys, time\n"
            "def run(how):\n"
            "    if how == 'forked':\n"
            "        return {'report': {'forked': 'shipyard_runner.forkserver' in sys.modules}}\n"
            "    if how == 'exit':\n"
            "        os._exit(7)\n"
            "    if how == 'sleep':\n"
            "        time.sleep(60)\n"
            "    raise ValueError('boom ' + how)\n")}, kind="pipelines", fields={
            "inputs[0][name]": "how", "inputs[0][data_type]": "string",
            "outputs[0][name]": "report", "outputs[0][data_type]": "json"})
        _until_forked(api, "crashes", {"how": "forked"})
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


def test_a_stopped_server_leaves_no_fork_server_behind(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        api = Api(server)
        create_step_http(api, "isolated", {"main.py": STEP}, kind="pipelines",
                         fields=SEEN_FIELDS)
        _until_forked(api, "isolated", {"tag": "one"})
        runners = _runner_processes(server)
        assert server.stop() == 0
        _, alive = psutil.wait_procs(runners, timeout=15)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]
        work = server.data_dir / "work"
        assert not list(work.iterdir()) if work.exists() else True
    finally:
        server.stop()


PATIENT = '''
import sys
import time


def run(how):
    if how == "wait":
        time.sleep(4)
    return {"report": {"forked": "shipyard_runner.forkserver" in sys.modules}}
'''
REPORT_FIELDS = {"inputs[0][name]": "how", "inputs[0][data_type]": "string",
                 "outputs[0][name]": "report", "outputs[0][data_type]": "json"}


def test_a_retired_fork_server_lets_its_running_execution_finish(tmp_path):
    """SHIPYARD_FORK_SERVERS=1: the fork server of another environment retires the first
    one, which takes no new execution but does not kill the one it runs."""
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_FORK_SERVERS": "1"}).start()
    try:
        api = Api(server)
        create_step_http(api, "patient", {"main.py": PATIENT}, kind="pipelines",
                         fields=REPORT_FIELDS)
        body = create_step_http(api, "other-env", {"main.py": PATIENT,
                                                   "requirements.txt": "numpy\n"},
                                kind="pipelines", fields=dict(
                                    REPORT_FIELDS,
                                    **{"container_config[requirements_path]":
                                       "requirements.txt"}))
        assert body["creation_info"]["status"] == "ready", body
        _until_forked(api, "patient", {"how": "now"})
        r = api.request("POST", "/pipelines/patient/run",
                        data={"json_inputs": json.dumps({"how": "wait"})})
        assert r.status_code == 200, r.text
        waiting = r.json()["execution_id"]
        _until_forked(api, "other-env", {"how": "now"})  # retires patient's fork server
        out = _outputs_when_done(api, waiting)
        assert out.json()["outputs"][0]["value"] == {"forked": True}
        _until_forked(api, "patient", {"how": "now"})  # a new one, in turn
    finally:
        server.stop()


PROC_PROBE = STEP_HELPERS + '''
import json
import os
import subprocess
import sys
import time

from shipyard import CraftAiSdk

TOKENS = ("SHIPYARD_EXECUTION_TOKEN", "SHIPYARD_SDK_TOKEN", "CRAFT_AI_SDK_TOKEN")


def _mem(pid):
    with open("/proc/%s/maps" % pid) as f:
        first = f.readline()
    if not first:  # what /proc gives when the process may not be read
        raise PermissionError("no map")
    start = int(first.split("-")[0], 16)
    with open("/proc/%s/mem" % pid, "rb") as f:
        f.seek(start)
        return f.read(64).hex()


def _look(pid, held):
    base = "/proc/%s/" % pid
    secret = os.path.join(held, "secret-hold")
    below_root = os.path.relpath(secret, os.path.dirname(held))  # from the work root
    return {
        "through_cwd": _try(lambda: open(base + "cwd/" + below_root).read()),
        "through_root": _try(lambda: open(base + "root" + secret).read()),
        "cmdline": _try(lambda: open(base + "cmdline", "rb").read().decode("utf-8", "replace")),
        "environ": _try(lambda: open(base + "environ", "rb").read().decode("utf-8", "replace")),
        "cwd": _try(lambda: sorted(os.listdir(base + "cwd"))),
        "root": _try(lambda: sorted(os.listdir(base + "root"))),
        # (the numbers of its open files may be listed: where they lead may not)
        "fd": _try(lambda: [os.readlink(base + "fd/" + n) for n in os.listdir(base + "fd")]),
        "mem": _try(lambda: _mem(pid)),
    }


def run(role, key, name):
    if role == "warm-up":
        return {"report": {"forked": "shipyard_runner.forkserver" in sys.modules}}
    sdk = CraftAiSdk()
    forked = "shipyard_runner.forkserver" in sys.modules
    if role == "hold":
        with open("secret-hold", "w") as f:
            f.write("the holder's file")
        with open("held.txt", "w") as f:
            f.write(os.getcwd())
        # A program the step executes: dumpable again after its exec, the token in its
        # environment (what a step's `subprocess.run` gives every tool it calls).
        program = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                   env=dict(os.environ))
        sdk.upload_data_store_object("held.txt", key + "/held")
        try:
            waited = all(_fetch(sdk, key + "/probed-" + other, "probed-" + other)
                         for other in ("same", "other"))
        finally:
            program.kill()
            program.wait()
        return {"report": {"forked": forked, "cwd": os.getcwd(), "waited": waited,
                           "tokens": [os.environ[t] for t in TOKENS if os.environ.get(t)]}}
    assert _fetch(sdk, key + "/held", "held.txt")
    with open("held.txt") as f:
        held = f.read()
    me = os.readlink("/proc/self")  # this process's pid in the /proc it sees
    seen = {pid: _look(pid, held) for pid in os.listdir("/proc") if pid.isdigit() and pid != me}
    with open("probed.txt", "w") as f:
        f.write("done")
    sdk.upload_data_store_object("probed.txt", key + "/probed-" + name)
    return {"report": {"forked": forked, "seen": seen}}
'''
PROBE_FIELDS = {"inputs[0][name]": "role", "inputs[0][data_type]": "string",
                "inputs[1][name]": "key", "inputs[1][data_type]": "string",
                "inputs[2][name]": "name", "inputs[2][data_type]": "string",
                "outputs[0][name]": "report", "outputs[0][data_type]": "json"}


def test_a_forked_execution_cannot_read_other_executions_through_proc(tmp_path):
    """The fork server's /proc lists every execution it forked: none may read another's
    (or the fork server's, or a keeper's, or a program another one executes) environment,
    memory, folders or open files."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        api = Api(server)
        for step in ("holder", "prober"):
            create_step_http(api, step, {"main.py": PROC_PROBE}, kind="pipelines",
                             fields=PROBE_FIELDS)
            _until_forked(api, step, {"role": "warm-up", "key": "none", "name": "none"})
        ids = {}
        for name, step, role in (("hold", "holder", "hold"), ("same", "holder", "probe"),
                                 ("other", "prober", "probe")):
            r = api.request("POST", f"/pipelines/{step}/run", data={"json_inputs": json.dumps(
                {"role": role, "key": "proc", "name": name})})
            assert r.status_code == 200, r.text
            ids[name] = r.json()["execution_id"]
        reports = {name: _outputs_when_done(api, execution_id).json()["outputs"][0]["value"]
                   for name, execution_id in ids.items()}
        hold = reports["hold"]
        assert hold["waited"] and hold["tokens"], hold  # running while both looked
        for name in ("same", "other"):
            report = reports[name]
            assert report["forked"] and hold["forked"], reports
            assert report["seen"], report  # at least the fork server is listed
            # The holder's program was among those looked at (its command line is public).
            assert any("time.sleep(120)" in str(looked["cmdline"])
                       for looked in report["seen"].values()), (name, report)
            for pid, looked in report["seen"].items():
                for what in ("environ", "cwd", "root", "fd", "mem", "through_cwd",
                             "through_root"):
                    assert str(looked[what]).startswith("refused"), (name, pid, what, looked)
            text = json.dumps(report)
            assert not [t for t in hold["tokens"] if t in text], (name, report)
            assert "secret-hold" not in text and "the holder's file" not in text, (name, report)
    finally:
        server.stop()


def test_fork_server_folders_left_by_a_crashed_server_are_removed_at_start(tmp_path):
    """A server killed hard leaves its fork servers' work roots: the next start removes
    those whose API process is gone, and only those."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    work = tmp_path / "data" / "work"
    stale = work / f"fork-{dead.pid}-{'a' * 20}"
    alive = work / f"fork-{os.getpid()}-{'b' * 20}"  # this process: maybe another worker's
    others = [work / "fork-12345-notaforkroot", work / "fork-x1y2z"]  # e.g. a step's run
    for folder in (stale, alive, *others):
        folder.mkdir(parents=True)
        (folder / "forkserver.log").write_text("left behind")
    server = ServerProcess(tmp_path / "data").start()
    try:
        api = Api(server)
        create_step_http(api, "isolated", {"main.py": STEP}, kind="pipelines",
                         fields=SEEN_FIELDS)
        _until_forked(api, "isolated", {"tag": "one"})
        assert not stale.exists()
        assert alive.exists() and all(folder.exists() for folder in others)
        # Its own fork server's root is named after the server's (worker) process.
        server_pids = {server.proc.pid} | {p.pid for p in
                                           psutil.Process(server.proc.pid).children(True)}
        roots = [p.name for p in work.glob("fork-*-*")
                 if p.name.split("-")[1].isdigit() and int(p.name.split("-")[1]) in server_pids]
        assert len(roots) == 1, sorted(p.name for p in work.iterdir())
    finally:
        server.stop()


def test_projects_never_share_a_fork_server(tmp_path):
    """The same step (same Python, same requirements) in two projects: each project's
    executions are forked by a fork server of its own (its work folders live under that fork
    server's root), so a program one project's step executes, dumpable again after its exec,
    is never beside another project's executions."""
    from .test_git_steps import project_api

    server = ServerProcess(tmp_path / "data").start()
    try:
        roots = {}
        for api in (Api(server), project_api(Api(server), "tenant-b", {})):
            create_step_http(api, "isolated", {"main.py": STEP}, kind="pipelines",
                             fields=SEEN_FIELDS)
            _until_forked(api, "isolated", {"tag": "warm-up"})
            _, out = run_and_wait(api, "isolated", {"tag": "where"})
            assert out.status_code == 200, out.text
            seen = out.json()["outputs"][0]["value"]
            assert seen["forked"], seen
            roots[api.env_url] = os.path.basename(os.path.dirname(seen["cwd"]))
        assert len(set(roots.values())) == 2, roots
        assert all(root.startswith("fork-") for root in roots.values()), roots
        assert len(_runner_processes(server, "forkserver")) >= 2
    finally:
        server.stop()


def _spare_processes(server: ServerProcess) -> tuple[psutil.Process, list[psutil.Process]]:
    """The one fork server, and every process it forked that is still there."""
    procs = [p for p in _runner_processes(server, "forkserver")  # not bwrap's, setpriv's
             if os.path.basename(p.cmdline()[0]).startswith("python")]
    pids = {p.pid for p in procs}
    roots = [p for p in procs if p.ppid() not in pids]
    assert len(roots) == 1, [(p.pid, p.ppid(), p.cmdline()) for p in procs]
    return roots[0], roots[0].children(recursive=True)


def test_a_fork_server_keeps_one_spare_and_each_execution_gets_its_own(tmp_path):
    """After each execution it takes, a fork server makes ready the next one's process
    ahead (a keeper with its runner, waiting): never more than one such pair at rest,
    each used for one execution only (a stopped server leaves none: the test above)."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        api = Api(server)
        create_step_http(api, "isolated", {"main.py": STEP}, kind="pipelines",
                         fields=SEEN_FIELDS)
        _until_forked(api, "isolated", {"tag": "warm-up"})
        for tag in ("one", "two"):
            assert run_and_wait(api, "isolated", {"tag": tag})[1].status_code == 200
        burst = []
        for tag in ("a", "b", "c"):  # at once: more than the one spare
            r = api.request("POST", "/pipelines/isolated/run",
                            data={"json_inputs": json.dumps({"tag": tag})})
            assert r.status_code == 200, r.text
            burst.append(r.json()["execution_id"])
        seen = [_outputs_when_done(api, i).json()["outputs"][0]["value"]
                for i in burst]
        for item in seen:
            assert item["forked"] and item["pid"] == 1 and item["calls_in_module"] == 1, item
            assert not [f for f in item["files"] if f.startswith("leftover-")], item
        assert len({item["cwd"] for item in seen}) == 3
        deadline = time.monotonic() + 20
        while True:  # the executions' keepers end with their runners
            fork_server, forked = _spare_processes(server)
            if len(forked) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(forked) == 2, [(p.pid, p.ppid(), p.status()) for p in forked]
        keeper = next(p for p in forked if p.ppid() == fork_server.pid)
        assert [p.pid for p in keeper.children()] == [p.pid for p in forked if p != keeper]
    finally:
        server.stop()


CHATTY = '''
import os
import subprocess
import sys


def run(how):
    print("printed by the step")
    os.write(1, b"written to descriptor 1\\n")
    subprocess.run(["sh", "-c", "echo from a child process; echo to stderr >&2"], check=True)
    return {"report": {"forked": "shipyard_runner.forkserver" in sys.modules}}
'''


def test_a_forked_execution_logs_its_child_processes_and_raw_descriptors(tmp_path):
    """The capture a forked runner made ready while it waited (pipes on descriptors 1 and
    2, their reader threads) catches what its execution writes, its child processes too."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        api = Api(server)
        create_step_http(api, "chatty", {"main.py": CHATTY}, kind="pipelines",
                         fields=REPORT_FIELDS)
        _until_forked(api, "chatty", {"how": "now"})
        for _ in range(2):  # the second from the spare made after the first
            execution_id, out = run_and_wait(api, "chatty", {"how": "now"})
            assert out.json()["outputs"][0]["value"] == {"forked": True}
            r = api.request("POST", f"/executions/{execution_id}/logs", json={})
            assert r.status_code == 200, r.text
            lines = [(line["stream"], line["message"]) for line in r.json()[0]]
            for expected in (("stdout", "printed by the step"),
                             ("stdout", "written to descriptor 1"),
                             ("stdout", "from a child process"), ("stderr", "to stderr")):
                assert expected in lines, lines
    finally:
        server.stop()


MOUNTS = '''
import ctypes
import os
import sys

MS_REMOUNT, MS_BIND, MNT_DETACH = 32, 4096, 2
libc = ctypes.CDLL(None, use_errno=True)


def _result(code):
    return "ok" if code == 0 else os.strerror(ctypes.get_errno())


def run(how):
    work, code = os.getcwd(), os.path.dirname(os.path.abspath(__file__))
    work_root, steps = os.path.dirname(work), os.path.dirname(os.path.dirname(code))
    seen = {"forked": "shipyard_runner.forkserver" in sys.modules}
    # The step holds every capability of its own user namespace: it tries them on its mounts.
    seen["code_writable"] = _result(libc.mount(None, code.encode(), None,
                                               MS_REMOUNT | MS_BIND, None))
    try:
        open(os.path.join(code, "planted.py"), "w").close()
        seen["planted"] = True
    except OSError:
        seen["planted"] = False
    os.chdir("/")
    for name, path in (("code", code), ("work", work), ("steps_cover", steps),
                       ("work_root_cover", work_root)):
        seen["umount_" + name] = _result(libc.umount2(path.encode(), MNT_DETACH))
    seen["work_root"] = sorted(os.listdir(work_root))
    seen["steps"] = sorted(os.listdir(steps))
    seen["code_id"] = os.path.basename(os.path.dirname(code))
    return {"report": seen}
'''


def test_a_forked_execution_cannot_undo_its_mounts_to_see_others(tmp_path):
    """A forked step has every capability of its own user namespace: its step code stays
    read-only, the covers over the work root and the steps' code cannot be unmounted, and
    unmounting its own two folders shows only the empty cover under them (another step's
    code and another execution's folder never appear)."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        api = Api(server)
        create_step_http(api, "other", {"main.py": PATIENT}, kind="pipelines",
                         fields=REPORT_FIELDS)
        create_step_http(api, "mounts", {"main.py": MOUNTS}, kind="pipelines",
                         fields=REPORT_FIELDS)
        _until_forked(api, "other", {"how": "now"})
        r = api.request("POST", "/pipelines/other/run",
                        data={"json_inputs": json.dumps({"how": "wait"})})
        assert r.status_code == 200, r.text  # forked beside the next: its folder is there
        for _ in range(50):
            _, out = run_and_wait(api, "mounts", {"how": "now"})
            assert out.status_code == 200, out.text
            seen = out.json()["outputs"][0]["value"]
            if seen["forked"]:
                break
            time.sleep(0.2)
        assert seen["forked"], seen
        assert seen["code_writable"] != "ok" and not seen["planted"], seen
        assert seen["umount_steps_cover"] != "ok", seen
        assert seen["umount_work_root_cover"] != "ok", seen
        assert seen["steps"] == [seen["code_id"]], seen  # no other step's code
        assert len(seen["work_root"]) == 1, seen  # only the way to its own folder
        assert _outputs_when_done(api, r.json()["execution_id"]).json()["outputs"][0][
            "value"] == {"forked": True}  # it ran beside, forked by the same fork server
    finally:
        server.stop()
