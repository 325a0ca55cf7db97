"""Issue 12 point 1 with the unmodified official client `craft-ai-sdk==0.60.0`: it runs a
pipeline whose step retries (made with our SDK) and reads the execution, attempts included,
exactly as any other."""

from __future__ import annotations

import json
import subprocess

import pytest

from ..helpers import ROOT, client_env, write_files
from ..integration.test_retries import COUNTED

SCRIPT = '''
import json, sys
from craft_ai_sdk import CraftAiSdk

sdk = CraftAiSdk()
out_path = sys.argv[1]
run = sdk.run_pipeline("rt-official", {"key": "rt-official", "fail_times": 1})
seen = {"run": run, "execution": sdk.get_pipeline_execution(run["execution_id"]),
        "logs": sdk.get_pipeline_execution_logs(run["execution_id"])}
json.dump(seen, open(out_path, "w"), default=str)
'''


@pytest.mark.compat
def test_official_client_runs_a_step_that_retries(client_python, server, sdk, tmp_path):
    from shipyard.io import Input, Output

    folder = write_files(tmp_path / "code", {"steps.py": COUNTED})
    sdk.create_pipeline("rt-official", function_path="steps.py", function_name="flaky",
                        container_config={"local_folder": str(folder)},
                        inputs=[Input("key", "string"), Input("fail_times", "number")],
                        outputs=[Output("runs", "number")], max_retries=1)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "seen.json"
    proc = subprocess.run([str(client_python), str(script), str(out)], env=client_env(server),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    seen = json.loads(out.read_text())
    assert seen["run"]["outputs"] == {"runs": 2}
    execution = seen["execution"]
    assert execution["status"] == "Succeeded"
    [step] = execution["steps"]
    assert [(a["number"], a["status"]) for a in step["attempts"]] == [
        (1, "Failed"), (2, "Succeeded")]
    assert [line["message"] for line in seen["logs"] if line["message"].startswith("run ")] == [
        "run 1 of rt-official", "run 2 of rt-official"]
