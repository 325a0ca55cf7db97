"""The web UI in a browser: comparing three executions of a training pipeline (column
groups, filter, sort by a metric, list-metric aggregation, only differing columns, the
Visualize tab), the Metrics tab's list chart, and resource monitoring with its CSV."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from ..helpers import create_step_http, run_and_wait
from .conftest import login, shot

TRAINER = '''
from shipyard import CraftAiSdk

def run(lr, epochs, batch):
    sdk = CraftAiSdk()
    losses = [round(1.0 / (1 + lr * 10 * (e + 1)), 4) for e in range(int(epochs))]
    for loss in losses:
        sdk.record_list_metric_values("loss", loss)
    sdk.record_metric_value("accuracy", round(1 - losses[-1], 4))
    print("trained", lr, batch, losses)
    return {"final_loss": losses[-1]}
'''
FIELDS = {"outputs[0][name]": "final_loss", "outputs[0][data_type]": "number"}
for _i, _name in enumerate(("lr", "epochs", "batch")):
    FIELDS[f"inputs[{_i}][name]"] = _name
    FIELDS[f"inputs[{_i}][data_type]"] = "number"
RUNS = [(0.1, 3, 32), (0.5, 3, 64), (0.01, 3, 128)]
ENV = "/ui/projects/default/environments/dev"


def _losses(lr: float, epochs: int) -> list[float]:
    return [round(1.0 / (1 + lr * 10 * (e + 1)), 4) for e in range(epochs)]


@pytest.fixture(scope="module")
def trained(ui_api):
    create_step_http(ui_api, "trainer", {"main.py": TRAINER}, fields=FIELDS, kind="pipelines")
    create_step_http(ui_api, "other", {"main.py": "def run():\n    return {}\n"},
                     kind="pipelines")
    ids = {}
    for lr, epochs, batch in RUNS:
        execution_id, out = run_and_wait(ui_api, "trainer",
                                         {"lr": lr, "epochs": epochs, "batch": batch})
        assert out.status_code == 200, out.text
        ids[lr] = execution_id
    run_and_wait(ui_api, "other")
    return ids


def _column(page, key: str) -> list[str]:
    return [c.strip() for c in page.locator(f"#compare-table tbody td[data-column='{key}']")
            .all_inner_texts()]


def _rows(page) -> list[str]:
    return page.locator("#compare-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.execution)")


def _sort_by(page, key: str) -> None:
    """Click a column's sort link and wait for the sorted page (rows read at once could
    come from a page still loading: [] under load)."""
    with page.expect_navigation():
        page.click(f"a[data-sort='{key}']")


def test_compare_three_trainings(page, ui_server, trained):
    login(page, ui_server, ENV + "/compare")
    expect(page.locator("#compare-table tbody tr")).to_have_count(4)  # 3 trainings + other
    shot(page, "20-compare-all")
    page.select_option("#filters select[name=pipeline]", "trainer")
    expect(page.locator("#compare-table tbody tr")).to_have_count(3)
    # Sort by the accuracy metric: descending first, then ascending.
    _sort_by(page, "m:accuracy")
    assert _rows(page) == [trained[0.5], trained[0.1], trained[0.01]]
    _sort_by(page, "m:accuracy")
    assert _rows(page) == [trained[0.01], trained[0.1], trained[0.5]]
    expected = {lr: _losses(lr, 3) for lr, _, _ in RUNS}
    order = [0.01, 0.1, 0.5]
    assert _column(page, "lm:loss") == [f"{expected[lr][-1]:.6g}" for lr in order]
    shot(page, "21-compare-sorted")
    # Switch the aggregation of list metrics: every mode gives its number.
    for mode, pick in (("min", min), ("max", max), ("mean", lambda v: sum(v) / len(v))):
        page.select_option("#aggregation", mode)
        expect(page.locator("a[data-agg]")).to_have_text(mode)
        assert _column(page, "lm:loss") == [f"{pick(expected[lr]):.6g}" for lr in order]
    # The column's own tag cycles its mode (mean -> last).
    page.click("a[data-agg]")
    expect(page.locator("a[data-agg]")).to_have_text("last")
    # Sorting by the list metric follows the chosen aggregation.
    _sort_by(page, "lm:loss")
    assert _rows(page) == [trained[0.01], trained[0.1], trained[0.5]]
    shot(page, "22-compare-aggregation")
    # Only the columns that differ: `epochs`, the pipeline and the status are the same.
    assert page.locator("th[data-column='in:epochs']").count() == 1
    page.check("#only-differ")
    expect(page.locator("th[data-column='in:epochs']")).to_have_count(0)
    expect(page.locator("th[data-column='meta:pipeline_name']")).to_have_count(0)
    expect(page.locator("th[data-column='in:lr']")).to_have_count(1)
    expect(page.locator("th[data-column='m:accuracy']")).to_have_count(1)
    # Column groups: without inputs and resources, their columns go.
    page.click("#column-picker summary")
    page.uncheck("#group-inputs")
    expect(page.locator("th[data-column='in:lr']")).to_have_count(0)
    page.click("#column-picker summary")
    page.uncheck("#group-resources")
    expect(page.locator("th[data-column='res:cpu_time_s']")).to_have_count(0)
    page.click("#column-picker summary")
    page.check("#group-outputs")
    expect(page.locator("th[data-column='out:final_loss']")).to_have_count(1)
    # ...or one by one: the `lr` input alone, not `batch`.
    page.click("#column-picker summary")
    page.check("input[data-col='in:lr']")
    expect(page.locator("th[data-column='in:lr']")).to_have_count(1)
    expect(page.locator("th[data-column='in:batch']")).to_have_count(0)
    assert "cols=in%3Alr" in page.url or "cols=in:lr" in page.url  # the view is in the URL
    shot(page, "23-compare-differ")
    # Visualize the list metric of the three trainings, one colour per execution.
    for execution_id in trained.values():
        page.check(f"tr[data-execution='{execution_id}'] input[name=sel]")
    page.click("#tab-visualize")
    expect(page.locator(".chart[data-rendered='1']")).to_have_count(1)
    legend = page.locator(".chart .u-legend").inner_text()
    assert all(execution_id in legend for execution_id in trained.values()), legend
    shot(page, "24-compare-visualize")
    page.click("#tab-table")
    expect(page.locator("#compare-table")).to_be_visible()


def test_compare_bad_parameters_are_harmless(page, ui_server, trained):
    login(page, ui_server, ENV + "/compare?sort=m:nope&agg=median&groups=bogus&agg.loss=x")
    expect(page.locator("#compare-table")).to_be_visible()
    expect(page.locator("#aggregation")).to_have_value("last")


def test_metrics_tab_list_chart(page, ui_server, trained):
    login(page, ui_server, f"{ENV}/executions/{trained[0.1]}?tab=metrics")
    expect(page.locator("tr[data-metric=accuracy]")).to_contain_text(
        f"{round(1 - _losses(0.1, 3)[-1], 4):.6g}")
    expect(page.locator(".chart[data-rendered='1']")).to_have_count(1)
    expect(page.locator("#resource-usage")).to_contain_text("Peak memory")
    shot(page, "25-tracking-metrics-chart")


def test_resource_monitoring_and_csv(page, ui_server, trained):
    login(page, ui_server, ENV + "/monitoring/resources")
    expect(page.locator("#overuse-cards [data-metric=cpu_usage]")).to_be_visible()
    expect(page.locator(".chart[data-rendered='1']")).to_have_count(5)  # no GPU here
    shot(page, "26-resources")
    with page.expect_download() as download:
        page.click("#download-csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path()).read())))
    assert {r["worker"] for r in rows} == {"worker-1", "All cumulate"}
    assert {r["metric"] for r in rows} == {"cpu_usage", "disk_usage", "ram_usage",
                                           "network_input_usage", "network_output_usage"}
    # The download follows the chosen worker.
    page.select_option("#worker-form select[name=worker]", "worker-1")
    expect(page.locator("#worker-form select[name=worker]")).to_have_value("worker-1")
    with page.expect_download() as download:
        page.click("#download-csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path()).read())))
    assert rows and {r["worker"] for r in rows} == {"worker-1"}
    page.goto(ui_server.url + ENV + "/monitoring/resources?start=2024-01-02T00:00&end=2024-01-01T00:00")
    expect(page.locator("h1")).to_contain_text("400")
