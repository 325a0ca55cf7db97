"""Issue 11 with the unmodified official client `craft-ai-sdk==0.60.0`: it reads a
multi-step pipeline and its execution (steps with their own status, dates and I/O), and a
step's metric belongs to its execution."""

from __future__ import annotations

import json
import subprocess

import pytest

from ..helpers import ROOT, client_env, write_files

CODE = '''
def first(x):
    from shipyard import CraftAiSdk

    CraftAiSdk().record_metric_value("first_x", x)
    return {"y": x + 1}

def second(y):
    return {"z": y * 10}
'''

SCRIPT = '''
import json, sys
from craft_ai_sdk import CraftAiSdk

sdk = CraftAiSdk()
execution_id, out_path = sys.argv[1:3]
seen = {"execution": sdk.get_pipeline_execution(execution_id),
        "pipeline": sdk.get_pipeline("two-steps"),
        "output_z": sdk.get_pipeline_execution_output(execution_id, "z"),
        "metrics": sdk.get_metrics(execution_id=execution_id)}
json.dump(seen, open(out_path, "w"), default=str)
'''


@pytest.mark.compat
def test_official_client_reads_a_graph_execution(client_python, server, sdk, tmp_path):
    from shipyard.io import Input, Output

    folder = write_files(tmp_path / "code", {"steps.py": CODE})
    sdk.create_step("o-first", function_path="steps.py", function_name="first",
                    container_config={"local_folder": str(folder)},
                    inputs=[Input("x", "number")], outputs=[Output("y", "number")])
    sdk.create_step("o-second", function_path="steps.py", function_name="second",
                    container_config={"local_folder": str(folder)},
                    inputs=[Input("y", "number")], outputs=[Output("z", "number")])
    sdk.create_pipeline("two-steps", step_names=["o-first", "o-second"],
                        connections=[("o-first.y", "o-second.y")])
    run = sdk.run_pipeline("two-steps", {"x": 4})
    assert run["outputs"] == {"z": 50}
    script = tmp_path / "read.py"
    script.write_text(SCRIPT)
    out = tmp_path / "seen.json"
    proc = subprocess.run([str(client_python), str(script), run["execution_id"], str(out)],
                          env=client_env(server), capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    seen = json.loads(out.read_text())
    execution = seen["execution"]
    assert execution["status"] == "Succeeded"
    steps = execution["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [("o-first", "Succeeded"),
                                                         ("o-second", "Succeeded")]
    assert steps[1]["inputs"][0]["value"] == 5 and steps[1]["outputs"][0]["value"] == 50
    assert all(s["start_date"] and s["end_date"] for s in steps)
    assert seen["pipeline"]["steps"] == ["o-first", "o-second"]
    assert seen["output_z"]["value"] == 50
    [metric] = seen["metrics"]
    assert metric["name"] == "first_x" and metric["execution_id"] == run["execution_id"]
