"""The seed's examples as written (issue 14, item 3), run by the same notebook-like script
with the unmodified official client `craft-ai-sdk==0.60.0` and with our SDK:

- create_or_update_environment_variable(..., environment_variable_value=6) stores "6";
- an InputSource naming no source is an endpoint input;
- the compatibility table holds for runs as for deployments: an environment variable feeds
  only non-file inputs, a data store file only file inputs, each a 400 before anything runs;
- get_list_metrics entries carry `value` (and `values`);
- the environment-variable deployment triggered with number_a/number_b (mapped elsewhere)
  runs, the extra inputs noted in the execution's logs."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ..helpers import ROOT, ServerProcess, write_files

STEP = '''
def add(number1, number2):
    return {"number3": number1 + number2}


def read(doc, n):
    return {"size": len(open(doc["path"]).read()) * n}
'''

SCRIPT = '''
import io, json, sys
client, folder, out_path, prefix = sys.argv[1:5]
if client == "official":
    from craft_ai_sdk import CraftAiSdk
    from craft_ai_sdk.io import Input, InputSource, Output
else:
    from shipyard import CraftAiSdk
    from shipyard.io import Input, InputSource, Output
sdk = CraftAiSdk()
seen = {}


def status_of(call):
    try:
        call()
    except Exception as exc:
        return [getattr(exc, "status_code", None), str(exc)]
    return None


# Environment variables given as numbers, as the seed writes them.
sdk.create_or_update_environment_variable(
    environment_variable_name=prefix + "_INPUT1", environment_variable_value=6)
sdk.create_or_update_environment_variable(
    environment_variable_name=prefix + "_INPUT2", environment_variable_value=4)
seen["variables"] = {v["name"]: v["value"] for v in sdk.list_environment_variables()}

config = {"local_folder": folder, "requirements_path": None}
sdk.create_step(step_name=prefix + "-add", function_path="main.py", function_name="add",
                inputs=[Input(name="number1", data_type="number"),
                        Input(name="number2", data_type="number")],
                outputs=[Output(name="number3", data_type="number")], container_config=config)
sdk.create_pipeline(pipeline_name=prefix + "-add", step_name=prefix + "-add")

# The seed's environment-variable deployment, triggered with the inputs it shows.
env_deployment = sdk.create_deployment(
    execution_rule="endpoint", pipeline_name=prefix + "-add",
    deployment_name=prefix + "-env",
    inputs_mapping=[
        InputSource(step_input_name="number1", environment_variable_name=prefix + "_INPUT1"),
        InputSource(step_input_name="number2", environment_variable_name=prefix + "_INPUT2")])
result = sdk.trigger_endpoint(endpoint_name=prefix + "-env",
                              endpoint_token=env_deployment["endpoint_token"],
                              inputs={"number_a": 9, "number_b": 6})
seen["env_outputs"] = result["outputs"]
seen["env_logs"] = [line["message"] for line in
                    sdk.get_pipeline_execution_logs(execution_id=result["execution_id"])]

# An InputSource naming no source: an endpoint input of the same name.
bare = sdk.create_deployment(
    execution_rule="endpoint", pipeline_name=prefix + "-add",
    deployment_name=prefix + "-bare",
    inputs_mapping=[InputSource(step_input_name="number1"),
                    InputSource(step_input_name="number2", constant_value=3)])
seen["bare_mapping"] = sdk.get_deployment(prefix + "-bare")["inputs_mapping"]
seen["bare_outputs"] = sdk.trigger_endpoint(
    endpoint_name=prefix + "-bare", endpoint_token=bare["endpoint_token"],
    inputs={"number1": 2})["outputs"]

# The compatibility table, for a run as for a deployment.
sdk.create_step(step_name=prefix + "-read", function_path="main.py", function_name="read",
                inputs=[Input(name="doc", data_type="file"), Input(name="n", data_type="number")],
                outputs=[Output(name="size", data_type="number")], container_config=config)
sdk.create_pipeline(pipeline_name=prefix + "-read", step_name=prefix + "-read")
sdk.upload_data_store_object(io.BytesIO(b"abc"), prefix + "/doc.txt")
env_for_file = [InputSource(pipeline_input_name="doc", environment_variable_name=prefix + "_INPUT1"),
                InputSource(pipeline_input_name="n", constant_value=1)]
store_for_number = [InputSource(pipeline_input_name="doc", datastore_path=prefix + "/doc.txt"),
                    InputSource(pipeline_input_name="n", datastore_path=prefix + "/doc.txt")]
seen["refused"] = [
    status_of(lambda: sdk.run_pipeline(prefix + "-read", inputs_mapping=env_for_file)),
    status_of(lambda: sdk.run_pipeline(prefix + "-read", inputs_mapping=store_for_number)),
    status_of(lambda: sdk.create_deployment(
        execution_rule="endpoint", pipeline_name=prefix + "-read",
        deployment_name=prefix + "-bad1", inputs_mapping=env_for_file)),
    status_of(lambda: sdk.create_deployment(
        execution_rule="periodic", pipeline_name=prefix + "-read", schedule="0 0 * * *",
        deployment_name=prefix + "-bad2", inputs_mapping=store_for_number)),
]
seen["executions_after_refusals"] = len(sdk.list_pipeline_executions(prefix + "-read"))
seen["allowed_run"] = sdk.run_pipeline(prefix + "-read", inputs_mapping=[
    InputSource(pipeline_input_name="doc", datastore_path=prefix + "/doc.txt"),
    InputSource(pipeline_input_name="n", environment_variable_name=prefix + "_INPUT2")])["outputs"]
json.dump(seen, open(out_path, "w"))
'''


@pytest.mark.compat
def test_seed_examples_with_both_clients(client_python, tmp_path):
    folder = write_files(tmp_path / "project", {"main.py": STEP})
    script = tmp_path / "notebook.py"
    script.write_text(SCRIPT)
    server = ServerProcess(tmp_path / "data").start()
    results = {}
    try:
        creds = server.credentials
        env = {k: v for k, v in os.environ.items()
               if k not in ("CRAFT_AI_EXECUTION_ID", "SHIPYARD_EXECUTION_ID")}
        env.update(CRAFT_AI_ENVIRONMENT_URL=creds["environment_url"],
                   CRAFT_AI_SDK_TOKEN=creds["sdk_token"], CRAFT_AI_CONTROL_URL=creds["control_url"])
        for client, prefix in (("official", "off"), ("ours", "our")):
            out = tmp_path / f"{client}.json"
            proc = subprocess.run([str(client_python), str(script), client, str(folder), str(out),
                                   prefix], env=env, capture_output=True, text=True, timeout=900,
                                  cwd=ROOT)
            assert proc.returncode == 0, client + proc.stdout[-3000:] + proc.stderr[-5000:]
            results[client] = (prefix, json.loads(out.read_text()))
    finally:
        server.stop()

    for client, (prefix, seen) in results.items():
        assert seen["variables"][f"{prefix}_INPUT1"] == "6", client
        assert seen["variables"][f"{prefix}_INPUT2"] == "4", client
        assert seen["env_outputs"] == {"number3": 10}, client
        assert any("number_a, number_b" in line and "not used" in line
                   for line in seen["env_logs"]), (client, seen["env_logs"])
        mapping = {m["pipeline_input_name"]: m for m in seen["bare_mapping"]}
        assert mapping["number1"]["endpoint_input_name"] == "number1", (client, mapping)
        assert seen["bare_outputs"] == {"number3": 5}, client
        messages = [refusal[1] for refusal in seen["refused"]]
        assert [refusal[0] for refusal in seen["refused"]] == [400] * 4, (client, seen["refused"])
        assert "environment_variable mapping cannot carry the file input 'doc'" in messages[0]
        assert "datastore mapping cannot carry the number input 'n'" in messages[1], client
        assert "environment_variable mapping cannot carry the file" in messages[2], client
        assert "datastore mapping cannot carry the number" in messages[3], client
        assert seen["executions_after_refusals"] == 0, client
        assert seen["allowed_run"] == {"size": 12}, client
