"""The fork server's spare (worker_image/shipyard_runner/forkserver.py), run as a real
process without the sandbox: after each connection it forks the next execution's keeper
and runner ahead, hands the next connection to them (SCM_RIGHTS), keeps one such pair at
rest, and exits with it once retired (end of its stdin)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

RUNNER_ROOT = Path(__file__).resolve().parents[2] / "worker_image"
STEP = """import os

CALLS = []


def run(n):
    CALLS.append(n)
    return {"calls": len(CALLS), "pid": os.getpid()}
"""


def _until(check, what: str, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _lines(conn: socket.socket, count: int) -> list[dict]:
    data = b""
    while data.count(b"\n") < count:
        chunk = conn.recv(4096)
        assert chunk, data
        data += chunk
    return [json.loads(line) for line in data.splitlines()]


def _execute(sock_path: Path, tmp: Path, code: Path, n: int) -> dict:
    """One execution through the fork server; its result (no API: result.json)."""
    work = tmp / f"work-{n}"
    work.mkdir()
    job = work / "job.json"
    job.write_text(json.dumps({
        "execution_id": f"e-{n}", "code_dir": str(code), "function_path": "main.py",
        "function_name": "run", "inputs": {"n": n}, "input_data_types": {"n": "number"},
        "outputs": [{"name": "calls", "data_type": "number"},
                    {"name": "pid", "data_type": "number"}]}))
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(30)
        conn.connect(str(sock_path))
        conn.sendall(json.dumps({"job": str(job), "cwd": str(work), "code_dir": str(code),
                                 "env": {"PATH": os.environ.get("PATH", "")},
                                 "log": str(work / "runner.log")}).encode() + b"\n")
        started, ended = _lines(conn, 2)
    assert isinstance(started.get("pid"), int), started
    assert ended == {"exit": 3}, (ended, (work / "runner.log").read_text())  # unreported
    return json.loads((work / "result.json").read_text())["finish"]


def test_the_fork_server_keeps_one_spare_and_retires_with_it(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "main.py").write_text(STEP)
    sock_path = tmp_path / "fs.sock"
    env = dict(os.environ, PYTHONPATH=str(RUNNER_ROOT), PYTHONUNBUFFERED="1")
    server = subprocess.Popen([sys.executable, "-s", "-m", "shipyard_runner", "forkserver",
                               "--socket", str(sock_path)], cwd=tmp_path, env=env,
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _until(sock_path.exists, "no socket")
        proc = psutil.Process(server.pid)
        spare = _until(lambda: (lambda c: c if len(c) == 2 else None)(
            proc.children(recursive=True)), "no spare keeper with its runner")
        results = [_execute(sock_path, tmp_path, code, n) for n in range(3)]
        # Each execution in a process of its own that ran nothing before (the first one
        # the spare forked before any connection came).
        assert [r["outputs"]["calls"] for r in results] == [1, 1, 1], results
        assert len({r["outputs"]["pid"] for r in results}) == 3, results
        assert results[0]["outputs"]["pid"] in {p.pid for p in spare}, (results, spare)
        _until(lambda: len(proc.children(recursive=True)) == 2, "not one spare at rest")
        pair = proc.children(recursive=True)
        server.stdin.close()  # retired: the spare goes, then the fork server
        assert server.wait(15) == 0, server.stderr.read()
        _, alive = psutil.wait_procs(pair, timeout=10)
        assert not alive, alive
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(5)
