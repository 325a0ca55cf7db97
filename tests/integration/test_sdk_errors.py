"""Bad input through our SDK: one exception type carrying the HTTP status, the server's
message, and nothing stored."""

from __future__ import annotations

import io
import os

import pytest
from shipyard import CraftAiSdk
from shipyard.exceptions import SdkException
from shipyard.io import Input, Output

from ..helpers import write_files

_ERRORS: list = []  # every 4xx/5xx response the SDKs received in the current test


@pytest.fixture(autouse=True)
def _record_error_responses(monkeypatch):
    """Keep the raw error responses, to compare the SDK's exceptions with what the server
    said (item 4 of issue 14)."""
    import requests

    send = requests.Session.send

    def recording(self, request, **kwargs):
        response = send(self, request, **kwargs)
        if response.status_code >= 400:
            _ERRORS.append(response)
        return response

    _ERRORS.clear()
    monkeypatch.setattr(requests.Session, "send", recording)


def _status(call) -> int:
    """The status of the SdkException `call` raises, after checking the exception carries
    the server's own `name` and `message` (and request id) from the error body."""
    _ERRORS.clear()
    with pytest.raises(SdkException) as info:
        call()
    error = info.value
    assert error.message and _ERRORS, error
    body = _ERRORS[-1].json()
    assert _ERRORS[-1].status_code == error.status_code
    assert (error.name, error.message) == (body["name"], body["message"]), (error, body)
    assert error.request_id == body["request_id"] and error.request_id in str(error)
    return error.status_code


def test_sdk_reports_bad_input(sdk, tmp_path):
    folder = write_files(tmp_path / "proj", {"main.py": "def run(n):\n    return {'m': n * 2}\n"})
    sdk.create_pipeline(pipeline_name="sdk-errors", function_path="main.py", function_name="run",
                        container_config={"local_folder": str(folder)},
                        inputs=[Input(name="n", data_type="number", is_required=True)],
                        outputs=[Output(name="m", data_type="number")])
    assert sdk.run_pipeline("sdk-errors", inputs={"n": 4})["outputs"] == {"m": 8}
    assert _status(lambda: sdk.get_step("nope")) == 404
    assert _status(lambda: sdk.get_pipeline("nope")) == 404
    assert _status(lambda: sdk.run_pipeline("sdk-errors", inputs={"n": "four"})) == 400
    assert _status(lambda: sdk.run_pipeline("sdk-errors", inputs={})) == 400
    assert _status(lambda: sdk.run_pipeline("sdk-errors", inputs={"n": 1, "x": "y" * 70_000})) == 400
    assert _status(lambda: sdk.create_pipeline(
        pipeline_name="sdk-errors", function_path="main.py", function_name="run",
        container_config={"local_folder": str(folder)})) == 409
    big = write_files(tmp_path / "big", {"main.py": "def run():\n    pass\n"})
    (big / "blob.bin").write_bytes(os.urandom(5 * 1024 * 1024 + 1))
    assert _status(lambda: sdk.create_step(
        step_name="too-big", function_path="main.py", function_name="run",
        container_config={"local_folder": str(big)})) == 413
    assert _status(lambda: sdk.upload_data_store_object(io.BytesIO(b"x"), "../escape.txt")) == 400
    assert _status(lambda: sdk.download_data_store_object("a/../../etc/passwd", io.BytesIO())) == 400
    assert _status(lambda: sdk.get_data_store_object_information("missing/file.txt")) == 404
    assert _status(lambda: sdk.delete_environment_variable("NOT_SET")) == 404
    # Shape errors from the request schemas, and the other 4xx statuses.
    assert _status(lambda: sdk.create_or_update_environment_variable("FLAG", True)) == 400
    assert _status(lambda: sdk.get_metrics(name="x", pipeline_name="a", execution_id="b")) == 400
    assert _status(lambda: sdk.create_deployment("nope", "sdk-errors-ep", "endpoint")) == 404
    deployment = sdk.create_deployment("sdk-errors", "sdk-errors-ep", "endpoint")
    assert _status(lambda: sdk.trigger_endpoint("sdk-errors-ep", "wrong-token-0123456789",
                                                {"n": 1})) in (401, 403)
    sdk.update_deployment("sdk-errors-ep", is_enabled=False)
    assert _status(lambda: sdk.trigger_endpoint("sdk-errors-ep", deployment["endpoint_token"],
                                                {"n": 1})) == 403
    assert _status(lambda: sdk.create_deployment("sdk-errors", "sdk-errors-ep", "endpoint")) == 409
    sdk.delete_deployment("sdk-errors-ep")
    assert [e["status"] for e in sdk.list_pipeline_executions("sdk-errors")] == ["Succeeded"]
    assert "too-big" not in [s["step_name"] for s in sdk.list_steps()]


def test_wrong_sdk_token(server):
    creds = server.credentials
    bad = CraftAiSdk(sdk_token="sdk_wrong", environment_url=creds["environment_url"],
                     control_url=creds["control_url"])
    assert _status(lambda: bad.list_steps()) == 401
