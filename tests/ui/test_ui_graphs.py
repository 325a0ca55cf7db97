"""Issue 11 in the browser: the pipeline page draws the graph (steps, connections, open
I/O), the execution page draws it with each step's status (refreshing while it runs) and a
click on a step shows its inputs/outputs and logs; the Deploy wizard maps the open I/O."""

from __future__ import annotations

from playwright.sync_api import expect

from ..helpers import create_step_http
from .conftest import login, shot

CODE = '''
import time

def first(text):
    print("first saw", text)
    return {"size": len(text)}

def second(size):
    time.sleep(8)
    print("second got", size)
    return {"double": size * 2}

def third(size):
    return {"triple": size * 3}
'''
DECLARED = {
    "first": ([("text", "string")], [("size", "number")]),
    "second": ([("size", "number")], [("double", "number")]),
    "third": ([("size", "number")], [("triple", "number")]),
}
ENV = "/ui/projects/default/environments/dev"


def _fields(inputs, outputs) -> dict:
    fields = {}
    for i, (name, data_type) in enumerate(inputs):
        fields.update({f"inputs[{i}][name]": name, f"inputs[{i}][data_type]": data_type})
    for i, (name, data_type) in enumerate(outputs):
        fields.update({f"outputs[{i}][name]": name, f"outputs[{i}][data_type]": data_type})
    return fields


def test_graph_pages_and_wizard(page, ui_server, ui_api):
    for name, (inputs, outputs) in DECLARED.items():
        create_step_http(ui_api, f"ui-{name}", {"steps.py": CODE}, function_path="steps.py",
                         function_name=name, fields=_fields(inputs, outputs))
    created = ui_api.request("POST", "/pipelines", json={
        "pipeline_name": "fork", "step_names": ["ui-first", "ui-second", "ui-third"],
        "connections": [{"source": "ui-first.size", "target": "ui-second.size"},
                        {"source": "ui-first.size", "target": "ui-third.size"}]})
    assert created.status_code == 201, created.text

    login(page, ui_server, ENV + "/pipelines/fork")
    graph = page.locator("#pipeline-graph svg")
    expect(graph).to_be_visible()
    expect(graph.locator("g.step-node")).to_have_count(3)
    expect(graph.locator("path.edge")).to_have_count(2)
    expect(graph.locator("text.open-input")).to_have_text(["text ▸"])
    expect(graph.locator("text.open-output")).to_have_count(2)
    shot(page, "40-pipeline-graph")

    # The Deploy wizard maps the open inputs and outputs of the graph.
    page.click("#deploy-button")
    page.fill("input[name=name]", "fork-ep")
    page.click("#wizard-next")
    expect(page.locator("select[name='input.text.source']")).to_be_visible()
    expect(page.locator("select[name='output.double.source']")).to_be_visible()
    expect(page.locator("select[name='output.triple.source']")).to_be_visible()
    expect(page.locator("select[name='input.size.source']")).to_have_count(0)

    # An execution: statuses while it runs, refreshed until the end.
    run = ui_api.request("POST", "/pipelines/fork/run",
                         data={"json_inputs": '{"text": "abcd"}'})
    assert run.status_code == 200, run.text
    execution_id = run.json()["execution_id"]
    page.goto(f"{ui_server.url}{ENV}/executions/{execution_id}")
    nodes = page.locator("#execution-graph g.step-node")
    expect(nodes).to_have_count(3)
    second = page.locator("#execution-graph g.step-node[data-step=ui-second]")
    # Read while it runs (the step sleeps 8 s), then updated by the page's live poll alone.
    expect(page.locator("#live-note")).to_be_visible()
    assert second.get_attribute("data-status") in ("Pending", "Running")
    expect(second).to_have_attribute("data-status", "Succeeded", timeout=60_000)
    expect(second.locator("text.step-status")).to_have_text("Succeeded")
    shot(page, "41-execution-graph")
    page.click("#execution-graph g.step-node[data-step=ui-second]")
    panel = page.locator("#step-panel")
    expect(panel).to_have_attribute("data-step", "ui-second")
    expect(panel.locator("table[data-kind=inputs] tr[data-io=size]")).to_contain_text("ui-first.size")
    expect(panel.locator("table[data-kind=outputs] tr[data-io=double]")).to_contain_text("8")
    expect(panel.locator("#step-logs")).to_contain_text("second got 4")
    expect(panel.locator("#step-logs")).not_to_contain_text("first saw")
    shot(page, "42-execution-step")
