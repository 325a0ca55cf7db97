"""Issue 12 points 2 and 3: re-running an execution from a step, and the step cache,
through our SDK and plain HTTP on the embedded backend. Each step's code writes a marker
object to the data store every time it runs; the tests count the markers."""

from __future__ import annotations

import io
import time
import uuid

import pytest
from shipyard.io import Input, InputSource, Output

from ..helpers import Api, assert_error, write_files

CODE = '''
import io
import os

from shipyard import CraftAiSdk


def _mark(tag, name):
    CraftAiSdk().upload_data_store_object(
        io.BytesIO(b"ran"), f"markers/{tag}/{name}/{os.urandom(6).hex()}")


def first(tag, text):
    _mark(tag, "first")
    with open("a.txt", "w") as f:
        f.write(text)
    return {"data": {"path": "a.txt"}, "n": len(text)}


def second(tag, data, n):
    _mark(tag, "second")
    with open(data["path"]) as f:
        text = f.read()
    with open("b.txt", "w") as f:
        f.write(f"{text.upper()}:{n}")
    return {"data2": {"path": "b.txt"}}


def third(tag, data2):
    _mark(tag, "third")
    sdk = CraftAiSdk()
    names = [o["path"] for o in sdk.list_data_store_objects()]
    if f"flags/{tag}/ok" not in names:
        raise RuntimeError("the flag is not set")
    with open(data2["path"]) as f:
        return {"result": f.read()}


def flaky(tag):
    _mark(tag, "flaky")
    names = [o["path"] for o in CraftAiSdk().list_data_store_objects()]
    if sum(n.startswith(f"markers/{tag}/flaky/") for n in names) < 2:
        raise RuntimeError("fails on its first attempt")
    with open("f.txt", "w") as f:
        f.write("from the second attempt")
    return {"data2": {"path": "f.txt"}}


def cached(tag, x, f):
    _mark(tag, "cached")
    sdk = CraftAiSdk()
    sdk.record_metric_value("calls", 1)
    with open(f["path"]) as fh:
        text = fh.read()
    with open("rev.txt", "w") as out:
        out.write(text[::-1])
    return {"y": x * 2, "rev": {"path": "rev.txt"}}


def after(y, rev):
    with open(rev["path"]) as fh:
        return {"summary": f"{y}/{fh.read()}"}
'''

DECLARED = {
    "first": ([Input("tag", "string"), Input("text", "string")],
              [Output("data", "file"), Output("n", "number")]),
    "second": ([Input("tag", "string"), Input("data", "file"), Input("n", "number")],
               [Output("data2", "file")]),
    "third": ([Input("tag", "string"), Input("data2", "file")], [Output("result", "string")]),
    "flaky": ([Input("tag", "string")], [Output("data2", "file")]),
    "cached": ([Input("tag", "string"), Input("x", "number"), Input("f", "file")],
               [Output("y", "number"), Output("rev", "file")]),
    "after": ([Input("y", "number"), Input("rev", "file")], [Output("summary", "string")]),
}
CHAIN = [("rr-first.data", "rr-second.data"), ("rr-first.n", "rr-second.n"),
         ("rr-second.data2", "rr-third.data2")]


@pytest.fixture(scope="module")
def steps(server, tmp_path_factory):
    from shipyard import CraftAiSdk

    creds = server.credentials
    sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                     control_url=creds["control_url"])
    folder = write_files(tmp_path_factory.mktemp("rerun-code"), {"steps.py": CODE})
    for name, (inputs, outputs) in DECLARED.items():
        sdk.create_step(f"rr-{name}", function_path="steps.py", function_name=name,
                        container_config={"local_folder": str(folder)}, inputs=inputs,
                        outputs=outputs, cache_results=(name == "cached"),
                        max_retries=1 if name == "flaky" else None)
    sdk.create_pipeline("rr-chain", step_names=["rr-first", "rr-second", "rr-third"],
                        connections=CHAIN)
    sdk.create_pipeline("rr-flaky", step_names=["rr-flaky", "rr-third"],
                        connections=[("rr-flaky.data2", "rr-third.data2")])
    sdk.create_pipeline("rr-cache", step_names=["rr-cached", "rr-after"],
                        connections=[("rr-cached.y", "rr-after.y"),
                                     ("rr-cached.rev", "rr-after.rev")])
    return sdk


