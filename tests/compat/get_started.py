"""The seed's Get Started, parts 1 to 3, as a user types it in a notebook.

Run with the client under test importable: `python get_started.py MODULE FOLDER OUT.json`
where MODULE is `shipyard` or `craft_ai_sdk`; the environment URL and SDK token come from
the CRAFT_AI_* / SHIPYARD_* variables. Prints nothing on success; writes what it observed."""

from __future__ import annotations

import importlib
import json
import sys
from io import BytesIO

module_name, folder, out_path = sys.argv[1:4]
sdk_module = importlib.import_module(module_name)
io_module = importlib.import_module(module_name + ".io")
CraftAiSdk, Input, Output = sdk_module.CraftAiSdk, io_module.Input, io_module.Output

sdk = CraftAiSdk()
observed: dict = {"who_am_i": sdk.who_am_i()}

# Part 1: hello world ---------------------------------------------------------------------
sdk.create_step(
    step_name="part-1-hello-world",
    function_path="src/part-1-helloWorld.py",
    function_name="helloWorld",
    container_config={"local_folder": folder},
)
observed["steps"] = sdk.list_steps()
observed["step"] = sdk.get_step("part-1-hello-world")
observed["pipeline"] = sdk.create_pipeline(
    pipeline_name="part-1-hello-world", step_name="part-1-hello-world"
)
run = sdk.run_pipeline(pipeline_name="part-1-hello-world")
observed["run1"] = run
observed["logs1"] = sdk.get_pipeline_execution_logs(
    execution_id=run["execution_id"]
)
observed["executions1"] = sdk.list_pipeline_executions("part-1-hello-world")

# Part 2: iris training with the data store used from inside the step -------------------
import pandas as pd  # noqa: E402
from sklearn import datasets  # noqa: E402

iris = datasets.load_iris(as_frame=True)
iris_df = pd.concat([iris.data, iris.target], axis=1)
file_buffer = BytesIO(iris_df.to_parquet())
sdk.upload_data_store_object(
    filepath_or_buffer=file_buffer,
    object_path_in_datastore="get_started/dataset/iris.parquet",
)
sdk.delete_pipeline(pipeline_name="part-1-hello-world")
sdk.delete_step(step_name="part-1-hello-world")
sdk.create_step(
    step_name="part-2-iristrain",
    function_path="src/part-2-iris-train.py",
    function_name="trainIris",
    description="This function creates a classifier model for iris",
    container_config={"requirements_path": "requirements.txt", "local_folder": folder},
)
sdk.create_pipeline(pipeline_name="part-2-iristrain", step_name="part-2-iristrain")
run2 = sdk.run_pipeline(pipeline_name="part-2-iristrain")
observed["run2"] = run2
observed["logs2"] = sdk.get_pipeline_execution_logs(
    execution_id=run2["execution_id"]
)
observed["model_info"] = sdk.get_data_store_object_information(
    "get_started/models/iris_knn_model.joblib"
)

# Part 3: prediction with json and string inputs and a json output ------------------------
import numpy as np  # noqa: E402

prediction_input = Input(name="input_data", data_type="json")
model_input = Input(name="input_model_path", data_type="string")
prediction_output = Output(name="predictions", data_type="json")
sdk.create_step(
    step_name="part-3-irisio",
    function_path="src/part-3-iris-predict.py",
    function_name="predictIris",
    description="This function retrieves the trained model and classifies the input data.",
    inputs=[prediction_input, model_input],
    outputs=[prediction_output],
    container_config={"local_folder": folder, "requirements_path": "requirements.txt"},
)
observed["pipeline3"] = sdk.create_pipeline(pipeline_name="part-3-irisio", step_name="part-3-irisio")
np.random.seed(0)
indices = np.random.permutation(150)
iris_X, iris_y = datasets.load_iris(return_X_y=True, as_frame=True)
iris_X_test = iris_X.loc[indices[90:120], :]
new_data = iris_X_test.to_dict(orient="index")
inputs = {
    "input_data": new_data,
    "input_model_path": "get_started/models/iris_knn_model.joblib",
}
output_predictions = sdk.run_pipeline(pipeline_name="part-3-irisio", inputs=inputs)
observed["run3"] = output_predictions
observed["expected3"] = iris_y.loc[indices[90:120]].tolist()
observed["execution3"] = sdk.get_pipeline_execution(
    execution_id=output_predictions["execution_id"]
)
with open(out_path, "w") as f:
    json.dump(observed, f, default=str)
