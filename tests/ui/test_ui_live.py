"""Live pages and the deployment page: a running execution's status, log tail and metrics
update without reload; a deployment's status, health and pods follow the backend; a
periodic deployment shows its next runs; edit (schedule, constant) and delete (typed
confirmation) work; a long action shows that it is working."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from ..helpers import create_step_http, run_and_wait
from .conftest import login, shot

ENV = "/ui/projects/default/environments/dev"
SLOW = '''
import time
from shipyard import CraftAiSdk

def run(n):
    sdk = CraftAiSdk()
    for i in range(int(n)):
        print(f"tick {i}", flush=True)
        sdk.record_metric_value("progress", i)
        time.sleep(0.7)
    return {"done": n}
'''
FIELDS = {"inputs[0][name]": "n", "inputs[0][data_type]": "number",
          "outputs[0][name]": "done", "outputs[0][data_type]": "number"}


@pytest.fixture(scope="module")
def slow(ui_api):
    body = create_step_http(ui_api, "slow", {"main.py": SLOW}, fields=FIELDS, kind="pipelines")
    assert body["creation_info"]["status"] == "ready", body
    run_and_wait(ui_api, "slow", {"n": 1})  # the venv is warm: later runs start at once
    return ui_api


def _start(api, n: int) -> str:
    r = api.request("POST", "/pipelines/slow/run", data={"json_inputs": f'{{"n": {n}}}'})
    assert r.status_code == 200, r.text
    execution_id = r.json()["execution_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.request("GET", f"/executions/{execution_id}").json()["status"] == "Running":
            return execution_id
        time.sleep(0.2)
    raise AssertionError("never ran")


def _mark(page) -> None:
    page.evaluate("window.__no_reload = 1")


def _not_reloaded(page) -> bool:
    return page.evaluate("window.__no_reload === 1")


def test_running_execution_logs_and_status_follow(page, ui_server, slow):
    execution_id = _start(slow, 8)
    login(page, ui_server, f"{ENV}/executions/{execution_id}?tab=logs")
    expect(page.locator("#execution-title .status")).to_have_text("Running")
    _mark(page)
    expect(page.locator("#logs")).to_contain_text("tick 2", timeout=30_000)
    shot(page, "50-live-logs-running")
    expect(page.locator("#logs")).to_contain_text("tick 7", timeout=30_000)
    expect(page.locator("#execution-title .status")).to_have_text("Succeeded", timeout=30_000)
    expect(page.locator(f"a.exec-item[data-execution='{execution_id}'] .status")).to_have_text(
        "Succeeded")
    expect(page.locator("#live-note")).to_contain_text("Finished")
    assert _not_reloaded(page)
    lines = page.locator("#logs").inner_text()
    assert all(lines.count(f"tick {i}") == 1 for i in range(8)), lines  # each line once
    shot(page, "51-live-logs-done")


def test_running_execution_metrics_follow(page, ui_server, slow):
    execution_id = _start(slow, 6)
    login(page, ui_server, f"{ENV}/executions/{execution_id}?tab=metrics")
    _mark(page)
    expect(page.locator("tr[data-metric=progress] td").last).to_have_text("5", timeout=30_000)
    assert _not_reloaded(page)


def test_deployment_page_live_status_health_pods_and_logs(page, ui_server, slow):
    r = slow.request("POST", "/endpoints", json={
        "pipeline_name": "slow", "name": "slow-ll", "mode": "low_latency",
        "enable_parallel_executions": True, "max_parallel_executions_per_pod": 3})
    assert r.status_code in (200, 201), r.text
    login(page, ui_server, f"{ENV}/deployments/slow-ll")
    _mark(page)
    expect(page.locator("#deployment-status")).to_have_text("up", timeout=60_000)
    expect(page.locator("#deployment-health")).not_to_have_text("", timeout=10_000)
    expect(page.locator("#deployment-pods tbody tr")).to_have_count(1)
    expect(page.locator("#deployment-pods tbody")).not_to_contain_text("No pod", timeout=15_000)
    expect(page.locator("#deployment-parallelism")).to_contain_text("up to 3 executions")
    expect(page.locator("#deployment-logs")).not_to_be_empty(timeout=30_000)
    # Disabled elsewhere (the API): the open page follows.
    assert slow.request("PATCH", "/deployments/slow-ll",
                        json={"is_enabled": False}).status_code == 200
    expect(page.locator("#deployment-status")).to_have_text("disabled", timeout=15_000)
    assert _not_reloaded(page)
    shot(page, "52-deployment-low-latency")


def test_periodic_page_edit_and_delete(page, ui_server, slow):
    r = slow.request("POST", "/periodic-deployment", json={
        "pipeline_name": "slow", "name": "slow-nightly", "schedule": "0 3 * * *",
        "inputs_mapping": [{"pipeline_input_name": "n", "constant_value": 2}],
        "outputs_mapping": [{"pipeline_output_name": "done", "is_null": True}]})
    assert r.status_code in (200, 201), r.text
    login(page, ui_server, f"{ENV}/deployments/slow-nightly")
    expect(page.locator("#next-runs li")).to_have_count(5)
    expect(page.locator("#next-runs li").first).to_contain_text("03:00:00 UTC")
    row = page.locator("#mapping-inputs tr[data-mapping=n]")
    expect(row).to_contain_text("Constant")
    expect(row.locator("td").nth(2)).to_have_text("2")
    expect(page.locator("#mapping-outputs tr[data-mapping=done]")).to_contain_text("None")
    shot(page, "53-deployment-periodic")
    # Edit: the schedule reads as typed; schedule and constant saved.
    page.fill("#edit-form input[name=schedule]", "30 4 * * *")
    expect(page.locator("#schedule-reading")).to_contain_text("04:30")
    page.fill("#edit-form input[name='input.n.constant']", "5")
    page.click("#save-deployment")
    expect(page.locator(".flash-success")).to_contain_text("Deployment updated")
    expect(page.locator("#next-runs li").first).to_contain_text("04:30:00 UTC")
    got = slow.request("GET", "/deployments/slow-nightly").json()
    assert got["schedule"] == "30 4 * * *"
    assert got["inputs_mapping"][0]["constant_value"] == 5
    # A bad schedule is refused with its reason.
    page.fill("#edit-form input[name=schedule]", "99 * * * *")
    page.click("#save-deployment")
    expect(page.locator(".flash-error")).to_contain_text("Invalid schedule")
    # A long action shows it is working (the request is held here to see it).
    page.route("**/slow-nightly/edit", lambda route: None)
    page.fill("#edit-form input[name=schedule]", "0 5 * * *")
    state = page.evaluate("""() => new Promise(resolve => {
        const button = document.getElementById("save-deployment");
        button.click();
        setTimeout(() => resolve([button.textContent, button.disabled,
                                  button.form.getAttribute("aria-busy")]), 100);
    })""")
    assert state == ["Working…", True, "true"], state
    page.unroute("**/slow-nightly/edit")
    # Delete: the name must be typed; then the confirmation dialog.
    page.goto(ui_server.url + f"{ENV}/deployments/slow-nightly")
    page.click("#delete-deployment summary")
    page.fill("#delete-confirm", "wrong")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-button")
    expect(page.locator(".flash-error")).to_contain_text("Type the deployment name")
    assert slow.request("GET", "/deployments/slow-nightly").status_code == 200
    page.click("#delete-deployment summary")
    page.fill("#delete-confirm", "slow-nightly")
    page.once("dialog", lambda dialog: dialog.dismiss())  # cancelled: nothing happens
    page.click("#delete-button")
    assert slow.request("GET", "/deployments/slow-nightly").status_code == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-button")
    expect(page.locator(".flash-success")).to_contain_text("deleted")
    assert page.url.endswith("/deployments")
    assert slow.request("GET", "/deployments/slow-nightly").status_code == 404
