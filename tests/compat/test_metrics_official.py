"""F16/F17 with the unmodified official client `craft-ai-sdk==0.60.0`: step code records
metrics with it from inside real executions; a notebook-like script reads them back with
each filter, checks the outside-of-step warning, a two-scope filter error and the
resource metrics (dict and CSV)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ..helpers import ROOT, ServerProcess, write_files

STEP = '''
from craft_ai_sdk import CraftAiSdk

def train(lr):
    sdk = CraftAiSdk()
    losses = [1.0 / (1 + lr * k) for k in range(1, 6)]
    sdk.record_list_metric_values("loss", losses[:2])
    for loss in losses[2:]:
        sdk.record_list_metric_values("loss", loss)
    sdk.record_metric_value("accuracy", 0.1)
    sdk.record_metric_value("accuracy", 1 - losses[-1])   # the last value wins
    return {"sent": sdk.record_metric_value("lr", lr)}
'''

SCRIPT = '''
import json, sys, warnings
from datetime import datetime, timedelta, timezone
from craft_ai_sdk import CraftAiSdk
from craft_ai_sdk.io import Input, Output

folder, out_path = sys.argv[1:3]
sdk = CraftAiSdk()
seen = {}
sdk.create_step(step_name="official-trainer", function_path="src/train.py", function_name="train",
                inputs=[Input(name="lr", data_type="number")],
                outputs=[Output(name="sent", data_type="boolean")],
                container_config={"local_folder": folder, "requirements_path": "requirements.txt"})
sdk.create_pipeline(pipeline_name="official-trainer", step_name="official-trainer")
seen["runs"] = [sdk.run_pipeline("official-trainer", inputs={"lr": lr}) for lr in (0.5, 2.0)]
first = seen["runs"][0]["execution_id"]
seen["by_execution"] = sdk.get_metrics(execution_id=first)
seen["by_pipeline"] = sdk.get_metrics(pipeline_name="official-trainer")
seen["by_name"] = sdk.get_metrics(name="accuracy")
seen["lists"] = sdk.get_list_metrics(execution_id=first)
seen["lists_name_pipeline"] = sdk.get_list_metrics(name="loss", pipeline_name="official-trainer")
seen["by_deployment"] = sdk.get_metrics(deployment_name="no-deployment")
try:
    sdk.get_metrics(pipeline_name="official-trainer", execution_id=first)
    seen["two_scopes"] = None
except Exception as exc:
    seen["two_scopes"] = [getattr(exc, "status_code", None), str(exc)]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    seen["outside"] = [sdk.record_metric_value("x", 1), sdk.record_list_metric_values("x", [1])]
seen["outside_warnings"] = [str(w.message) for w in caught]
end = datetime.now() + timedelta(minutes=1)
resources = sdk.get_resource_metrics(end - timedelta(hours=1), end)
seen["resources"] = resources
seen["resources_csv"] = sdk.get_resource_metrics(end - timedelta(hours=1), end, csv=True).decode()
json.dump(seen, open(out_path, "w"))
'''


@pytest.mark.slow
@pytest.mark.compat
def test_metrics_with_the_official_client(client_python, tmp_path):
    folder = write_files(tmp_path / "project", {"src/train.py": STEP,
                                                "requirements.txt": "craft-ai-sdk==0.60.0\n"})
    script = tmp_path / "notebook.py"
    script.write_text(SCRIPT)
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_RESOURCE_SAMPLE_S": "0.5"}).start()
    try:
        creds = server.credentials
        env = {k: v for k, v in os.environ.items()
               if k not in ("CRAFT_AI_EXECUTION_ID", "SHIPYARD_EXECUTION_ID")}
        env.update(CRAFT_AI_ENVIRONMENT_URL=creds["environment_url"],
                   CRAFT_AI_SDK_TOKEN=creds["sdk_token"], CRAFT_AI_CONTROL_URL=creds["control_url"])
        out = tmp_path / "seen.json"
        proc = subprocess.run([str(client_python), str(script), str(folder), str(out)], env=env,
                              capture_output=True, text=True, timeout=900, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        seen = json.loads(out.read_text())
    finally:
        server.stop()

    first = seen["runs"][0]["execution_id"]
    assert [r["outputs"] for r in seen["runs"]] == [{"sent": True}, {"sent": True}]
    singles = {m["name"]: m for m in seen["by_execution"]}
    assert set(singles) == {"accuracy", "lr"}
    assert singles["accuracy"]["value"] == pytest.approx(1 - 1 / (1 + 0.5 * 5))
    assert singles["accuracy"]["pipeline_name"] == "official-trainer"
    assert singles["accuracy"]["execution_id"] == first
    assert len(seen["by_pipeline"]) == 4 and {m["name"] for m in seen["by_name"]} == {"accuracy"}
    assert len(seen["by_name"]) == 2
    [loss] = seen["lists"]
    assert loss["values"] == pytest.approx([1 / (1 + 0.5 * k) for k in range(1, 6)])
    assert loss["value"] == loss["values"]  # the seed's and 0.60.0's documented key
    assert len(seen["lists_name_pipeline"]) == 2
    assert seen["by_deployment"] == []
    status, message = seen["two_scopes"]
    assert status == 400 and "at most one" in message
    assert seen["outside"] == [False, False]
    assert any("outside" in w for w in seen["outside_warnings"]), seen["outside_warnings"]
    resources = seen["resources"]
    assert set(resources) == {"additional_data", "metrics"}
    assert resources["additional_data"]["total_ram"] > 0
    assert seen["resources_csv"].startswith("timestamp,timestamp_ms,worker,metric,value")
