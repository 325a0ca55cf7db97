"""Comparison and tracking through many executions (written straight to the store): the
filter, sort and page happen in the store with a true total; long values are summaries
that open; columns empty for the filter are gone; the header and first column stay in
view while scrolling; the view is in the URL."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login, shot
from .seeding import seed

ENV = "/ui/projects/default/environments/dev"
COUNT = 600  # above the former 500 cap


@pytest.fixture(scope="module")
def seeded(ui_server):
    return seed(ui_server.data_dir / "shipyard.db", COUNT)


def _rows(page) -> list[str]:
    return page.locator("#compare-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.execution)")


def test_compare_filters_sorts_and_pages_in_the_store(page, ui_server, seeded):
    login(page, ui_server, ENV + "/compare")
    expect(page.locator("#compare-total")).to_have_text(str(COUNT))
    expect(page.locator("#compare-table tbody tr")).to_have_count(50)
    # A long JSON input is a short summary that opens; rows stay one line high.
    cell = page.locator("#compare-table tbody tr[data-execution^='train-a']").first.locator(
        "td[data-column='in:config']")
    expect(cell.locator("details.long-value")).to_have_count(1)
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 4000, height
    cell.locator("summary").click()
    expect(cell.locator(".long-full")).to_contain_text('"activation": "relu"')
    shot(page, "60-compare-600")
    # The oldest execution (past the former cap) is found by the filter, with its status.
    page.select_option("#filters select[name=pipeline]", "train-b")
    expect(page.locator("#compare-total")).to_have_text(str(seeded["train-b"]))
    options = page.locator("#filters select[name=status] option").all_inner_texts()
    assert "Failed" in options, options
    page.select_option("#filters select[name=status]", "Failed")
    expect(page.locator("#compare-total")).to_have_text("1")
    assert _rows(page) == [seeded["failed"][1]]
    # train-a's columns hold nothing for train-b: they are not offered.
    expect(page.locator("th[data-column='in:text']")).to_have_count(1)
    expect(page.locator("th[data-column='in:lr']")).to_have_count(0)
    expect(page.locator("th[data-column='m:accuracy']")).to_have_count(0)
    expect(page.locator("input[data-col='lm:loss']")).to_have_count(0)
    # Sort by an input over all of train-a, in the store: the smallest lr is the oldest run.
    page.goto(ui_server.url + ENV + "/compare?pipeline=train-a&sort=in:lr&dir=asc&per_page=25")
    expect(page.locator("#compare-table tbody tr")).to_have_count(25)
    assert _rows(page)[0] == seeded["smallest_lr"]
    expect(page.locator("th[data-column='in:lr']")).to_have_attribute("aria-sort", "ascending")
    # Sort by a list metric's aggregate and a metric, in SQL too (no error, full pages).
    for key in ("lm:loss", "m:accuracy", "meta:duration_s", "res:peak_rss_mb", "out:model"):
        page.goto(ui_server.url + ENV + f"/compare?pipeline=train-a&sort={key}&per_page=25")
        expect(page.locator("#compare-table tbody tr")).to_have_count(25)
    # Pages: next keeps the view (filter, sort, size) in the URL.
    page.goto(ui_server.url + ENV + "/compare?pipeline=train-a&sort=in:lr&dir=asc&per_page=25")
    first_page = _rows(page)
    page.click(".pager >> nth=0 >> a[data-page=next]")
    expect(page.locator("#compare-count")).to_contain_text("26–50 of")
    assert "page=2" in page.url and "per_page=25" in page.url and "sort=in" in page.url
    assert not set(_rows(page)) & set(first_page)
    # Next starts right after the last row (a keyset cursor): the rows of page 2 by number.
    assert "after=" in page.url
    by_number = page.context.new_page()
    by_number.goto(ui_server.url + ENV + "/compare?pipeline=train-a&sort=in:lr&dir=asc"
                   "&per_page=25&page=2")
    assert _rows(by_number) == _rows(page)
    by_number.close()
    page.click(".pager >> nth=0 >> a[data-page=last]")
    expect(page.locator("#compare-table tbody tr")).to_have_count(seeded["train-a"] % 25 or 25)
    # A shared link opens the same view.
    shared = page.url
    other = page.context.new_page()
    other.goto(shared)
    assert _rows(other) == _rows(page)
    other.close()


def test_sticky_header_and_first_column(page, ui_server, seeded):
    login(page, ui_server, ENV + "/compare?per_page=100")
    box = page.locator(".sticky-table")
    header = page.locator("#compare-table thead .label-row th").nth(2)
    first_cell = page.locator("#compare-table tbody tr").first.locator("th")
    top_before = header.bounding_box()["y"]
    left_before = first_cell.bounding_box()["x"]
    box.evaluate("el => { el.scrollTop = 1500; el.scrollLeft = 800; }")
    page.wait_for_timeout(100)
    assert abs(header.bounding_box()["y"] - top_before) < 40  # still at the box's top
    row = page.locator("#compare-table tbody tr").nth(40).locator("th")
    assert abs(row.bounding_box()["x"] - left_before) < 2  # first column pinned
    corner = page.locator("#compare-table thead .label-row th").first.bounding_box()
    on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('th').className",
                           [corner["x"] + 10, corner["y"] + corner["height"] / 2])
    assert "sticky-col" in on_top  # the corner cell is drawn above the scrolled headers
    shot(page, "61-compare-sticky")


def test_tracking_pages_with_a_true_total(page, ui_server, seeded):
    login(page, ui_server, ENV + "/executions?pipeline=train-b&per_page=25")
    expect(page.locator("#tracking-count")).to_contain_text(f"of {seeded['train-b']}")
    expect(page.locator("#execution-list a.exec-item")).to_have_count(25)
    page.click("#tracking-pager a[data-page=next]")
    expect(page.locator("#tracking-count")).to_contain_text("26–50")
    pages = -(-seeded["train-b"] // 25)
    page.goto(ui_server.url + ENV + f"/executions?pipeline=train-b&per_page=25&page={pages}")
    expect(page.locator(f"a.exec-item[data-execution='{seeded['failed'][1]}']")).to_be_visible()
    shot(page, "62-tracking-last-page")


def test_bad_paging_is_a_clear_400(page, ui_server, seeded):
    login(page, ui_server, ENV + "/compare?per_page=7")
    expect(page.locator("h1")).to_contain_text("400")
    page.goto(ui_server.url + ENV + "/executions?page=abc")
    expect(page.locator("h1")).to_contain_text("400")


def test_tracking_io_long_values_are_summaries(page, ui_server, seeded):
    login(page, ui_server, ENV + "/executions/train-a-000598?tab=io")
    row = page.locator("tr[data-io=config]")
    expect(row.locator("details.long-value")).to_have_count(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1360, width  # nothing overflows the page
    row.locator("summary").click()
    expect(row.locator(".long-full")).to_contain_text('"optimizer"')
    shot(page, "63-tracking-io-long")
