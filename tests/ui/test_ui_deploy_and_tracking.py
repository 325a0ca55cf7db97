"""The web UI in a browser: the Deploy wizard (endpoint, renamed input, environment
variable, an output to none), the deployment page and its curl sample (run as printed),
execution tracking (General, Inputs/Outputs, Metrics, Logs with refresh and download),
and pipeline-metric monitoring of the deployment."""

from __future__ import annotations

import json
import subprocess

from playwright.sync_api import expect

from ..helpers import create_step_http
from .conftest import login, shot

GREETER = '''
from shipyard import CraftAiSdk

def run(name, greeting):
    print(f"{greeting}, {name}!")
    CraftAiSdk().record_metric_value("name_length", len(name))
    return {"message": f"{greeting}, {name}!", "report": {"name": name, "length": len(name)}}
'''
FIELDS = {"inputs[0][name]": "name", "inputs[0][data_type]": "string",
          "inputs[0][is_required]": "True",
          "inputs[1][name]": "greeting", "inputs[1][data_type]": "string",
          "outputs[0][name]": "message", "outputs[0][data_type]": "string",
          "outputs[1][name]": "report", "outputs[1][data_type]": "json"}
ENV = "/ui/projects/default/environments/dev"


def test_deploy_wizard_endpoint_call_and_tracking(page, ui_server, ui_api):
    body = create_step_http(ui_api, "greeter", {"main.py": GREETER}, fields=FIELDS,
                            kind="pipelines")
    assert body["creation_info"]["status"] == "ready", body
    login(page, ui_server, ENV + "/")
    # The environment variable the deployment will read.
    page.fill("#new-variable input[name=name]", "GREETING")
    page.fill("#new-variable input[name=value]", "Hello")
    page.click("#new-variable button[type=submit]")
    expect(page.locator("tr[data-variable=GREETING]")).to_be_visible()

    page.click("nav.sidenav >> text=Pipelines")
    shot(page, "10-pipelines")
    page.click("tr[data-pipeline=greeter] a >> nth=0")
    shot(page, "11-pipeline")
    page.click("#deploy-button")
    shot(page, "12-deploy-step1")
    # Step 1: a bad schedule for the periodic rule is refused with its reason.
    page.check("input[name=execution_rule][value=periodic]")
    page.fill("input[name=schedule]", "every day")
    page.click("#wizard-next")
    expect(page.locator(".flash-error")).to_contain_text("Invalid schedule")
    page.check("input[name=execution_rule][value=endpoint]")
    page.fill("input[name=name]", "greeter-ep")
    page.click("#wizard-next")
    expect(page.locator("#deploy-mapping")).to_be_visible()
    # Step 2: one source per input, one destination per output.
    page.select_option("select[name='input.name.source']", "endpoint")
    page.fill("input[name='input.name.endpoint']", "who")
    page.select_option("select[name='input.greeting.source']", "environment_variable")
    # A JSON output cannot go to the data store (files only): not offered.
    report_choices = page.locator("select[name='output.report.source'] option").evaluate_all(
        "options => options.map(o => o.value)")
    assert report_choices == ["endpoint", "is_null"], report_choices
    page.select_option("select[name='output.report.source']", "is_null")
    page.click("#create-deployment")
    # A missing variable name is refused and nothing is created.
    expect(page.locator("#wizard-error")).to_contain_text("Name the environment variable")
    assert ui_api.request("GET", "/deployments/greeter-ep").status_code == 404
    page.select_option("select[name='input.greeting.environment_variable']", "GREETING")
    shot(page, "13-deploy-mapping")
    page.click("#create-deployment")
    expect(page.locator(".flash-success")).to_contain_text("Deployment 'greeter-ep' created")
    expect(page.locator("#deployment-status")).to_have_text("up")
    endpoint_url = page.locator("#endpoint-url").inner_text()
    token = page.locator("#endpoint-token").inner_text()
    assert endpoint_url == f"{ui_server.url}/environments/default/dev/endpoints/greeter-ep"
    shot(page, "14-deployment")
    deployment = ui_api.request("GET", "/deployments/greeter-ep").json()
    inputs = {m["pipeline_input_name"]: m for m in deployment["inputs_mapping"]}
    assert inputs["name"]["endpoint_input_name"] == "who"
    assert inputs["greeting"]["environment_variable_name"] == "GREETING"
    outputs = {m["pipeline_output_name"]: m for m in deployment["outputs_mapping"]}
    assert outputs["report"]["is_null"] is True
    assert outputs["message"]["endpoint_output_name"] == "message"

    # The curl sample, run exactly as the page shows it.
    curl = page.locator("#sample-curl").inner_text()
    assert token in curl and '"who": "text"' in curl
    done = subprocess.run(["bash", "-c", curl + " --silent --max-time 120"],
                          capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"message": "Hello, text!"}
    for tab in ("python", "javascript"):
        page.click(f"button[data-sample={tab}]")
        expect(page.locator(f"#sample-{tab}")).to_be_visible()
        assert endpoint_url in page.locator(f"#sample-{tab}").inner_text()

    page.click("nav.sidenav >> text=Deployments")
    expect(page.locator("tr[data-deployment=greeter-ep]")).to_contain_text("up")
    shot(page, "14b-deployments")
    # Execution tracking: environment, then the deployment, then its execution's tabs.
    page.click("nav.sidenav >> text=Execution tracking")
    page.click("#all-environments")
    expect(page.locator("[data-environment=dev]")).to_contain_text("greeter-ep")
    shot(page, "14c-tracking-home")
    page.click("[data-environment=dev] a:has-text('greeter-ep')")
    expect(page.locator("#execution-list .exec-item")).to_have_count(1)
    page.click("nav.sidenav >> text=Execution tracking")
    page.select_option("#source-picker select[name=deployment]", "greeter-ep")
    expect(page.locator("#execution-list .exec-item")).to_have_count(1)
    execution_id = page.locator("#execution-list .exec-item").get_attribute("data-execution")
    assert execution_id.startswith("greeter-")
    expect(page.locator("#tab-general")).to_contain_text("greeter-ep")
    expect(page.locator("#tab-general")).to_contain_text("Succeeded")
    shot(page, "15-tracking-general")
    page.click("a[data-tab=io]")
    expect(page.locator("tr[data-io=name]")).to_contain_text("endpoint")
    expect(page.locator("tr[data-io=name]")).to_contain_text("text")
    expect(page.locator("tr[data-io=greeting]")).to_contain_text("environment_variable")
    expect(page.locator("tr[data-io=greeting]")).to_contain_text("GREETING")
    expect(page.locator("tr[data-io=report]")).to_contain_text("is_null")
    shot(page, "16-tracking-io")
    page.click("a[data-tab=metrics]")
    expect(page.locator("tr[data-metric=name_length]")).to_contain_text("4")
    expect(page.locator("#resource-usage")).to_contain_text("CPU time")
    shot(page, "17-tracking-metrics")
    page.click("a[data-tab=logs]")
    expect(page.locator("#logs")).to_contain_text("Hello, text!")
    page.click("#refresh-logs")
    expect(page.locator("#logs")).to_contain_text("Hello, text!")
    shot(page, "18-tracking-logs")
    with page.expect_download() as download:
        page.click("#download-logs")
    text = open(download.value.path()).read()
    assert "[stdout] Hello, text!" in text and download.value.suggested_filename == f"{execution_id}.log"

    # A second call, then the deployment's single metric over time.
    done = subprocess.run(["bash", "-c", curl.replace('"text"', '"Ada Lovelace"')
                           + " --silent --max-time 120"], capture_output=True, text=True,
                          timeout=150)
    assert json.loads(done.stdout)["outputs"] == {"message": "Hello, Ada Lovelace!"}
    page.click("nav.sidenav >> text=Pipeline metrics")
    page.select_option("#metric-source select[name=deployment]", "greeter-ep")
    expect(page.locator("tr[data-metric=name_length]")).to_contain_text("12")
    expect(page.locator("tr[data-metric=name_length] td >> nth=1")).to_have_text("2")
    expect(page.locator(".chart[data-rendered='1']")).to_have_count(1)
    page.click("button.chip:has-text('24h')")
    expect(page.locator(".chart[data-rendered='1']")).to_have_count(1)
    shot(page, "19-pipeline-metrics")
    # A range before the deployment existed shows nothing.
    page.fill("#range-form input[name=start]", "2020-01-01T00:00")
    page.fill("#range-form input[name=end]", "2020-01-02T00:00")
    page.click("#range-form button:has-text('Show')")
    expect(page.locator("text=No metric recorded by greeter-ep")).to_be_visible()
    page.goto(ui_server.url + ENV + "/monitoring/pipeline-metrics?start=nonsense")
    expect(page.locator("h1")).to_contain_text("400")
