"""Resident mode of the runner (``python -m shipyard_runner serve``) against the stub API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared stub API
from test_runner import RUNNER_ROOT, TS_RE, StubApi, _other_pythons  # noqa: E402

START_TIMEOUT = 30  # seconds to wait for /health; every wait here is bounded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Resident:
    """A running ``serve`` process and helpers to talk to it."""

    def __init__(self, stub: StubApi, tmp_path, source: str, max_parallel: int = 1,
                 env: dict | None = None, python: str = sys.executable,
                 socket_path: str | None = None) -> None:
        code = tmp_path / "code"
        code.mkdir(exist_ok=True)
        (code / "step.py").write_text(textwrap.dedent(source))
        self.stub = stub
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CRAFT_AI_", "SHIPYARD_"))}
        full_env.update({"PYTHONPATH": str(RUNNER_ROOT), "SHIPYARD_RUNNER_ECHO": "0",
                         "SHIPYARD_DEPLOYMENT_TOKEN": stub.deployment_token,
                         "SHIPYARD_POD_ID": "pod-1"})
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [python, "-m", "shipyard_runner", "serve", "--port", str(self.port),
             "--code-dir", str(code), "--function-path", "step.py", "--function-name", "run",
             "--max-parallel", str(max_parallel), "--api-url", stub.api_url]
            + (["--socket", socket_path] if socket_path else []),
            cwd=str(tmp_path), env=full_env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)

    def health(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            return None, None

    def wait_ready(self) -> list:
        """Poll /health until 200; returns the statuses seen."""
        seen = []
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("runner exited: %s" % self.proc.stderr.read())
            status, _ = self.health()
            if status is not None and (not seen or seen[-1] != status):
                seen.append(status)
            if status == 200:
                return seen
            time.sleep(0.02)
        raise AssertionError("runner not ready after %ss" % START_TIMEOUT)

    def execute(self, eid: str, inputs=None, outputs=(), env=None):
        self.stub.tokens[eid] = "tok-" + eid
        job = {"execution_id": eid, "inputs": inputs or {},
               "outputs": [{"name": n, "data_type": t} for n, t in outputs],
               "environment_variables": env or {}, "token": "tok-" + eid}
        req = urllib.request.Request(self.url + "/execute", data=json.dumps(job).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read())
        # The caller records the answer: the runner makes no finish call of its own.
        assert eid not in self.stub.finished
        return answer

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise
        finally:
            self.proc.stderr.close()


def lines_of(stub: StubApi, eid: str, answer: dict) -> list:
    """An execution's log lines: those the shipper sent while it ran, then those its
    answer carries (sent with the result)."""
    return stub.messages(eid) + [line["message"] for line in answer["logs"]]


@pytest.fixture
def stub():
    api = StubApi()
    yield api
    api.close()


@pytest.fixture
def resident(stub, tmp_path):
    started = []

    def start(source: str, **kw) -> Resident:
        r = Resident(stub, tmp_path, source, **kw)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def test_globals_persist_and_import_logs_are_deployment_logs(stub, resident):
    r = resident("""
        import time
        print("loading model")
        time.sleep(1.0)  # a slow import: /health says 503 meanwhile
        count = 0
        def run(x):
            global count
            count += 1
            print("execution", count)
            return {"count": count, "x": x}
    """)
    assert r.wait_ready() == [503, 200]
    first = r.execute("p-1", {"x": "a"}, [("count", "number"), ("x", "string")])
    second = r.execute("p-2", {"x": "b"}, [("count", "number"), ("x", "string")])
    assert first["status"] == "Succeeded" and first["outputs"] == {"count": 1, "x": "a"}
    assert second["outputs"] == {"count": 2, "x": "b"}
    assert lines_of(stub, "p-1", first) == ["execution 1"]
    assert lines_of(stub, "p-2", second) == ["execution 2"]
    assert all(TS_RE.match(line["timestamp"]) for line in first["logs"] + second["logs"])
    assert r.stop() == 0  # SIGTERM: graceful stop, deployment logs flushed
    messages = [ln["message"] for ln in stub.deployment_logs]
    assert messages[:3] == ["Importing step module", "loading model",
                            "Step module imported successfully"]
    assert 'Execution "p-1" started successfully' in messages
    assert all(TS_RE.match(ln["timestamp"]) for ln in stub.deployment_logs)
    assert {ln["pod_id"] for ln in stub.deployment_logs} == {"pod-1"}


def test_errors_are_reported_per_execution(stub, resident):
    r = resident("""
        def run(fail):
            if fail:
                raise RuntimeError("boom")
            return {"ok": True}
    """)
    r.wait_ready()
    bad = r.execute("p-bad", {"fail": True}, [("ok", "boolean")])
    good = r.execute("p-good", {"fail": False}, [("ok", "boolean")])
    assert bad["status"] == "Failed"
    assert bad["error"]["message"] == "RuntimeError: boom"
    assert "shipyard_runner" not in bad["error"]["traceback"]
    assert good["status"] == "Succeeded"
    wrong = r.execute("p-wrong", {"fail": False}, [("ok", "string")])
    assert wrong["error"]["type"] == "OutputTypeError"


def _concurrency_source(kind: str) -> str:
    sleep = "await asyncio.sleep(0.5)" if kind == "async" else "time.sleep(0.5)"
    return """
        import asyncio, os, threading, time
        import __craft_internal_execution_context as ctx
        lock = threading.Lock()
        state = {"now": 0, "max": 0}
        %s run(tag):
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            for i in range(3):
                print("line", i, "of", tag)
                %s
            with lock:
                state["now"] -= 1
            return {"max": state["max"], "eid": ctx.current_execution_id.get(),
                    "env": os.environ.get("CRAFT_AI_EXECUTION_ID")}
    """ % ("async def" if kind == "async" else "def", sleep.replace("0.5", "0.17"))


@pytest.mark.parametrize("kind", ["def", "async"])
def test_parallel_executions_are_limited_and_logs_routed(stub, resident, kind):
    r = resident(_concurrency_source(kind), max_parallel=3)
    r.wait_ready()
    info = r.health()[1]
    assert info["function_is_async"] is (kind == "async")
    ids = ["p-%s-%d" % (kind, i) for i in range(6)]
    outputs = [("max", "number"), ("eid", "string"), ("env", "string")]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda eid: r.execute(eid, {"tag": eid}, outputs), ids))
    assert all(res["status"] == "Succeeded" for res in results), results
    # Never more than 3 at once, and 3 were reached (6 requests, each ~0.5 s long).
    assert max(res["outputs"]["max"] for res in results) == 3
    for eid, res in zip(ids, results):
        assert res["outputs"]["eid"] == eid  # the ContextVar is per execution
        assert lines_of(stub, eid, res) == ["line %d of %s" % (i, eid) for i in range(3)]
    if kind == "def":
        assert all(res["resources"]["cpu_time_s"] is not None for res in results)


@pytest.mark.parametrize("python", _other_pythons() or [None])
@pytest.mark.parametrize("kind", ["def", "async"])
def test_parallel_on_other_python_versions(stub, resident, kind, python):
    if python is None:
        pytest.skip("no other Python interpreter on this machine")
    r = resident(_concurrency_source(kind), max_parallel=2, python=python)
    r.wait_ready()
    ids = ["p-%d" % i for i in range(4)]
    outputs = [("max", "number"), ("eid", "string"), ("env", "string")]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda eid: r.execute(eid, {"tag": eid}, outputs), ids))
    assert max(res["outputs"]["max"] for res in results) == 2, results
    assert [res["outputs"]["eid"] for res in results] == ids


def test_environment_variables_per_execution(stub, resident):
    r = resident("""
        import os
        def run():
            return {"v": os.environ.get("MY_VAR", "<unset>"),
                    "token": os.environ.get("CRAFT_AI_SDK_TOKEN")}
    """)
    r.wait_ready()
    outputs = [("v", "string"), ("token", "string")]
    a = r.execute("p-a", {}, outputs, env={"MY_VAR": "a"})
    b = r.execute("p-b", {}, outputs)
    assert a["outputs"] == {"v": "a", "token": "tok-p-a"}
    assert b["outputs"] == {"v": "<unset>", "token": "tok-p-b"}  # nothing leaked from p-a


def test_environment_variable_already_set_in_the_process(stub, resident):
    """A value equal to the process's own is not written, yet it is back right after
    another execution changes it."""
    r = resident("""
        import os
        def run():
            return {"v": os.environ.get("MY_VAR", "<unset>")}
    """, env={"MY_VAR": "base"})
    r.wait_ready()
    outputs = [("v", "string")]
    same = r.execute("p-1", {}, outputs, env={"MY_VAR": "base"})
    other = r.execute("p-2", {}, outputs, env={"MY_VAR": "other"})
    none = r.execute("p-3", {}, outputs)
    assert [x["outputs"]["v"] for x in (same, other, none)] == ["base", "other", "base"]


@pytest.mark.parametrize("python", [sys.executable, *_other_pythons()])
def test_socket_transport_needs_the_deployment_key(stub, resident, tmp_path, python):
    """`--socket`: the /execute exchange over an authenticated Unix socket, several calls
    on one connection; a caller with another key is refused and the runner goes on. The
    handshake works whatever the step environment's Python (the server's is this one)."""
    from multiprocessing import AuthenticationError
    from multiprocessing.connection import Client

    path = str(tmp_path / "runner.sock")
    r = resident("""
        count = 0
        def run(a):
            global count
            count += 1
            return {"total": a + count}
    """, socket_path=path, python=python)
    r.wait_ready()
    with pytest.raises(AuthenticationError):
        Client(path, family="AF_UNIX", authkey=b"not-the-key")
    conn = Client(path, family="AF_UNIX", authkey=stub.deployment_token.encode())
    answers = []
    for i in (1, 2):
        eid = f"s-{i}"
        stub.tokens[eid] = "tok-" + eid
        conn.send_bytes(json.dumps({
            "execution_id": eid, "inputs": {"a": 10}, "token": "tok-" + eid,
            "outputs": [{"name": "total", "data_type": "number"}]}).encode())
        answers.append(json.loads(conn.recv_bytes()))
    conn.send_bytes(b"{not json")
    bad = json.loads(conn.recv_bytes())
    conn.close()
    assert [a["status"] for a in answers] == [200, 200]
    assert [a["body"]["outputs"]["total"] for a in answers] == [11, 12]
    assert set(answers[0]) == {"status", "body"}
    assert not {"s-1", "s-2"} & set(stub.finished)  # the caller records the answers
    assert bad["status"] == 400 and "bad job" in bad["body"]["message"]
    assert r.execute("h-1", {"a": 0}, [("total", "number")])["outputs"] == {"total": 3}


def test_socket_needs_a_deployment_token(stub, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "step.py").write_text("def run():\n    return None\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAFT_AI_", "SHIPYARD_"))}
    env["PYTHONPATH"] = str(RUNNER_ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "shipyard_runner", "serve", "--port", str(free_port()),
         "--code-dir", str(code), "--function-path", "step.py", "--function-name", "run",
         "--socket", str(tmp_path / "s.sock")], env=env, capture_output=True, text=True,
        timeout=30)
    assert done.returncode == 2
    assert "--socket needs SHIPYARD_DEPLOYMENT_TOKEN" in done.stderr


def test_file_input_by_url_and_file_output(stub, resident):
    stub.files["data.txt"] = b"payload"
    r = resident("""
        def run(f):
            data = open(f["path"], "rb").read()
            with open("out.txt", "wb") as out:
                out.write(data.upper())
            return {"out": {"path": "out.txt"}}
    """)
    r.wait_ready()
    res = r.execute("p-file", {"f": {"url": stub.url + "/files/data.txt"}}, [("out", "file")])
    assert res["status"] == "Succeeded", res
    assert stub.uploads[("p-file", "out")] == b"PAYLOAD"


def test_bad_requests(stub, resident):
    r = resident("def run():\n    return None\n")
    r.wait_ready()
    req = urllib.request.Request(r.url + "/execute", data=b'{"inputs": {}}')
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(r.url + "/nope", timeout=10)
    assert info.value.code == 404


def test_import_failure_exits_and_logs(stub, tmp_path):
    r = Resident(stub, tmp_path, "raise ImportError('missing dependency foo')\n")
    try:
        assert r.proc.wait(timeout=START_TIMEOUT) == 2
    finally:
        r.stop()
    messages = "\n".join(ln["message"] for ln in stub.deployment_logs)
    assert "ImportError: missing dependency foo" in messages
    assert "Step module import failed" in messages


def test_module_level_threads_log_to_deployment(stub, resident):
    r = resident("""
        import threading, time
        def tick():
            time.sleep(0.2)
            print("background tick")
        threading.Thread(target=tick, daemon=True).start()
        def run():
            return None
    """)
    r.wait_ready()
    assert r.execute("p-x")["status"] == "Succeeded"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(ln["message"] == "background tick" for ln in stub.deployment_logs):
            break
        time.sleep(0.05)
    assert any(ln["message"] == "background tick" for ln in stub.deployment_logs)
    assert "background tick" not in stub.messages("p-x")
