"""Issue 12 point 1: retries of a failing step (max_retries, retry_delay_s), through our SDK
and plain HTTP."""

from __future__ import annotations

import pytest
from shipyard.io import Input, Output

from ..helpers import assert_error, create_step_http, write_files

FLAKY = '''
def run(x):
    return {"y": x + 1}
'''


def test_step_fields_are_stored_and_returned(sdk, api, tmp_path):
    folder = write_files(tmp_path, {"main.py": FLAKY})
    created = sdk.create_step("rt-fields", function_path="main.py", function_name="run",
                              container_config={"local_folder": str(folder)},
                              inputs=[Input("x", "number")], outputs=[Output("y", "number")],
                              max_retries=3, retry_delay_s=5)
    assert created["parameters"]["max_retries"] == 3
    assert created["parameters"]["retry_delay_s"] == 5
    got = api.request("GET", "/steps/rt-fields").json()
    assert (got["parameters"]["max_retries"], got["parameters"]["retry_delay_s"]) == (3, 5)
    # Left out: no retry, as before the fields existed.
    plain = create_step_http(api, "rt-plain", {"main.py": FLAKY})
    assert (plain["parameters"]["max_retries"], plain["parameters"]["retry_delay_s"]) == (0, 0)
    # A pipeline created from a function carries them to its step.
    sdk.create_pipeline("rt-fn", function_path="main.py", function_name="run",
                        container_config={"local_folder": str(folder)},
                        inputs=[Input("x", "number")], outputs=[Output("y", "number")],
                        max_retries=1, retry_delay_s=0)
    assert sdk.get_pipeline("rt-fn")["parameters"]["max_retries"] == 1


@pytest.mark.parametrize("fields, word", [
    ({"max_retries": "-1"}, "max_retries"),
    ({"max_retries": "11"}, "max_retries"),
    ({"max_retries": "1.5"}, "max_retries"),
    ({"max_retries": "two"}, "max_retries"),
    ({"retry_delay_s": "-5"}, "retry_delay_s"),
    ({"retry_delay_s": "3601"}, "retry_delay_s"),
    ({"retry_delay_s": "99999999999999999999999"}, "retry_delay_s"),
])
def test_bad_retry_values_are_400_in_forms(api, fields, word):
    body = assert_error(api.request("POST", "/steps", data={
        "step_name": "rt-bad", "function_path": "main.py", "function_name": "run", **fields},
        files={"step_file": ("step_file", b"not read")}), 400, "BadRequest")
    assert word in body["message"], body


@pytest.mark.parametrize("value", [-1, 11, 1.5, True, "x", [1], 10**30])
def test_bad_retry_values_are_400_in_json(api, value):
    for kind, name_field in (("steps", "step_name"), ("pipelines", "pipeline_name")):
        body = assert_error(api.request("POST", f"/{kind}", json={
            name_field: "rt-bad", "function_path": "main.py", "function_name": "run",
            "max_retries": value}), 400, "BadRequest")
        assert "max_retries" in body["message"], body


def test_sdk_refuses_a_non_integer_before_sending(sdk):
    with pytest.raises(ValueError, match="max_retries"):
        sdk.create_step("rt-float", function_path="main.py", function_name="run",
                        max_retries=1.5)
