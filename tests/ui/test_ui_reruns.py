"""Issue 12 in the browser: the execution page's Re-run button (from a chosen step), and
the badges of steps that took another execution's result (Reused by a re-run, Cached by
the step cache), each linking to that execution."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from ..helpers import create_step_http
from ..helpers import wait_ended as _ended
from .conftest import login, shot
from .test_ui_graphs import ENV, _fields

CODE = '''
import os

def first(text):
    return {"size": len(text)}

def last(size):
    if not os.environ.get("RERUN_OK"):
        raise RuntimeError("RERUN_OK is not set")
    return {"double": size * 2}
'''


def test_rerun_button_and_badges(page, ui_server, ui_api):
    create_step_http(ui_api, "uir-first", {"steps.py": CODE}, function_path="steps.py",
                     function_name="first",
                     fields={**_fields([("text", "string")], [("size", "number")]),
                             "cache_results": "true"})
    create_step_http(ui_api, "uir-last", {"steps.py": CODE}, function_path="steps.py",
                     function_name="last",
                     fields=_fields([("size", "number")], [("double", "number")]))
    created = ui_api.request("POST", "/pipelines", json={
        "pipeline_name": "uir-chain", "step_names": ["uir-first", "uir-last"],
        "connections": [{"source": "uir-first.size", "target": "uir-last.size"}]})
    assert created.status_code == 201, created.text
    run = ui_api.request("POST", "/pipelines/uir-chain/run", json={"json_inputs": {"text": "abc"}})
    origin = run.json()["execution_id"]
    assert _ended(ui_api, origin)["status"] == "Failed"
    ui_api.request("PUT", "/environment-variables",
                   json={"environment_variables": {"RERUN_OK": "1"}})

    login(page, ui_server, f"{ENV}/executions/{origin}")
    form = page.locator("#rerun-form")
    expect(form).to_be_visible()
    form.locator("select[name=from_step]").select_option("uir-last")
    form.locator("#rerun-button").click()
    page.wait_for_load_state()
    expect(page.locator(".flash-success")).to_contain_text(f"Re-run of {origin} started")
    title = page.locator("#execution-title")
    rerun_id = re.search(r"uir-chain-\w+", title.inner_text()).group(0)
    assert rerun_id != origin
    expect(page.locator("#rerun-of a")).to_have_attribute("data-origin", origin)
    reused = page.locator("#taken-steps li[data-step=uir-first]")
    expect(reused.locator(".badge")).to_have_text("Reused")
    expect(reused.locator("a")).to_have_text(origin)
    node = page.locator("#execution-graph g.step-node[data-step=uir-first]")
    expect(node).to_have_attribute("data-status", "Reused")
    expect(page.locator("#execution-graph g.step-node[data-step=uir-last]")).to_have_attribute(
        "data-status", "Succeeded", timeout=60_000)
    shot(page, "50-execution-rerun")
    assert _ended(ui_api, rerun_id)["status"] == "Succeeded"

    # The same inputs again: the first step's result comes from the step cache.
    run = ui_api.request("POST", "/pipelines/uir-chain/run", json={"json_inputs": {"text": "abc"}})
    cached_id = run.json()["execution_id"]
    assert _ended(ui_api, cached_id)["status"] == "Succeeded"
    page.goto(f"{ui_server.url}{ENV}/executions/{cached_id}")
    cached = page.locator("#taken-steps li[data-step=uir-first]")
    expect(cached.locator(".badge")).to_have_text("Cached")
    expect(cached.locator("a")).to_have_text(origin)
    cached.locator("a").click()
    page.wait_for_load_state()
    expect(page.locator("#execution-title")).to_contain_text(origin)
    shot(page, "51-execution-cached")

    # An unknown step posted by hand: said on the page, no new execution.
    page.goto(f"{ui_server.url}{ENV}/executions/{origin}")
    page.evaluate("document.querySelector('#rerun-from').innerHTML = "
                  "'<option value=\"nope\">nope</option>'")
    page.locator("#rerun-button").click()
    page.wait_for_load_state()
    expect(page.locator(".flash-error")).to_contain_text("has no step 'nope'")
