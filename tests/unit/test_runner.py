"""The step runner (worker_image/shipyard_runner), run as a real subprocess against a stub API.

The stub is a stdlib HTTP server recording what the runner sends (logs, finish, file
outputs) and refusing calls without the right ``ExecutionToken``.
"""

from __future__ import annotations

import ast
import glob
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER_ROOT = REPO / "worker_image"
RUNNER_PKG = RUNNER_ROOT / "shipyard_runner"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RUN_TIMEOUT = 60  # seconds; every subprocess wait is bounded

if str(RUNNER_ROOT) not in sys.path:
    sys.path.insert(0, str(RUNNER_ROOT))


# -- stub API ---------------------------------------------------------------------------------

class StubApi:
    """Records runner calls; serves jobs and files. One instance per test."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict = {}  # execution id -> expected token
        self.deployment_token = "dep-token"
        self.calls: list = []  # (method, path, authorization)
        self.logs: dict = {}  # execution id -> [line, ...]
        self.finished: dict = {}  # execution id -> finish payload
        self.uploads: dict = {}  # (execution id, output name) -> bytes
        self.deployment_logs: list = []
        self.jobs: dict = {}  # execution id -> job served at .../job
        self.files: dict = {}  # name -> bytes served at /files/<name>
        self.fail_finish = False
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                stub._handle(self, "GET")

            def do_POST(self) -> None:
                stub._handle(self, "POST")

            def do_PUT(self) -> None:
                stub._handle(self, "PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.api_url = self.url + "/environments/proj/dev"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _reply(self, h, status: int, obj=None, raw: bytes | None = None,
               headers: dict | None = None) -> None:
        body = raw if raw is not None else json.dumps(obj if obj is not None else {}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream" if raw is not None
                      else "application/json")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _handle(self, h, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        auth = h.headers.get("Authorization")
        path = h.path.split("?", 1)[0]
        with self.lock:
            self.calls.append((method, path, auth))
        if path.startswith("/files/") and method == "GET":
            name = path[len("/files/"):]
            if name not in self.files:
                return self._reply(h, 404, {"message": "no file"})
            return self._reply(h, 200, raw=self.files[name],
                               headers={"Content-Disposition": 'attachment; filename="%s"' % name})
        prefix = "/environments/proj/dev/api/v1/runner/"
        if not path.startswith(prefix):
            return self._reply(h, 404, {"message": "unknown route %s" % path})
        route = path[len(prefix):].split("/")
        if route[:2] == ["deployments", "logs"]:
            if auth != "DeploymentToken " + self.deployment_token:
                return self._reply(h, 401, {"message": "bad deployment token"})
            with self.lock:
                data = json.loads(body)
                self.deployment_logs.extend(dict(ln, pod_id=data.get("pod_id"))
                                            for ln in data["logs"])
            return self._reply(h, 200, {})
        if len(route) < 3 or route[0] != "executions":
            return self._reply(h, 404, {"message": "unknown route"})
        eid, action = route[1], route[2]
        expected = self.tokens.get(eid)
        if expected is None or auth != "ExecutionToken " + expected:
            return self._reply(h, 401, {"message": "bad execution token"})
        with self.lock:
            if action == "logs" and method == "POST":
                lines = json.loads(body)["logs"]
                self.logs.setdefault(eid, []).extend(lines)
                return self._reply(h, 200, {"count": len(lines)})
            if action == "finish" and method == "POST":
                if self.fail_finish:
                    return self._reply(h, 503, {"message": "down"})
                self.finished[eid] = json.loads(body)
                return self._reply(h, 200, {})
            if action == "outputs" and method == "PUT" and len(route) == 4:
                self.uploads[(eid, route[3])] = body
                return self._reply(h, 200, {})
            if action == "job" and method == "GET":
                return self._reply(h, 200, self.jobs[eid])
        return self._reply(h, 404, {"message": "unknown route"})

    # helpers for assertions
    def messages(self, eid: str, stream: str | None = None) -> list:
        with self.lock:
            return [ln["message"] for ln in self.logs.get(eid, [])
                    if stream is None or ln["stream"] == stream]


@pytest.fixture
def stub():
    api = StubApi()
    yield api
    api.close()


def runner_env(stub: StubApi, eid: str, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("CRAFT_AI_", "SHIPYARD_")):
            del env[name]
    env.update({
        "PYTHONPATH": str(RUNNER_ROOT),
        "SHIPYARD_API_URL": stub.api_url,
        "SHIPYARD_EXECUTION_TOKEN": stub.tokens[eid],
        "SHIPYARD_RUNNER_ECHO": "0",
    })
    env.update(extra or {})
    return env


def write_code(tmp_path: Path, source: str, name: str = "src/main.py") -> Path:
    code = tmp_path / "code"
    target = code / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(source))
    return code


def make_job(code: Path | None, outputs=(), inputs=None, eid: str = "p-ab12c",
             function_name: str = "run", **extra) -> dict:
    job = {
        "execution_id": eid,
        "code_dir": str(code) if code else None,
        "code_url": None,
        "function_path": "src/main.py",
        "function_name": function_name,
        "inputs": inputs or {},
        "outputs": [{"name": n, "data_type": t} for n, t in outputs],
        "environment_variables": {},
    }
    job.update(extra)
    return job


def run_job(stub: StubApi, tmp_path: Path, job: dict, python: str = sys.executable,
            extra_env: dict | None = None, args: list | None = None):
    eid = job["execution_id"]
    stub.tokens.setdefault(eid, "tok-" + eid)
    job.setdefault("api_url", stub.api_url)
    work = tmp_path / ("work-" + eid)
    work.mkdir()
    job_file = tmp_path / ("job-%s.json" % eid)
    job_file.write_text(json.dumps(job))
    cmd = [python, "-m", "shipyard_runner", "run"] + (args or ["--job", str(job_file)])
    proc = subprocess.run(cmd, cwd=str(work), env=runner_env(stub, eid, extra_env),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    return proc, work


# -- elastic mode: one process per execution -------------------------------------------------

def test_success_outputs_logs_and_token(stub, tmp_path):
    code = write_code(tmp_path, """
        import sys
        print("imported")
        def run(a, b):
            print("hello", a)
            print("oops", file=sys.stderr)
            sys.stdout.write("no newline at the end")
            return {"s": a * 2, "n": b + 0.5, "ok": True, "j": {"k": [1, None]}, "l": [1, 2]}
    """)
    job = make_job(code, [("s", "string"), ("n", "number"), ("ok", "boolean"), ("j", "json"),
                          ("l", "array")], {"a": "x", "b": 1})
    proc, _ = run_job(stub, tmp_path, job)
    assert proc.returncode == 0, proc.stderr
    fin = stub.finished["p-ab12c"]
    assert fin["status"] == "Succeeded"
    assert fin["error"] is None
    assert fin["outputs"] == {"s": "xx", "n": 1.5, "ok": True, "j": {"k": [1, None]}, "l": [1, 2]}
    assert fin["resources"]["cpu_time_s"] > 0
    assert fin["resources"]["peak_rss_bytes"] > 1_000_000
    lines = stub.logs["p-ab12c"]
    assert all(TS_RE.match(ln["timestamp"]) for ln in lines)
    assert [(ln["stream"], ln["message"]) for ln in lines] == [
        ("stdout", "imported"), ("stdout", "hello x"), ("stderr", "oops"),
        ("stdout", "no newline at the end")]
    # Every call carried the execution token; logs arrived before finish.
    runner_calls = [c for c in stub.calls if "/runner/" in c[1]]
    assert runner_calls and all(c[2] == "ExecutionToken tok-p-ab12c" for c in runner_calls)
    assert runner_calls[-1][1].endswith("/finish")


def test_user_exception_fails_with_trimmed_traceback(stub, tmp_path):
    code = write_code(tmp_path, """
        def helper(x):
            raise ValueError("bad thing %s" % x)

        def run():
            print("before")
            helper(3)
    """)
    proc, _ = run_job(stub, tmp_path, make_job(code))
    assert proc.returncode == 1
    fin = stub.finished["p-ab12c"]
    assert fin["status"] == "Failed"
    err = fin["error"]
    assert err["type"] == "ValueError"
    assert err["message"] == "ValueError: bad thing 3"
    assert "main.py" in err["traceback"] and "helper(3)" in err["traceback"]
    assert 'raise ValueError("bad thing %s" % x)' in err["traceback"]
    assert "shipyard_runner" not in err["traceback"]
    assert err["traceback"].startswith("Traceback (most recent call last):")
    stderr_lines = stub.messages("p-ab12c", "stderr")
    assert "ValueError: bad thing 3" in stderr_lines
    assert stub.messages("p-ab12c", "stdout") == ["before"]


@pytest.mark.parametrize("body, outputs, type_, fragment", [
    ('return {"n": "12"}', [("n", "number")], "OutputTypeError",
     "output 'n' must be a number (int or float) (data_type 'number'), got str"),
    ('return {"n": True}', [("n", "number")], "OutputTypeError", "got bool"),
    ('return {"b": 1}', [("b", "boolean")], "OutputTypeError", "must be a boolean"),
    ('return {"l": (1, 2)}', [("l", "array")], "OutputTypeError", "must be a list"),
    ('return {"s": 1}', [("s", "string")], "OutputTypeError", "must be a string"),
    ('return {"j": {1, 2}}', [("j", "json")], "OutputTypeError", "not JSON-serialisable"),
    ('return {"n": float("nan")}', [("n", "number")], "OutputTypeError", "finite number"),
    ('return {"a": 1}', [("a", "number"), ("b", "string")], "OutputMissing", "'b'"),
    ('return {"a": 1, "zz": 2}', [("a", "number")], "OutputUndeclared", "'zz'"),
    ('return None', [("a", "number")], "OutputMissing", "returned None"),
    ('return [1]', [("a", "number")], "OutputTypeError", "must return a dict"),
    ('return {"a": 1}', [], "OutputUndeclared", "'a'"),
    ('return {"s": "x" * 60_000}', [("s", "string")], "OutputTooLarge", "0.06 MB"),
    ('return {"a": "x" * 30_000, "b": "y" * 30_000}', [("a", "string"), ("b", "string")],
     "OutputTooLarge", "60000 bytes"),
    ('return {"f": "out.txt"}', [("f", "file")], "OutputTypeError", '{"path": <local file>}'),
    ('return {"f": {"path": "nope.txt"}}', [("f", "file")], "OutputFileNotFound", "nope.txt"),
])
def test_invalid_results_fail_clearly(stub, tmp_path, body, outputs, type_, fragment):
    code = write_code(tmp_path, "def run():\n    %s\n" % body)
    proc, _ = run_job(stub, tmp_path, make_job(code, outputs))
    assert proc.returncode == 1, proc.stderr
    fin = stub.finished["p-ab12c"]
    assert fin["status"] == "Failed"
    assert fin["error"]["type"] == type_
    assert fragment in fin["error"]["message"]


def test_limit_is_inclusive_and_none_without_outputs_is_fine(stub, tmp_path):
    # '"' + 59_998 chars + '"' is exactly 60_000 bytes JSON-encoded.
    code = write_code(tmp_path, """
        def run(big):
            return {"s": "x" * 59_998} if big else None
    """)
    proc, _ = run_job(stub, tmp_path, make_job(code, [("s", "string")], {"big": True}))
    assert proc.returncode == 0, stub.finished
    proc, _ = run_job(stub, tmp_path, make_job(code, [], {"big": False}, eid="p-none"))
    assert proc.returncode == 0
    assert stub.finished["p-none"]["status"] == "Succeeded"
    assert stub.finished["p-none"]["outputs"] == {}


def test_async_function_is_awaited(stub, tmp_path):
    code = write_code(tmp_path, """
        import asyncio
        import __craft_internal_execution_context as ctx
        async def run(x):
            await asyncio.sleep(0.01)
            print("async", x)
            return {"y": x + 1, "eid": ctx.current_execution_id.get()}
    """)
    proc, _ = run_job(stub, tmp_path, make_job(code, [("y", "number"), ("eid", "string")],
                                               {"x": 41}))
    assert proc.returncode == 0, proc.stderr
    assert stub.finished["p-ab12c"]["outputs"] == {"y": 42, "eid": "p-ab12c"}
    assert stub.messages("p-ab12c") == ["async 41"]


def test_file_inputs_path_and_url_and_file_output(stub, tmp_path):
    local = tmp_path / "local.csv"
    local.write_text("a,b\n1,2\n")
    stub.files["remote.bin"] = bytes(range(256)) * 10
    code = write_code(tmp_path, """
        import os
        def run(f, g):
            assert set(f) == {"path"} and set(g) == {"path"}, (f, g)
            with open("result.bin", "wb") as out:
                out.write(open(g["path"], "rb").read()[::-1])
            return {"out": {"path": "result.bin"}, "fa": open(f["path"]).read(),
                    "gname": os.path.basename(g["path"]), "gsize": os.path.getsize(g["path"])}
    """)
    job = make_job(code, [("out", "file"), ("fa", "string"), ("gname", "string"),
                          ("gsize", "number")],
                   {"f": {"path": str(local)}, "g": {"url": stub.url + "/files/remote.bin?sig=1"}})
    proc, work = run_job(stub, tmp_path, job)
    assert proc.returncode == 0, stub.finished
    fin = stub.finished["p-ab12c"]
    assert fin["outputs"] == {"fa": "a,b\n1,2\n", "gname": "remote.bin", "gsize": 2560}
    assert stub.uploads[("p-ab12c", "out")] == (bytes(range(256)) * 10)[::-1]
    # the download lands in the working directory
    assert (work / "inputs" / "g" / "remote.bin").read_bytes() == stub.files["remote.bin"]
    # the signed URL did not receive the execution token
    assert all(c[2] is None for c in stub.calls if c[1].startswith("/files/"))


def test_input_data_types_keep_url_shaped_json_values(stub, tmp_path):
    stub.files["x.txt"] = b"x"
    code = write_code(tmp_path, "def run(j, f):\n    return {'j': j, 'f': sorted(f)}\n")
    job = make_job(code, [("j", "json"), ("f", "array")],
                   {"j": {"url": "http://example.invalid/not-a-file"},
                    "f": {"url": stub.url + "/files/x.txt"}},
                   input_data_types={"j": "json", "f": "file"})
    proc, _ = run_job(stub, tmp_path, job)
    assert proc.returncode == 0, stub.finished
    assert stub.finished["p-ab12c"]["outputs"] == {
        "j": {"url": "http://example.invalid/not-a-file"}, "f": ["path"]}


def test_code_dir_from_the_image_environment(stub, tmp_path):
    code = write_code(tmp_path, "def run():\n    return {'y': 'image code'}\n")
    job = make_job(None, [("y", "string")])
    proc, _ = run_job(stub, tmp_path, job, extra_env={"SHIPYARD_CODE_DIR": str(code)})
    assert proc.returncode == 0, proc.stderr
    assert stub.finished["p-ab12c"]["outputs"] == {"y": "image code"}


def test_execution_context_and_environment(stub, tmp_path):
    code = write_code(tmp_path, """
        import os
        import __craft_internal_execution_context as ctx
        AT_IMPORT = os.environ.get("MY_VAR")
        def run():
            names = ["CRAFT_AI_EXECUTION_ID", "CRAFT_AI_ENVIRONMENT_URL", "CRAFT_AI_CONTROL_URL",
                     "CRAFT_AI_SDK_TOKEN", "SDK_VERBOSE_LOG", "MY_VAR"]
            return {"eid": ctx.current_execution_id.get(), "at_import": AT_IMPORT,
                    "env": {n: os.environ.get(n) for n in names}}
    """)
    job = make_job(code, [("eid", "string"), ("at_import", "string"), ("env", "json")],
                   environment_variables={"MY_VAR": "my value"})
    proc, _ = run_job(stub, tmp_path, job)
    assert proc.returncode == 0, proc.stderr
    out = stub.finished["p-ab12c"]["outputs"]
    assert out["eid"] == "p-ab12c"
    assert out["at_import"] == "my value"
    assert out["env"] == {
        "CRAFT_AI_EXECUTION_ID": "p-ab12c",
        "CRAFT_AI_ENVIRONMENT_URL": stub.api_url,
        "CRAFT_AI_CONTROL_URL": stub.url,
        "CRAFT_AI_SDK_TOKEN": "tok-p-ab12c",
        "SDK_VERBOSE_LOG": "false",
        "MY_VAR": "my value",
    }


def test_job_fetched_by_execution_id(stub, tmp_path):
    code = write_code(tmp_path, "def run(x):\n    return {'y': x * 3}\n")
    job = make_job(code, [("y", "number")], {"x": 2}, eid="p-fetch")
    stub.tokens["p-fetch"] = "tok-fetch"
    stub.jobs["p-fetch"] = job
    proc, _ = run_job(stub, tmp_path, dict(job), args=["--execution-id", "p-fetch"])
    assert proc.returncode == 0, proc.stderr
    assert stub.finished["p-fetch"]["outputs"] == {"y": 6}
    assert ("GET", "/environments/proj/dev/api/v1/runner/executions/p-fetch/job",
            "ExecutionToken tok-fetch") in stub.calls


def test_a_resolved_job_runs_nothing(stub, tmp_path):
    """A step that took another execution's result (Reused, Cached): its job says so, the
    runner exits 0 without importing the code or reporting anything."""
    code = write_code(tmp_path, "raise SystemExit('must not be imported')\n")
    job = make_job(code, [("y", "number")], {"x": 2}, eid="p-taken", resolved="Cached")
    stub.tokens["p-taken"] = "tok-taken"
    stub.jobs["p-taken"] = job
    proc, _ = run_job(stub, tmp_path, dict(job), args=["--execution-id", "p-taken"])
    assert proc.returncode == 0, proc.stderr
    assert "step result cached: nothing to run" in proc.stderr
    assert "p-taken" not in stub.finished and "p-taken" not in stub.logs


def test_code_from_url_archive(stub, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in {"src/main.py": "from src.helpers import twice\n"
                                          "def run(x):\n    return {'y': twice(x)}\n",
                           "src/helpers.py": "def twice(x):\n    return 2 * x\n"}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    stub.files["code.tgz"] = buf.getvalue()
    job = make_job(None, [("y", "number")], {"x": 21}, code_url=stub.url + "/files/code.tgz")
    proc, _ = run_job(stub, tmp_path, job)
    assert proc.returncode == 0, (proc.stderr, stub.finished)
    assert stub.finished["p-ab12c"]["outputs"] == {"y": 42}


def test_sibling_and_package_imports(stub, tmp_path):
    code = write_code(tmp_path, "from helpers import VALUE\nfrom . import other\n"
                                "def run():\n    return {'v': VALUE + other.X}\n")
    (code / "src" / "helpers.py").write_text("VALUE = 1\n")
    (code / "src" / "other.py").write_text("X = 10\n")
    (code / "src" / "__init__.py").write_text("")
    proc, _ = run_job(stub, tmp_path, make_job(code, [("v", "number")]))
    assert proc.returncode == 0, stub.finished
    assert stub.finished["p-ab12c"]["outputs"] == {"v": 11}


def test_threads_started_by_user_code_are_logged(stub, tmp_path):
    code = write_code(tmp_path, """
        import threading
        def run():
            t = threading.Thread(target=lambda: print("from a thread"))
            t.start(); t.join()
    """)
    proc, _ = run_job(stub, tmp_path, make_job(code))
    assert proc.returncode == 0
    assert stub.messages("p-ab12c") == ["from a thread"]


def test_output_of_child_processes_and_raw_descriptors(stub, tmp_path):
    code = write_code(tmp_path, """
        import os, subprocess, sys
        def run():
            print("python print")
            sys.stdout.flush()
            subprocess.run(["sh", "-c", "echo from child; echo child err >&2"], check=True)
            os.write(1, b"raw write\\n")
            subprocess.run([sys.executable, "-c", "print('py child')"], stdout=sys.stdout,
                           check=True)
    """)
    proc, _ = run_job(stub, tmp_path, make_job(code), extra_env={"SHIPYARD_RUNNER_ECHO": "1"})
    assert proc.returncode == 0, proc.stderr
    assert sorted(stub.messages("p-ab12c", "stdout")) == sorted(
        ["python print", "from child", "raw write", "py child"])
    assert stub.messages("p-ab12c", "stderr") == ["child err"]
    # echoed once to the real streams, not captured twice
    assert proc.stdout.count("from child") == 1 and proc.stdout.count("python print") == 1
    assert "child err" in proc.stderr


def test_crash_leaves_a_reason_on_stderr(stub, tmp_path):
    code = write_code(tmp_path, """
        import ctypes
        def run():
            print("about to crash")
            ctypes.string_at(0)
    """)
    proc, _ = run_job(stub, tmp_path, make_job(code))
    assert proc.returncode < 0  # killed by the signal: no finish call
    assert "p-ab12c" not in stub.finished
    assert "Segmentation fault" in proc.stderr and "main.py" in proc.stderr


def test_many_lines_are_batched(stub, tmp_path):
    code = write_code(tmp_path, "def run():\n    for i in range(1234):\n        print(i)\n")
    proc, _ = run_job(stub, tmp_path, make_job(code))
    assert proc.returncode == 0
    assert stub.messages("p-ab12c") == [str(i) for i in range(1234)]
    posts = [c for c in stub.calls if c[1].endswith("/logs")]
    assert len(posts) >= 3  # at most 500 lines per batch


@pytest.mark.parametrize("source, type_, fragment", [
    ("def run(:\n  pass\n", "SyntaxError", "SyntaxError"),
    ("import not_a_module_xyz\ndef run(): pass\n", "ModuleNotFoundError", "not_a_module_xyz"),
    ("def other(): pass\n", "FunctionNotFound", "'run' not found in src/main.py"),
    ("run = 3\n", "FunctionNotFound", "not callable"),
    ("def run(a): pass\n", "TypeError", "run() missing 1 required positional argument"),
])
def test_import_and_call_errors(stub, tmp_path, source, type_, fragment):
    code = write_code(tmp_path, source)
    proc, _ = run_job(stub, tmp_path, make_job(code))
    assert proc.returncode == 1
    err = stub.finished["p-ab12c"]["error"]
    assert err["type"] == type_
    assert fragment in err["message"]


def test_bad_job_exits_2_and_reports_when_it_can(stub, tmp_path):
    job = make_job(tmp_path, [("x", "nonsense")])
    proc, _ = run_job(stub, tmp_path, job)
    assert proc.returncode == 2
    assert stub.finished["p-ab12c"]["error"]["type"] == "JobError"
    assert "unknown data_type" in stub.finished["p-ab12c"]["error"]["message"]
    # unreadable job file: nothing to report to
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc, _ = run_job(stub, tmp_path, make_job(tmp_path, eid="p-other"),
                      args=["--job", str(bad)])
    assert proc.returncode == 2
    assert "cannot read job file" in proc.stderr


def test_unreachable_api_writes_result_json(stub, tmp_path):
    code = write_code(tmp_path, "def run():\n    print('hi')\n    return {'y': 1}\n")
    stub.fail_finish = True
    start = time.monotonic()
    proc, work = run_job(stub, tmp_path, make_job(code, [("y", "number")]))
    elapsed = time.monotonic() - start
    assert proc.returncode == 3
    assert elapsed < 20
    record = json.loads((work / "result.json").read_text())
    assert record["finish"]["status"] == "Succeeded"
    assert record["finish"]["outputs"] == {"y": 1}
    assert "503" in record["report_error"]
    finish_posts = [c for c in stub.calls if c[1].endswith("/finish")]
    assert len(finish_posts) == 5  # bounded retries


def test_echo_goes_to_the_real_streams(stub, tmp_path):
    code = write_code(tmp_path, "import sys\ndef run():\n    print('out!')\n"
                                "    print('err!', file=sys.stderr)\n")
    proc, _ = run_job(stub, tmp_path, make_job(code), extra_env={"SHIPYARD_RUNNER_ECHO": "1"})
    assert proc.returncode == 0
    assert "out!" in proc.stdout and "err!" in proc.stderr


def _other_pythons() -> list:
    found = []
    for version in ("3.8", "3.9", "3.12", "3.13"):
        paths = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s*/bin/python%s"
                                                    % (version, version))))
        if paths:
            found.append(paths[-1])
    return found


@pytest.mark.parametrize("python", _other_pythons() or [None])
def test_other_python_versions(stub, tmp_path, python):
    if python is None:
        pytest.skip("no other Python interpreter on this machine")
    code = write_code(tmp_path, """
        import asyncio, sys
        async def run(x):
            await asyncio.sleep(0)
            print(sys.version_info[:2])
            return {"y": x + 1}
    """)
    proc, _ = run_job(stub, tmp_path, make_job(code, [("y", "number")], {"x": 1}), python=python)
    assert proc.returncode == 0, proc.stderr
    assert stub.finished["p-ab12c"]["outputs"] == {"y": 2}


# -- in-process checks of the pieces ---------------------------------------------------------

def test_runner_imports_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"shipyard_runner", "__future__"}
    for path in RUNNER_PKG.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside the package
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, "%s imports %s" % (path.name, name)


def test_runner_source_parses_as_python_38():
    for path in RUNNER_PKG.rglob("*.py"):
        ast.parse(path.read_text(), str(path), feature_version=(3, 8))


def test_split_lines_and_timestamp():
    from shipyard_runner import logs

    assert logs.split_lines("a\nb\nc") == (["a", "b"], "c")
    assert logs.split_lines("a\r\n\nb\r") == (["a", ""], "b\r")
    assert logs.split_lines("\r 10%\r 20%\r 30%") == ([" 10%", " 20%"], " 30%")
    lines, rest = logs.split_lines("x" * (logs.MAX_PARTIAL + 5))
    assert lines == ["x" * logs.MAX_PARTIAL] and rest == "xxxxx"
    assert logs.timestamp(1714557600.1234) == "2024-05-01T10:00:00.123Z"
    assert TS_RE.match(logs.timestamp())


def test_sink_routes_and_batches_without_network():
    from shipyard_runner import context, logs

    sent = []
    sink = logs.LogSink(sent.append, "e1")
    sink.feed("stdout", "a")
    sink.feed("stdout", "b\nc")
    sink.feed("stderr", "e\n")
    assert sink.flush(force=True)
    assert [(ln["stream"], ln["message"]) for ln in sent[0]] == [("stdout", "ab"), ("stderr", "e")]
    assert sink.close() == []
    assert sent[1][0]["message"] == "c"

    router = logs.StreamRouter("stdout", None, echo=False)
    other = logs.LogSink(None, "e2")
    token = context.current_sink.set(other)
    try:
        router.write("routed\n")
    finally:
        context.current_sink.reset(token)
    assert [ln["message"] for ln in other.take_all()] == ["routed"]


def test_failed_sends_are_kept_and_retried():
    from shipyard_runner import logs

    attempts = []

    def flaky(batch):
        attempts.append(len(batch))
        if len(attempts) == 1:
            raise OSError("down")

    sink = logs.LogSink(flaky, "e")
    sink.add("stdout", "one")
    assert not sink.flush(force=True)
    assert sink.pending() == 1
    assert sink.flush(force=True)
    assert attempts == [1, 1]


def test_http_client_keepalive_chunked_and_redirect():
    from shipyard_runner import httpclient

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/chunked")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = "http://127.0.0.1:%d" % server.server_address[1]
        assert httpclient.request("GET", base + "/chunked").body == b"hello world"
        resp = httpclient.request("GET", base + "/redirect", max_redirects=2)
        assert resp.status == 200 and resp.body == b"hello world"
        assert httpclient.split_url("http://[::1]:8080/a?b=c") == (
            "http", "::1", 8080, "/a?b=c", "[::1]:8080")
    finally:
        httpclient.close_connections()
        server.shutdown()
        server.server_close()


def test_http_client_over_tls(tmp_path, monkeypatch):
    import shutil
    import ssl

    from shipyard_runner import httpclient

    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_PUT(self) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[::-1])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"0123456789" * 1000)
    try:
        url = "https://localhost:%d/up" % server.server_address[1]
        with open(payload, "rb") as f:
            resp = httpclient.request("PUT", url, file=f, file_size=10_000)
        assert resp.status == 200 and resp.body == (b"0123456789" * 1000)[::-1]
    finally:
        httpclient.close_connections()
        server.shutdown()
        server.server_close()
