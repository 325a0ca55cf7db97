"""docs/openapi.json describes what the API validates: schemathesis generates requests from
the document for the operations whose schemas were looser than their handlers, sends them to
a live server and fails if one the document allows is refused (positive_data_acceptance), or
if an answer's status or body is not the documented one. conformance.toml lists, with the
reason, the few operations whose remaining rules no JSON Schema can state (there a 400 is
allowed; the other checks still apply). Fixed seed, derandomized, bounded examples."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ..helpers import ROOT, ServerProcess
from .conftest import FIGURES

HERE = Path(__file__).resolve().parent
SEED = 20261201
CHECKS = "positive_data_acceptance,response_schema_conformance,status_code_conformance"
ENV = "/environments/{project_name}/{environment_name}/api/v1"
OPERATIONS = [
    "POST /api/v1/auth/refresh",
    "POST /api/v1/users",
    "POST /api/v1/projects",
    "PATCH /api/v1/projects/{project_name}",
    "DELETE /api/v1/projects/{project_name}",
    "POST /api/v1/projects/{project_name}/environments",
    "PUT /api/v1/projects/{project_name}/members/{email}",
    f"PUT {ENV}/environment-variables",
    f"GET {ENV}/metrics/single-value",
    f"GET {ENV}/metrics/list-values",
    f"PUT {ENV}/metrics/single-value/{{name}}",
    f"POST {ENV}/metrics/list-values/{{name}}",
    f"POST {ENV}/data-store/information",
    f"GET {ENV}/data-store/list",
    f"GET {ENV}/data-store/upload",
    f"POST {ENV}/data-store/upload/multipart",
    f"POST {ENV}/data-store/upload/multipart/part",
    f"POST {ENV}/data-store/upload/multipart/end",
    f"POST {ENV}/data-store/download",
    f"DELETE {ENV}/data-store/delete",
    f"GET {ENV}/resource-metrics",
    f"POST {ENV}/steps",
    f"POST {ENV}/pipelines",
    f"POST {ENV}/endpoints",
    f"POST {ENV}/periodic-deployment",
    f"PATCH {ENV}/deployments/{{name}}",
    f"POST {ENV}/executions/{{execution_id}}/logs",
    f"POST {ENV}/steps/{{step_name}}/logs",
    f"POST {ENV}/pipelines/{{pipeline_name}}/logs",
    f"POST {ENV}/deployments/{{name}}/logs",
]


@pytest.fixture(scope="module")
def conformance_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("conformance-data")).start()
    yield server
    server.stop()


def test_the_document_describes_what_the_api_validates(conformance_server, tmp_path):
    server = conformance_server
    r = requests.post(server.url + "/api/v1/auth/refresh",
                      json={"refresh_token": server.credentials["sdk_token"]}, timeout=10)
    token = r.json()["access_token"]
    command = [str(Path(sys.executable).parent / "st"), "--config-file",
               str(HERE / "conformance.toml"), "run", str(ROOT / "docs" / "openapi.json"),
               "--url", server.url, "--seed", str(SEED), "--generation-deterministic",
               "--mode", "positive", "--phases", "examples,coverage,fuzzing",
               "--max-examples", "12", "--continue-on-failure",
               # One worker: see test_openapi_fuzz.py (hypothesis on this machine's Python).
               "--workers", "1", "--checks", CHECKS, "--request-timeout", "30",
               "--no-color",
               "--header", f"Authorization: Bearer {token}"]
    for name in OPERATIONS:
        command += ["--include-name", name]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    output = proc.stdout + proc.stderr
    (tmp_path / "st-output.txt").write_text(output)
    tested = re.search(r"Tested:\s*(\d+)", output)
    cases = re.search(r"(\d+) generated", output)
    FIGURES.append(f"conformance: {tested.group(1) if tested else 0}/{len(OPERATIONS)} "
                   f"operations, {cases.group(1) if cases else 0} test cases, seed {SEED}")
    assert proc.returncode == 0, output[-8000:]
    assert tested and int(tested.group(1)) == len(OPERATIONS), output[-3000:]
    assert server.proc.poll() is None, "the server died under the fuzz"
