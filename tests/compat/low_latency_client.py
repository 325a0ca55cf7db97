"""The documentation's low-latency and parallelism examples, as a client script.

`python low_latency_client.py MODULE FOLDER OUT.json`."""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time

module_name, folder, out_path = sys.argv[1:4]
CraftAiSdk = importlib.import_module(module_name).CraftAiSdk
io_module = importlib.import_module(module_name + ".io")

sdk = CraftAiSdk()
observed: dict = {}

sdk.create_pipeline(
    pipeline_name="counter",
    function_path="src/counter.py",
    function_name="my_step_source_code",
    container_config={"local_folder": folder},
    outputs=[io_module.Output(name="count", data_type="number")],
)
sdk.create_deployment(execution_rule="endpoint", pipeline_name="counter",
                      deployment_name="counter-ll", mode="low_latency")
info = sdk.get_deployment("counter-ll")
observed["deployment"] = info
observed["runs"] = [sdk.trigger_endpoint("counter-ll", info["endpoint_token"])
                    for _ in range(2)]
time.sleep(1.5)  # deployment logs are shipped in batches
observed["deployment_logs"] = sdk.get_deployment_logs("counter-ll")

sdk.create_pipeline(
    pipeline_name="my-pipeline-name",
    function_path="code_step.py",
    function_name="my_fct",
    container_config={"local_folder": folder},
)
sdk.create_deployment(execution_rule="endpoint", pipeline_name="my-pipeline-name",
                      deployment_name="my-deployment-name", mode="low_latency",
                      enable_parallel_executions=True, max_parallel_executions_per_pod=5)
endpoint_info = sdk.get_deployment("my-deployment-name")
observed["parallel_deployment"] = endpoint_info
start = time.monotonic()
ids = [sdk.trigger_endpoint("my-deployment-name", endpoint_info["endpoint_token"],
                            wait_for_completion=False)["execution_id"] for _ in range(20)]
observed["trigger_all_s"] = time.monotonic() - start
results = []
lock = threading.Lock()


def fetch(execution_id: str) -> None:
    res = sdk.retrieve_endpoint_results("my-deployment-name", execution_id,
                                        endpoint_info["endpoint_token"])
    with lock:
        results.append(res)


threads = [threading.Thread(target=fetch, args=(i,)) for i in ids]
for t in threads:
    t.start()
for t in threads:
    t.join(120)
observed["all_done_s"] = time.monotonic() - start
observed["parallel_results"] = len(results)
observed["parallel_logs"] = [sdk.get_pipeline_execution_logs(execution_id=i) for i in ids]
with open(out_path, "w") as f:
    json.dump(observed, f, default=str)
