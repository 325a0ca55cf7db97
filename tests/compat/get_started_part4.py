"""The seed's Get Started part 4: an endpoint with a data-store file input and a renamed
output, called with the SDK and with plain `requests` as the documentation shows; and the
periodic retraining deployment writing the model to the data store.

`python get_started_part4.py MODULE FOLDER OUT.json` (run after parts 1-3)."""

from __future__ import annotations

import importlib
import json
import sys
import time

import requests

module_name, folder, out_path = sys.argv[1:4]
sdk_module = importlib.import_module(module_name)
io_module = importlib.import_module(module_name + ".io")
CraftAiSdk = sdk_module.CraftAiSdk
Input, Output = io_module.Input, io_module.Output
InputSource, OutputDestination = io_module.InputSource, io_module.OutputDestination

sdk = CraftAiSdk()
observed: dict = {}

prediction_input = Input(name="input_data", data_type="json")
model_input = Input(name="input_model", data_type="file")
prediction_output = Output(name="predictions", data_type="json")
sdk.create_step(
    step_name="part-4-iris-deployment",
    function_path="src/part-4-iris-predict.py",
    function_name="predictIris",
    description="This function retrieves the trained model and classifies the input data.",
    inputs=[prediction_input, model_input],
    outputs=[prediction_output],
    container_config={"local_folder": folder, "requirements_path": "requirements.txt"},
)
sdk.create_pipeline(pipeline_name="part-4-iris-deployment", step_name="part-4-iris-deployment")

# What the UI wizard does in the documentation, through the SDK.
endpoint = sdk.create_deployment(
    execution_rule="endpoint",
    pipeline_name="part-4-iris-deployment",
    deployment_name="part-4-iris-deployment",
    mode="elastic",
    inputs_mapping=[
        InputSource(pipeline_input_name="input_data", endpoint_input_name="input_data"),
        InputSource(pipeline_input_name="input_model",
                    datastore_path="get_started/models/iris_knn_model.joblib"),
    ],
    outputs_mapping=[
        OutputDestination(pipeline_output_name="predictions", endpoint_output_name="iris_type"),
    ],
)
deployment = sdk.get_deployment("part-4-iris-deployment")
observed["deployment"] = deployment

import numpy as np  # noqa: E402
from sklearn import datasets  # noqa: E402

np.random.seed(0)
indices = np.random.permutation(150)
iris_X, iris_y = datasets.load_iris(return_X_y=True, as_frame=True)
iris_X_test = iris_X.loc[indices[90:120], :]
new_data = iris_X_test.to_dict(orient="index")
inputs = {"input_data": new_data}
observed["expected"] = iris_y.loc[indices[90:120]].tolist()

# The documentation's plain HTTP call.
endpoint_url = sdk.base_environment_url + "/endpoints/part-4-iris-deployment"
endpoint_token = deployment["endpoint_token"]
request = requests.post(endpoint_url, headers={"Authorization": f"EndpointToken {endpoint_token}"},
                        json=inputs)
observed["http_status"] = request.status_code
observed["http_outputs"] = request.json()["outputs"]

# And through the SDK.
observed["sdk_result"] = sdk.trigger_endpoint(
    "part-4-iris-deployment", endpoint_token, inputs=inputs, wait_for_completion=True)
no_wait = sdk.trigger_endpoint("part-4-iris-deployment", endpoint_token, inputs=inputs,
                               wait_for_completion=False)
observed["retrieved"] = sdk.retrieve_endpoint_results(
    "part-4-iris-deployment", no_wait["execution_id"], endpoint_token)
new_token = sdk.generate_new_endpoint_token("part-4-iris-deployment")
observed["new_token_differs"] = new_token["endpoint_token"] != endpoint_token
try:
    sdk.trigger_endpoint("part-4-iris-deployment", endpoint_token, inputs=inputs)
    observed["old_token"] = "accepted"
except Exception as exc:  # noqa: BLE001
    observed["old_token"] = getattr(exc, "status_code", repr(exc))

# Periodic retraining, writing the model where the endpoint reads it.
train_output = Output(name="model", data_type="file")
sdk.create_step(
    step_name="part-4-iristrain",
    function_path="src/part-4-iris-predict.py",
    function_name="trainIris",
    container_config={"local_folder": folder, "requirements_path": "requirements.txt"},
    outputs=[train_output],
)
sdk.create_pipeline(pipeline_name="part-4-iristrain", step_name="part-4-iristrain")
sdk.create_deployment(
    execution_rule="periodic",
    pipeline_name="part-4-iristrain",
    deployment_name="part-4-iristrain-every-minute",
    schedule="* * * * *",
    outputs_mapping=[OutputDestination(
        pipeline_output_name="model", datastore_path="get_started/models/iris_knn_model.joblib")],
)
periodic = sdk.get_deployment("part-4-iristrain-every-minute")
observed["periodic"] = periodic
before = sdk.get_data_store_object_information("get_started/models/iris_knn_model.joblib")
deadline = time.monotonic() + 150
executions = []
while time.monotonic() < deadline:
    executions = [e for e in sdk.list_pipeline_executions("part-4-iristrain")
                  if e.get("status") in ("Succeeded", "Failed")]
    if executions:
        break
    time.sleep(2)
observed["periodic_executions"] = executions
observed["model_before"] = before
observed["model_after"] = sdk.get_data_store_object_information(
    "get_started/models/iris_knn_model.joblib")
with open(out_path, "w") as f:
    json.dump(observed, f, default=str)
