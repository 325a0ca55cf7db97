"""The low-latency examples of the documentation with our SDK and the official client:
preloaded module, globals across executions, deployment logs, 20 one-second executions
five at a time."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from ..helpers import ROOT, ServerProcess, client_env, write_files

COUNTER = '''import os, time
count = 0
loaded_data = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]

print("Init count at : " + str(count))

def my_step_source_code():
    global loaded_data, count
    count += 1
    print(count, loaded_data)
    return {"count": count}
'''
CODE_STEP = '''from datetime import datetime
import time

def my_fct():
    print(f"Hello: {datetime.now().isoformat()}")
    time.sleep(1)
    print(f"World: {datetime.now().isoformat()}!")
'''


@pytest.mark.compat
@pytest.mark.parametrize("module", ["shipyard", "craft_ai_sdk"])
def test_low_latency_examples(module, client_python, tmp_path):
    folder = write_files(tmp_path / "src", {"src/counter.py": COUNTER, "code_step.py": CODE_STEP})
    server = ServerProcess(tmp_path / "data").start()
    try:
        env = client_env(server)
        out = tmp_path / "out.json"
        proc = subprocess.run([str(client_python), str(ROOT / "tests/compat/low_latency_client.py"),
                               module, str(folder), str(out)],
                              env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        seen = json.loads(out.read_text())
    finally:
        server.stop()
    assert seen["deployment"]["status"] == "up"
    assert [r["outputs"]["count"] for r in seen["runs"]] == [1, 2]
    messages = [log["message"] for log in seen["deployment_logs"]]
    assert "Init count at : 0" in messages
    assert seen["parallel_results"] == 20
    # From each execution's own logs: never more than 5 running at once.
    spans = []
    for logs in seen["parallel_logs"]:
        stamps = [dt.datetime.fromisoformat(e["message"].split(": ", 1)[1].rstrip("!"))
                  for e in logs if e["message"].startswith(("Hello", "World"))]
        assert len(stamps) == 2
        spans.append((stamps[0], stamps[1]))
    peak = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert peak == 5, peak
    assert seen["all_done_s"] >= 4.0
