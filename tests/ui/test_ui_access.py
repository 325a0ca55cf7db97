"""Accessibility and small screens: `/` leads to the UI, a skip link, ARIA tabs, WCAG AA
text contrast measured in the browser, name patterns valid under the `v` flag (current
Chromium), every page usable at 390 px, and charts with units over the chosen range."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..helpers import create_step_http, run_and_wait
from .conftest import login, shot

ENV = "/ui/projects/default/environments/dev"

CONTRAST_JS = (Path(__file__).parent / "contrast.js").read_text()


@pytest.fixture(scope="module")
def with_data(ui_api):
    code = "def run(n):\n    print('n', n)\n    return {'m': n * 2}\n"
    create_step_http(ui_api, "shape", {"main.py": code},
                     fields={"inputs[0][name]": "n", "inputs[0][data_type]": "number",
                             "outputs[0][name]": "m", "outputs[0][data_type]": "number"},
                     kind="pipelines")
    execution_id, out = run_and_wait(ui_api, "shape", {"n": 2})
    assert out.status_code == 200, out.text
    return execution_id


PAGES = ["/ui/", "/ui/projects/default/environments", ENV + "/", ENV + "/pipelines",
         ENV + "/pipelines/shape", ENV + "/executions", ENV + "/executions?tab=io",
         ENV + "/executions?tab=logs", ENV + "/compare", ENV + "/monitoring/resources",
         ENV + "/monitoring/pipeline-metrics", ENV + "/pipelines/shape/deploy", "/ui/parameters"]


def test_root_leads_to_the_ui(page, ui_server):
    page.goto(ui_server.url + "/")
    expect(page.locator("input[name=email]")).to_be_visible()  # the UI's login page
    login(page, ui_server)
    page.goto(ui_server.url + "/")
    assert page.url.rstrip("/").endswith("/ui")
    expect(page.locator("h1")).to_have_text("Projects")


def test_skip_link_and_tab_roles(page, ui_server, with_data):
    login(page, ui_server, ENV + "/executions?tab=io")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    expect(page.locator(".skip-link")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    expect(page.locator("[role=tablist] [role=tab]")).to_have_count(4)
    expect(page.locator("[role=tab][aria-selected=true]")).to_have_text("Inputs / Outputs")
    panel = page.locator("[role=tabpanel]")
    expect(panel).to_have_attribute("aria-labelledby", "tab-link-io")
    page.goto(ui_server.url + ENV + "/compare")
    expect(page.locator("#tab-table")).to_have_attribute("aria-selected", "true")


def test_text_contrast_is_wcag_aa(page, ui_server, with_data):
    login(page, ui_server)
    failures = {}
    for path in PAGES:
        page.goto(ui_server.url + path)
        found = page.evaluate(CONTRAST_JS)
        if found:
            failures[path] = found
    assert not failures, failures


def test_name_patterns_compile_with_the_v_flag(page, ui_server, with_data):
    login(page, ui_server)
    checked = 0
    for path in ("/ui/projects/new", "/ui/projects/default/environments",
                 ENV + "/pipelines/shape/deploy", ENV + "/"):
        page.goto(ui_server.url + path)
        for field in page.locator("input[pattern]").all():
            pattern = field.get_attribute("pattern")
            compiles = "p => { try { new RegExp(p, 'v'); return true; } catch (e) { return false; } }"
            assert page.evaluate(compiles, pattern), (path, pattern)
            good = "MY_VAR" if "A-Z" in pattern else "good-name-1"
            field.fill(good)
            assert field.evaluate("el => el.validity.valid"), (path, pattern, good)
            field.fill("Bad Name!")
            assert field.evaluate("el => el.validity.patternMismatch"), (path, pattern)
            checked += 1
    assert checked >= 5


def test_usable_at_390_px(browser, ui_server, with_data):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        login(page, ui_server)
        wide = {}
        for path in PAGES:
            page.goto(ui_server.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 391:
                wide[path] = width
            name = path.strip("/").replace("/", "_").replace("?", "_") or "home"
            if path in (ENV + "/executions?tab=io", ENV + "/compare", ENV + "/monitoring/resources"):
                shot(page, f"70-mobile-{name[-40:]}")
        assert not wide, wide  # nothing wider than the screen: tables scroll inside
    finally:
        context.close()


def test_charts_units_and_range(page, ui_server, with_data):
    login(page, ui_server, ENV + "/monitoring/resources?range=6h")
    expect(page.locator(".chart[data-rendered='1']")).to_have_count(5)
    net = page.locator(".chart[data-rendered='1']").nth(4)
    expect(net).to_contain_text("Network out per sample")
    # Put the cursor on the latest reading; the legend shows it with its unit.
    net.evaluate("""el => { const u = el.uplot, xs = u.data[0];
        const i = u.data[1].reduce((last, v, j) => v != null ? j : last, 0);
        u.setCursor({left: u.valToPos(xs[i], 'x'), top: 10}); }""")
    legend = net.locator(".u-legend").inner_text()  # axis labels are drawn on the canvas
    assert any(unit in legend for unit in (" B", "KiB", "MiB")), legend
    span = float(net.get_attribute("data-x-max")) - float(net.get_attribute("data-x-min"))
    assert abs(span - 6 * 3600) < 120, span  # the chosen 6 hours, not the data's minutes
    shot(page, "71-resources-6h")