def _markers(sdk, tag: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in sdk.list_data_store_objects():
        parts = item["path"].split("/")
        if parts[:2] == ["markers", tag]:
            counts[parts[2]] = counts.get(parts[2], 0) + 1
    return counts


def _ended(sdk, execution_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        execution = sdk.get_pipeline_execution(execution_id)
        if execution["status"] not in ("Pending", "Running"):
            return execution
        time.sleep(0.2)
    raise AssertionError(f"{execution_id} did not end: {execution['status']}")


def _steps(execution: dict) -> dict[str, dict]:
    return {s["name"]: s for s in execution["steps"]}


def test_rerun_from_the_failed_step_reuses_the_steps_before_it(steps, api: Api):
    sdk = steps
    tag = uuid.uuid4().hex[:8]
    started = sdk.run_pipeline("rr-chain", {"tag": tag, "text": "hello"},
                               wait_for_completion=False)
    failed = _ended(sdk, started["execution_id"])
    assert failed["status"] == "Failed" and "rr-third" in failed["error"], failed["error"]
    assert _markers(sdk, tag) == {"first": 1, "second": 1, "third": 1}

    # Clear 400 for a step the pipeline does not have; 404 for an unknown execution.
    bad = api.request("POST", f"/executions/{failed['execution_id']}/rerun",
                      json={"from_step": "nope"})
    assert "nope" in assert_error(bad, 400)["message"]
    bad = api.request("POST", f"/executions/{failed['execution_id']}/rerun",
                      json={"from_step": 3})
    assert_error(bad, 400)
    assert_error(api.request("POST", "/executions/rr-chain-zzzzz/rerun", json={}), 404)

    sdk.upload_data_store_object(io.BytesIO(b"yes"), f"flags/{tag}/ok")  # "fixed"
    # Default from_step: the first failed step.
    rerun = sdk.rerun_pipeline_execution(failed["execution_id"])
    assert rerun["outputs"] == {"result": "HELLO:5"}  # the reused file, content checked
    assert _markers(sdk, tag) == {"first": 1, "second": 1, "third": 2}
    execution = sdk.get_pipeline_execution(rerun["execution_id"])
    assert execution["rerun_of"] == failed["execution_id"]
    assert execution["inputs"][0]["value"] in (tag, "hello")
    by_name = _steps(execution)
    for name in ("rr-first", "rr-second"):
        assert by_name[name]["status"] == "Reused", by_name[name]
        assert by_name[name]["reused_from"] == failed["execution_id"]
    assert by_name["rr-third"]["status"] == "Succeeded"
    assert "reused_from" not in by_name["rr-third"]

    # The origin deleted: the re-run keeps its files, and a re-run of it still works.
    sdk.delete_pipeline_execution(failed["execution_id"])
    again = sdk.rerun_pipeline_execution(rerun["execution_id"], from_step="rr-second")
    assert again["outputs"] == {"result": "HELLO:5"}
    assert _markers(sdk, tag) == {"first": 1, "second": 2, "third": 3}
    by_name = _steps(sdk.get_pipeline_execution(again["execution_id"]))
    assert by_name["rr-first"]["status"] == "Reused"
    assert by_name["rr-first"]["reused_from"] == rerun["execution_id"]
    assert [by_name[n]["status"] for n in ("rr-second", "rr-third")] == ["Succeeded"] * 2


def test_rerun_defaults_to_the_step_whose_last_attempt_failed(steps):
    """A step that failed once and then succeeded on its retry is not the failed step: the
    re-run reuses its result and runs the step that really failed."""
    sdk = steps
    tag = uuid.uuid4().hex[:8]
    started = sdk.run_pipeline("rr-flaky", {"tag": tag}, wait_for_completion=False)
    failed = _ended(sdk, started["execution_id"])
    assert failed["status"] == "Failed" and "rr-third" in failed["error"], failed["error"]
    assert _markers(sdk, tag) == {"flaky": 2, "third": 1}
    sdk.upload_data_store_object(io.BytesIO(b"yes"), f"flags/{tag}/ok")
    rerun = sdk.rerun_pipeline_execution(failed["execution_id"])
    assert rerun["outputs"] == {"result": "from the second attempt"}
    assert _markers(sdk, tag) == {"flaky": 2, "third": 2}
    by_name = _steps(sdk.get_pipeline_execution(rerun["execution_id"]))
    assert by_name["rr-flaky"]["status"] == "Reused"


def test_rerun_of_a_single_step_pipeline_runs_it_again(server, api: Api, tmp_path):
    from shipyard import CraftAiSdk

    creds = server.credentials
    sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                     control_url=creds["control_url"])
    folder = write_files(tmp_path, {"main.py": "def run(x, f):\n    with open(f['path']) as h:"
                                               "\n        return {'y': h.read() * x}\n"})
    sdk.create_pipeline("rr-single", function_path="main.py", function_name="run",
                        container_config={"local_folder": str(folder)},
                        inputs=[Input("x", "number"), Input("f", "file")],
                        outputs=[Output("y", "string")])
    first = sdk.run_pipeline("rr-single", {"x": 2, "f": b"ab"})
    assert first["outputs"] == {"y": "abab"}
    assert_error(api.request("POST", f"/executions/{first['execution_id']}/rerun",
                             json={"from_step": "other"}), 400)
    again = sdk.rerun_pipeline_execution(first["execution_id"])
    assert again["outputs"] == {"y": "abab"}
    assert sdk.get_pipeline_execution(again["execution_id"])["rerun_of"] == first["execution_id"]


def test_cached_step_is_skipped_until_its_inputs_change(steps, api: Api):
    sdk = steps
    tag = uuid.uuid4().hex[:8]

    def run(x, content, **options):
        out = sdk.run_pipeline("rr-cache", {"tag": tag, "x": x, "f": content}, **options)
        return out, _steps(sdk.get_pipeline_execution(out["execution_id"]))

    first, by_name = run(3, b"abc")
    assert first["outputs"] == {"summary": "6/cba"}
    assert by_name["rr-cached"]["status"] == "Succeeded"
    assert _markers(sdk, tag) == {"cached": 1}

    second, by_name = run(3, b"abc")
    assert second["outputs"] == {"summary": "6/cba"}  # the cached file fed the next step
    assert _markers(sdk, tag) == {"cached": 1}
    cached = by_name["rr-cached"]
    assert cached["status"] == "Cached", cached
    assert cached["cached_from"] == first["execution_id"]
    assert cached["metrics_in_origin"] is True  # its metric stays with the origin
    assert by_name["rr-after"]["status"] == "Succeeded"  # no cache_results: it ran

    run(4, b"abc")  # another input value
    assert _markers(sdk, tag) == {"cached": 2}
    run(3, b"abd")  # another file content
    assert _markers(sdk, tag) == {"cached": 3}
    forced, by_name = run(3, b"abc", use_cache=False)
    assert by_name["rr-cached"]["status"] == "Succeeded"
    assert _markers(sdk, tag) == {"cached": 4}

    # Deleting the origins of (3, "abc") removes their cache entries: the next run runs.
    sdk.delete_pipeline_execution(first["execution_id"])
    sdk.delete_pipeline_execution(forced["execution_id"])
    _, by_name = run(3, b"abc")
    assert by_name["rr-cached"]["status"] == "Succeeded"
    assert _markers(sdk, tag) == {"cached": 5}

    # A bad use_cache is a 400 in the documented shape; get_step says cache_results.
    bad = api.request("POST", "/pipelines/rr-cache/run",
                      json={"json_inputs": {"tag": tag, "x": 1}, "use_cache": "maybe"})
    assert_error(bad, 400)
    assert sdk.get_step("rr-cached")["parameters"]["cache_results"] is True
    assert sdk.get_step("rr-after")["parameters"]["cache_results"] is False


def test_cache_of_a_single_step_pipeline_and_of_a_deployment(steps, api: Api):
    sdk = steps
    tag = uuid.uuid4().hex[:8]
    sdk.create_pipeline("rr-solo", step_name="rr-cached")
    first = sdk.run_pipeline("rr-solo", {"tag": tag, "x": 5, "f": b"xyz"})
    again = sdk.run_pipeline("rr-solo", {"tag": tag, "x": 5, "f": b"xyz"})
    assert first["outputs"] == again["outputs"] == {"y": 10, "rev": b"zyx"}
    assert _markers(sdk, tag) == {"cached": 1}
    [step] = sdk.get_pipeline_execution(again["execution_id"])["steps"]
    assert step["status"] == "Cached" and step["cached_from"] == first["execution_id"]
    assert step["metrics_in_origin"] is True

    # A deployment with use_cache=False runs its step every time; the default uses it.
    constants = [InputSource("tag", constant_value=tag), InputSource("x", constant_value=5),
                 InputSource("f", endpoint_input_name="f")]
    for name, use_cache in (("rr-solo-fresh", False), ("rr-solo-cached", True)):
        sdk.create_deployment("rr-solo", name, "endpoint", inputs_mapping=constants,
                              use_cache=use_cache)
        assert sdk.get_deployment(name)["use_cache"] is use_cache
    token = sdk.get_deployment("rr-solo-fresh")["endpoint_token"]
    for _ in range(2):
        sdk.trigger_endpoint("rr-solo-fresh", token, inputs={"f": io.BytesIO(b"xyz")})
    assert _markers(sdk, tag) == {"cached": 3}
    token = sdk.get_deployment("rr-solo-cached")["endpoint_token"]
    out = sdk.trigger_endpoint("rr-solo-cached", token, inputs={"f": io.BytesIO(b"xyz")})
    [step] = sdk.get_pipeline_execution(out["execution_id"])["steps"]
    assert step["status"] == "Cached", (out, step)
    assert _markers(sdk, tag) == {"cached": 3}
    bad = api.request("POST", "/endpoints", json={
        "name": "rr-bad", "pipeline_name": "rr-solo", "use_cache": "no"})
    assert_error(bad, 400)

    # Low-latency: a cached call answers without the resident runner; a new file content
    # is computed by it and cached from then on.
    sdk.create_deployment("rr-solo", "rr-solo-ll", "endpoint", mode="low_latency",
                          inputs_mapping=constants)
    token = sdk.get_deployment("rr-solo-ll")["endpoint_token"]

    def call(content: bytes) -> dict:
        out = sdk.trigger_endpoint("rr-solo-ll", token, inputs={"f": io.BytesIO(content)})
        [step] = sdk.get_pipeline_execution(out["execution_id"])["steps"]
        return step

    assert call(b"xyz")["status"] == "Cached"
    assert _markers(sdk, tag) == {"cached": 3}
    assert call(b"new")["status"] == "Succeeded"
    assert _markers(sdk, tag) == {"cached": 4}
    assert call(b"new")["status"] == "Cached"
    assert _markers(sdk, tag) == {"cached": 4}

    # A re-run runs its step, even one whose result the cache holds.
    rerun = sdk.rerun_pipeline_execution(again["execution_id"])
    assert rerun["outputs"] == {"y": 10, "rev": b"zyx"}
    assert _markers(sdk, tag) == {"cached": 5}
    [step] = sdk.get_pipeline_execution(rerun["execution_id"])["steps"]
    assert step["status"] == "Succeeded"
