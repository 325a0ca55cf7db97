"""Issue 12 point 4 in the browser: the execution page lists the attempts of each step that
retries (number, status, dates, error) with a badge: "attempt k/N" while the step runs or
waits for its retry, "retried" once it ended after several attempts."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from ..helpers import create_step_http
from ..helpers import wait_ended as _ended
from ..integration.test_retries import COUNTED
from .conftest import login, shot
from .test_ui_graphs import ENV, _fields

FIELDS = _fields([("key", "string"), ("fail_times", "number")], [("runs", "number")])


def test_attempts_and_badges(page, ui_server, ui_api):
    create_step_http(ui_api, "uit-flaky", {"steps.py": COUNTED}, function_path="steps.py",
                     function_name="flaky", kind="pipelines",
                     fields={**FIELDS, "max_retries": "2", "retry_delay_s": "0"})
    run = ui_api.request("POST", "/pipelines/uit-flaky/run",
                         json={"json_inputs": {"key": "uit-twice", "fail_times": 2}})
    retried = run.json()["execution_id"]
    assert _ended(ui_api, retried)["status"] == "Succeeded"

    login(page, ui_server, f"{ENV}/executions/{retried}")
    section = page.locator(".attempts[data-step=uit-flaky]")
    expect(section.locator("[data-badge]")).to_have_text("retried")
    rows = section.locator("tr[data-attempt]")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator(".status")).to_have_text("Failed")
    expect(rows.nth(0).locator(".attempt-error")).to_contain_text("failure 1 of uit-twice")
    expect(rows.nth(1).locator(".attempt-error")).to_contain_text("failure 2 of uit-twice")
    expect(rows.nth(2).locator(".status")).to_have_text("Succeeded")
    expect(rows.nth(2)).to_contain_text("3/3")
    shot(page, "52-execution-attempts")

    # A step waiting for its retry: "attempt 2/2", and when the retry is due.
    create_step_http(ui_api, "uit-slow", {"steps.py": COUNTED}, function_path="steps.py",
                     function_name="flaky", kind="pipelines",
                     fields={**FIELDS, "max_retries": "1", "retry_delay_s": "600"})
    run = ui_api.request("POST", "/pipelines/uit-slow/run",
                         json={"json_inputs": {"key": "uit-wait", "fail_times": 5}})
    waiting = run.json()["execution_id"]
    deadline = time.monotonic() + 60
    while len(ui_api.request("GET", f"/executions/{waiting}").json()["steps"][0]["attempts"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    page.goto(f"{ui_server.url}{ENV}/executions/{waiting}")
    section = page.locator(".attempts[data-step=uit-slow]")
    expect(section.locator("[data-badge]")).to_have_text("attempt 2/2")
    expect(section.locator("tr[data-attempt='2']")).to_contain_text("retry at")
    shot(page, "53-execution-waiting-retry")
    assert ui_api.request("DELETE", f"/executions/{waiting}").status_code == 200
