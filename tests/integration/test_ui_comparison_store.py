"""The comparison page's store queries on the backend under test (SQLite, and PostgreSQL
in the second pass): sorts by an input value inside the executions' JSON, a metric, a
list metric's aggregate (the running summary kept per append) and the duration; the
true total, pages and filters. Through the real server and a logged-in UI session."""

from __future__ import annotations

import re

import pytest
import requests

from ..helpers import create_step_http, run_and_wait

CODE = '''
from shipyard import CraftAiSdk

def run(lr, tag):
    sdk = CraftAiSdk()
    sdk.record_metric_value("score", lr * 10)
    sdk.record_list_metric_values("curve", [lr, lr * 3, lr * 2])
    sdk.record_list_metric_values("curve", [lr / 2])
    return {"label": tag}
'''
FIELDS = {"inputs[0][name]": "lr", "inputs[0][data_type]": "number",
          "inputs[1][name]": "tag", "inputs[1][data_type]": "string",
          "outputs[0][name]": "label", "outputs[0][data_type]": "string"}
RUNS = [(0.3, "b"), (0.1, "c"), (0.2, "a")]
ENV = "/ui/projects/default/environments/dev/compare"


@pytest.fixture(scope="module")
def session_and_ids(server, api):
    create_step_http(api, "cmp-store", {"main.py": CODE}, fields=FIELDS, kind="pipelines")
    ids = {}
    for lr, tag in RUNS:
        execution_id, out = run_and_wait(api, "cmp-store", {"lr": lr, "tag": tag})
        assert out.status_code == 200, out.text
        ids[lr] = execution_id
    session = requests.Session()
    page = session.get(server.url + "/ui/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    creds = server.credentials
    answer = session.post(server.url + "/ui/login", timeout=30, data={
        "csrf_token": token, "email": creds["admin_email"],
        "password": creds["admin_password"], "next": ""})
    assert answer.status_code == 200 and "Log out" in answer.text
    return session, ids


def _order(server, session, query: str) -> tuple[list[str], int]:
    page = session.get(f"{server.url}{ENV}?pipeline=cmp-store&{query}", timeout=30)
    assert page.status_code == 200, page.text[-2000:]
    rows = re.findall(r'<tr data-execution="([^"]+)"', page.text)
    total = int(re.search(r'id="compare-total">(\d+)<', page.text).group(1))
    return rows, total


@pytest.mark.parametrize("query, expected", [
    ("sort=in:lr&dir=asc", [0.1, 0.2, 0.3]),
    ("sort=in:tag&dir=asc", [0.2, 0.3, 0.1]),  # a, b, c
    ("sort=out:label&dir=desc", [0.1, 0.3, 0.2]),
    ("sort=m:score&dir=desc", [0.3, 0.2, 0.1]),
    ("sort=lm:loss-none&dir=asc", None),  # a column the filter has not: newest first
    ("sort=lm:curve&agg=max&dir=desc", [0.3, 0.2, 0.1]),
    ("sort=lm:curve&agg=last&dir=asc", [0.1, 0.2, 0.3]),
    ("sort=lm:curve&agg=mean&dir=asc", [0.1, 0.2, 0.3]),
    ("sort=meta:duration_s&dir=asc", "any"),
])
def test_sorts_in_the_store(server, session_and_ids, query, expected):
    session, ids = session_and_ids
    rows, total = _order(server, session, query)
    assert total == 3
    if expected is None:
        assert rows == [ids[lr] for lr, _ in reversed(RUNS)]
    elif expected == "any":
        assert sorted(rows) == sorted(ids.values())
    else:
        assert rows == [ids[lr] for lr in expected]


def test_list_metric_cells_from_the_running_summary(server, session_and_ids):
    session, ids = session_and_ids
    for agg, pick in (("min", min), ("max", max), ("last", lambda v: v[-1]),
                      ("mean", lambda v: sum(v) / len(v))):
        page = session.get(f"{server.url}{ENV}?pipeline=cmp-store&agg={agg}&sort=in:lr&dir=asc",
                           timeout=30).text
        cells = re.findall(r'data-column="lm:curve">([^<]+)</td>', page)
        expected = [f"{pick([lr, lr * 3, lr * 2, lr / 2]):.6g}" for lr in (0.1, 0.2, 0.3)]
        assert [c.strip() for c in cells] == expected, (agg, cells)


def test_pages_and_filters(server, session_and_ids):
    session, ids = session_and_ids
    first, total = _order(server, session, "per_page=25&sort=in:lr&dir=asc")
    assert total == 3 and len(first) == 3
    rows, total = _order(server, session, "status=Succeeded&q=" + ids[0.2][-5:])
    assert total == 1 and rows == [ids[0.2]]
    rows, total = _order(server, session, "status=Failed")
    assert total == 0 and rows == []
