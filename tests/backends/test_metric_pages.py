"""Metric pages (`get_metrics` / `get_list_metrics`) whose JSON the database writes: on SQLite
and on PostgreSQL each page holds the stored rows exactly as the models read them."""

from __future__ import annotations

import datetime as dt
import json

from shipyard._api.metrics import _rows
from shipyard._http import decode_json
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


def _column_pages(kind: str, env, filters: dict, per_page: int) -> tuple[list[dict], set[int]]:
    """The same walk with `format=columns` pages, made into objects by our SDK's own code."""
    items, totals, page = [], set(), 1
    while True:
        body = decode_json(metrics.query_columns_json(kind, env, filters, page, per_page))
        totals.add(body["total_count"])
        rows = _rows(body, lists=kind == "list")
        if not rows:
            return items, totals
        items += rows
        page += 1


def test_pages_hold_the_stored_rows_on_both_databases(database_url):
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
                # Our SDK's columns, by small pages and by one page of the largest size.
                for per_page in (5, metrics.COLUMNS_MAX_PAGE[kind]):
                    columns, totals = _column_pages(kind, env, filters, per_page)
                    assert totals == {len(expected)}, (kind, filters, per_page)
                    assert columns == items and repr(columns) == repr(items), (kind, filters)
                    # Keys in the same order; a list's two arrays equal but not one object.
                    assert [list(m) for m in columns] == [list(m) for m in items]
                    assert all(m["value"] is not m["values"] for m in columns if kind == "list")
        assert len(_expected(Metric, env, {})) == len(VALUES)
        assert [m["value"] for m in _pages("single", env, {}, per_page=50)[0]] == VALUES
    db.close()


# Deep pages -----------------------------------------------------------------------------
# A page past the first starts at the day its first row falls in (store/daycounts.py): the
# day counts must follow every write, and every page must equal the same slice of a full read.

DAY_FILTERS = ({}, {"pipeline_name": "a"}, {"deployment_name": "d1"}, {"name": "m1"},
               {"pipeline_name": "b", "name": "m0"})


