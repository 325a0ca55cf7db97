"""Metric pages (`get_metrics` / `get_list_metrics`) whose JSON the database writes: on SQLite
and on PostgreSQL each page holds the stored rows exactly as the models read them."""

from __future__ import annotations

import datetime as dt
import json

from shipyard_service.domain import metrics
from shipyard_service.domain.times import iso
from shipyard_service.store import db as store_db
from shipyard_service.store.models import (
    Environment,
    ListMetric,
    ListMetricChunk,
    Metric,
    Project,
)

from .test_postgres import database_url  # noqa: F401  (SQLite, then PostgreSQL)

# Floats whose shortest text SQLite's own JSON (15 digits) or a naive format would change,
# an integral one (must stay a float), a negative zero, large and small ones, the extremes of
# a double (single values are DOUBLE PRECISION on PostgreSQL since migration 0015).
VALUES = [1.0, -0.0, 0.1 + 0.2, 2 / 3, 1e16, 1e15, 1e-7, 1e-30, 3e38, 123456789.12345679,
          -2.5, 0.30000000000000004, 123456789.12, 1e300, -1e-300, 1.7976931348623157e308,
          5e-324]
# List values are stored as JSON text on both.
LIST_EXTRA = [1e-300, 1.7976931348623157e308, 5e-324]
# Strings the JSON must escape, non-ASCII and None.
PIPELINES = ["plain", 'quote"back\\slash', "é\tnew\nline"]
T0 = dt.datetime(2026, 1, 2, 3, 4, 5)  # no fraction: SQLite stores it without one


def _expected(model, env, filters: dict) -> list[dict]:
    query = model.select().where(model.environment == env)
    for key, value in filters.items():
        query = query.where(getattr(model, key) == value)
    items = []
    for row in query.order_by(model.created_at, model.id):
        item = {"name": row.name, "created_at": iso(row.created_at),
                "execution_id": row.execution_id, "deployment_name": row.deployment_name,
                "pipeline_name": row.pipeline_name}
        if model is Metric:
            item["value"] = row.value
        else:
            chunks = ListMetricChunk.select().where(ListMetricChunk.list_metric == row)
            values = list(row.values) + [v for c in chunks.order_by(ListMetricChunk.id)
                                         for v in c.values]
            item["value"] = item["values"] = values
        items.append(item)
    return items


def _pages(kind: str, env, filters: dict, per_page: int) -> tuple[list[dict], set[int]]:
    items, totals, page = [], set(), 1
    while True:
        body = json.loads(metrics.query_json(kind, env, filters, page, per_page))
        totals.add(body["total_count"])
        if not body["metrics"]:
            return items, totals
        items += body["metrics"]
        page += 1


def test_pages_hold_the_stored_rows_on_both_databases(database_url):  # noqa: F811
    db = store_db.init_db(database_url)
    with db.connection_context():
        env = Environment.create(project=Project.create(name="p"), name="e")
        for i, value in enumerate(VALUES):
            fields = {"environment": env, "execution_id": f'x-"{i}"',
                      "pipeline_name": PIPELINES[i % 3],
                      "deployment_name": None if i % 2 else "d",
                      # the first has no fraction of a second, two share a date (id decides)
                      "created_at": T0 + dt.timedelta(microseconds=(i // 2) * 123457)}
            Metric.create(**fields, name=f"m{i}", value=value)
            header = ListMetric.create(**fields, name="curve", values=[value] if i % 4 else [])
            for chunk in ([value, i], [], [-value, LIST_EXTRA[i % 3]]):
                ListMetricChunk.create(list_metric=header, values=chunk)

        for kind, model in (("single", Metric), ("list", ListMetric)):
            for filters in ({}, {"pipeline_name": PIPELINES[1]}, {"deployment_name": "d"},
                            {"name": "m3"}, {"execution_id": 'x-"4"'}):
                expected = _expected(model, env, filters)
                items, totals = _pages(kind, env, filters, per_page=5)
                assert totals == {len(expected)}, (kind, filters)
                assert items == expected, (kind, filters)
                # Same numbers to the last bit, and floats stay floats (1.0, not 1).
                got = [m["value"] if kind == "single" else m["values"] for m in items]
                want = [m["value"] if kind == "single" else m["values"] for m in expected]
                assert repr(got) == repr(want), (kind, filters)
        assert len(_expected(Metric, env, {})) == len(VALUES)
        assert [m["value"] for m in _pages("single", env, {}, per_page=50)[0]] == VALUES
    db.close()
