"""The Deploy wizard follows the rules: fields follow the chosen rule and mode, the
schedule reads in plain language with its next runs as it is typed, Back returns to step 1
with its values, each input and output offers only the sources its type allows (the seeds'
table) each with its own typed control, endpoint inputs take a default value, and a forged
incompatible choice is refused by the server (UI and API)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ..helpers import assert_error, create_step_http
from .conftest import login, shot

ENV = "/ui/projects/default/environments/dev"
CODE = "def run(n, flag, cfg, f, s):\n    return {'out': n}\n"
TYPES = {"n": "number", "flag": "boolean", "cfg": "json", "f": "file", "s": "string"}


@pytest.fixture(scope="module")
def typed(ui_api):
    fields = {}
    for i, (name, data_type) in enumerate(TYPES.items()):
        fields[f"inputs[{i}][name]"], fields[f"inputs[{i}][data_type]"] = name, data_type
    fields.update({"outputs[0][name]": "out", "outputs[0][data_type]": "number",
                   "outputs[1][name]": "blob", "outputs[1][data_type]": "file"})
    body = create_step_http(ui_api, "typed", {"main.py": CODE}, fields=fields, kind="pipelines")
    assert body["creation_info"]["status"] == "ready", body
    ui_api.request("PUT", "/environment-variables",
                   json={"environment_variables": {"WHO": "ada", "OTHER": "x"}})
    return ui_api


def _options(page, select: str) -> list[str]:
    return page.locator(f"select[name='{select}'] option").evaluate_all(
        "options => options.map(o => o.value)")


def test_periodic_wizard_with_typed_controls_and_back(page, ui_server, typed):
    login(page, ui_server, ENV + "/pipelines/typed/deploy")
    # Endpoint rule by default: no schedule (and no pre-filled one), no parallelism.
    expect(page.locator("#schedule-group")).to_be_hidden()
    expect(page.locator("input[name=endpoint_url_path]")).to_be_visible()
    expect(page.locator("#parallel-group")).to_be_hidden()
    page.check("input[name=mode][value=low_latency]")
    expect(page.locator("#parallel-group")).to_be_visible()
    page.check("input[name=mode][value=elastic]")
    page.check("input[name=execution_rule][value=periodic]")
    expect(page.locator("#schedule-group")).to_be_visible()
    expect(page.locator("input[name=endpoint_url_path]")).to_be_hidden()
    assert page.input_value("#schedule") == ""
    # The schedule reads as it is typed.
    page.fill("#schedule", "*/15 * * * *")
    expect(page.locator("#schedule-reading")).to_contain_text("Every 15 minutes")
    expect(page.locator("#schedule-next li")).to_have_count(5)
    page.fill("#schedule", "61 * * * *")
    expect(page.locator("#schedule-reading")).to_contain_text("Invalid schedule")
    expect(page.locator("#schedule-next li")).to_have_count(0)
    page.fill("#schedule", "30 3 * * 1")
    expect(page.locator("#schedule-reading")).to_contain_text("03:30")
    expect(page.locator("#schedule-next li").first).to_contain_text("03:30 UTC")
    shot(page, "40-wizard-periodic")
    page.fill("input[name=name]", "typed-nightly")
    page.click("#wizard-next")
    # Sources by type and rule (periodic: no endpoint).
    assert _options(page, "input.n.source") == ["constant", "environment_variable", "is_null"]
    assert _options(page, "input.f.source") == ["datastore", "is_null"]
    assert _options(page, "output.out.source") == ["is_null"]
    assert _options(page, "output.blob.source") == ["datastore", "is_null"]
    # Each source has its own control, typed by the input's type.
    expect(page.locator("input[name='input.n.constant']")).to_have_attribute("type", "number")
    expect(page.locator("select[name='input.flag.constant']")).to_be_visible()
    expect(page.locator("textarea[name='input.cfg.constant']")).to_be_visible()
    page.select_option("select[name='input.s.source']", "environment_variable")
    expect(page.locator("input[name='input.s.constant']")).to_be_hidden()
    assert _options(page, "input.s.environment_variable") == ["", "OTHER", "WHO"]
    # Back keeps step 1's values.
    page.click("#wizard-back")
    expect(page.locator("#deploy-step1")).to_be_visible()
    expect(page.locator("input[name=execution_rule][value=periodic]")).to_be_checked()
    assert page.input_value("#schedule") == "30 3 * * 1"
    assert page.input_value("input[name=name]") == "typed-nightly"
    expect(page.locator("#schedule-reading")).to_contain_text("03:30")
    page.click("#wizard-next")
    page.fill("input[name='input.n.constant']", "3")
    page.select_option("select[name='input.flag.constant']", "true")
    page.fill("textarea[name='input.cfg.constant']", '{"depth": 2}')
    page.select_option("select[name='input.s.source']", "environment_variable")
    page.select_option("select[name='input.s.environment_variable']", "WHO")
    page.fill("input[name='input.f.datastore']", "in/data.bin")
    page.fill("input[name='output.blob.datastore']", "out/{execution_id}.bin")
    shot(page, "41-wizard-mapping")
    page.click("#create-deployment")
    expect(page.locator(".flash-success")).to_contain_text("typed-nightly")
    got = typed.request("GET", "/deployments/typed-nightly").json()
    inputs = {m["pipeline_input_name"]: m for m in got["inputs_mapping"]}
    assert inputs["n"]["constant_value"] == 3 and inputs["flag"]["constant_value"] is True
    assert inputs["cfg"]["constant_value"] == {"depth": 2}
    assert inputs["s"]["environment_variable_name"] == "WHO"
    assert inputs["f"]["datastore_path"] == "in/data.bin"
    outputs = {m["pipeline_output_name"]: m for m in got["outputs_mapping"]}
    assert outputs["out"]["is_null"] is True
    assert outputs["blob"]["datastore_path"] == "out/{execution_id}.bin"


def test_endpoint_defaults_and_forged_choices_refused(page, ui_server, typed):
    login(page, ui_server, ENV + "/pipelines/typed/deploy")
    page.fill("input[name=name]", "typed-ep")
    page.click("#wizard-next")
    assert _options(page, "input.n.source") == ["endpoint", "constant", "environment_variable",
                                                "is_null"]
    assert _options(page, "input.f.source") == ["endpoint", "datastore", "is_null"]
    page.fill("input[name='input.n.default']", "5")
    page.fill("input[name='input.n.endpoint']", "count")
    # A forged choice the type does not allow (a data store file for a number).
    page.evaluate("""() => {
      const s = document.querySelector("select[name='input.n.source']");
      s.add(new Option("Data store", "datastore")); s.value = "datastore"; }""")
    page.click("#create-deployment")
    expect(page.locator("#wizard-error")).to_contain_text("cannot come from")
    assert typed.request("GET", "/deployments/typed-ep").status_code == 404
    page.select_option("select[name='input.n.source']", "endpoint")
    page.fill("input[name='input.n.default']", "5")
    page.fill("input[name='input.n.endpoint']", "count")
    page.click("#create-deployment")
    expect(page.locator(".flash-success")).to_contain_text("typed-ep")
    got = typed.request("GET", "/deployments/typed-ep").json()
    n = next(m for m in got["inputs_mapping"] if m["pipeline_input_name"] == "n")
    assert n["endpoint_input_name"] == "count" and n["default_value"] == 5


def test_api_refuses_type_incompatible_mappings(typed):
    for inputs in ([{"pipeline_input_name": "n", "datastore_path": "x/y"}],
                   [{"pipeline_input_name": "f", "constant_value": "abc"}],
                   [{"pipeline_input_name": "f", "environment_variable_name": "WHO"}]):
        answer = typed.request("POST", "/endpoints", json={
            "pipeline_name": "typed", "name": "typed-bad", "inputs_mapping": inputs})
        assert_error(answer, 400)
        assert "cannot carry" in answer.json()["message"], answer.json()