def _seed_days(env, days: int = 5, per_day: int = 9, prefix: str = "x") -> None:
    """Executions over `days` days, two metrics and a list each, written in bulk (one
    statement per table: PostgreSQL's statement triggers group many rows)."""
    singles, headers = [], []
    for day in range(days):
        for i in range(per_day):
            n = day * per_day + i
            fields = {"environment": env, "execution_id": f"{prefix}{n:03d}",
                      "pipeline_name": "ab"[n % 2], "deployment_name": "d1" if n % 3 else None,
                      # the last of a day at 23:59:59.999999, two rows share each date
                      "created_at": T0 + dt.timedelta(days=day, minutes=(i // 2) * 7)
                      if i < per_day - 1 else T0.replace(hour=23, minute=59, second=59,
                                                         microsecond=999999)
                      + dt.timedelta(days=day)}
            singles += [{**fields, "name": name, "value": n + k / 10}
                        for k, name in enumerate(("m0", "m1"))]
            headers.append({**fields, "name": "m1", "values": [n]})
    Metric.insert_many(singles).execute()
    ListMetric.insert_many(headers).execute()
    for header in ListMetric.select().where(ListMetric.environment == env):
        ListMetricChunk.create(list_metric=header, values=[0.5, header.id])


def _day_counts_match_the_rows(env) -> None:
    """The counters equal a GROUP BY of the metric tables; no day is left at zero."""
    expected: dict[tuple, int] = {}
    for kind, model in (("metric", Metric), ("listmetric", ListMetric)):
        for row in model.select().where(model.environment == env):
            key = (kind, row.pipeline_name or "", row.deployment_name or "", row.name,
                   row.created_at.date().isoformat())
            expected[key] = expected.get(key, 0) + 1
    stored = {(kind, p, d, n, str(day)): count for kind, p, d, n, day, count in
              store_db.database.execute_sql(
                  'SELECT kind, pipeline_name, deployment_name, name, day, count '
                  'FROM "metricday" WHERE environment_id = %s'
                  .replace("%s", store_db.database.obj.param), (env.id,))}
    assert stored == expected


def _every_page_equals_a_full_read(env) -> None:
    for kind, model in (("single", Metric), ("list", ListMetric)):
        for filters in DAY_FILTERS:
            expected = _expected(model, env, filters)
            for per_page in (1, 4, 7):
                items, totals = _pages(kind, env, filters, per_page)
                assert totals == {len(expected)}, (kind, filters, per_page)
                assert items == expected, (kind, filters, per_page)
            # Straight to a deep page, and past the end.
            deep = len(expected) // 3 + 1
            body = json.loads(metrics.query_json(kind, env, filters, deep, 3))
            assert body["metrics"] == expected[(deep - 1) * 3:deep * 3], (kind, filters)
            beyond = json.loads(metrics.query_json(kind, env, filters, len(expected) + 2, 1))
            assert beyond == {"metrics": [], "total_count": len(expected)}
            # Our SDK's columns: the same rows by small pages, a deep jump and past the end.
            columns, totals = _column_pages(kind, env, filters, 4)
            assert columns == expected and totals == {len(expected)}, (kind, filters)
            body = decode_json(metrics.query_columns_json(kind, env, filters, deep, 3))
            assert _rows(body, kind == "list") == expected[(deep - 1) * 3:deep * 3]
            body = decode_json(metrics.query_columns_json(kind, env, filters,
                                                          len(expected) + 2, 1))
            assert _rows(body, kind == "list") == [] and body["total_count"] == len(expected)


def test_deep_pages_equal_a_full_read_through_inserts_and_deletes(database_url,
                                                                   monkeypatch):
    from shipyard_service.domain.auth import Principal
    from shipyard_service.store.models import Execution

    db = store_db.init_db(database_url)
    with db.connection_context():
        env = Environment.create(project=Project.create(name="p"), name="e")
        other = Environment.create(project=Project.get(), name="other")
        _seed_days(env)
        _seed_days(other, days=2, prefix="y")  # another environment's rows never shift these pages
        _day_counts_match_the_rows(env)
        _every_page_equals_a_full_read(env)

        # Retention: the oldest executions go with their metrics (the first day and a half).
        metrics.delete_for_executions([f"x{n:03d}" for n in range(14)])
        # A row inserted in the middle of a day, before rows already there.
        Metric.create(environment=env, execution_id="late", pipeline_name="a",
                      deployment_name="d1", name="m1", value=7.5,
                      created_at=T0 + dt.timedelta(days=3, seconds=1))
        # A single metric recorded again moves to the day it is recorded on (upsert).
        Execution.create(execution_id="x020", environment=env, pipeline_name="a",
                         status="Running")
        monkeypatch.setattr(metrics, "utcnow", lambda: T0 + dt.timedelta(days=4, hours=1))
        metrics.record_single(env, Principal(user_id="u"), "m1",
                              {"value": 99.0, "execution_id": "x020"})
        assert Metric.get(execution_id="x020", name="m1").created_at.day == T0.day + 4
        _day_counts_match_the_rows(env)
        _every_page_equals_a_full_read(env)
    db.close()


def test_migration_counts_the_days_already_stored(database_url):
    """Migration 0016 on a store that has metrics: the counts equal the rows, then follow."""
    from shipyard_service.store import migrations
    from shipyard_service.store.models import SchemaVersion

    db = store_db.init_db(database_url)
    with db.connection_context():
        env = Environment.create(project=Project.create(name="p"), name="e")
        sqlite = database_url.startswith("sqlite")
        for table in ("metric", "listmetric"):
            for op in ("insert", "delete", "update"):
                db.execute_sql(f'DROP TRIGGER IF EXISTS "{table}_day_{op}"'
                               + ("" if sqlite else f' ON "{table}"'))
        db.execute_sql('DROP TABLE "metricday"')
        SchemaVersion.update(version=15).execute()
        _seed_days(env, days=3)
        migrations.apply(db)
        assert SchemaVersion.get().version == len(migrations.MIGRATIONS)
        _day_counts_match_the_rows(env)
        metrics.delete_for_executions(["x000", "x010"])
        _day_counts_match_the_rows(env)
        _every_page_equals_a_full_read(env)
    db.close()
