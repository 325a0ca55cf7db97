"""The comparison's input/output sort index (store/sortindex.py, sortindexer.py) on SQLite
and PostgreSQL: the indexer keys ended executions and not running ones, resumes from its
stored mark after a restart, loses an execution's keys with it, and a sort by an input or
output gives the same pages as a full read of the executions' JSON whatever part of the
store is indexed (none, some, all, with executions pending), filtered or not, and whether
or not the keys written before migration 0017 have their filter columns yet."""

from __future__ import annotations

import datetime as dt
import json

import peewee
import pytest
from shipyard_service.domain import comparison
from shipyard_service.domain.cursors import Cursor
from shipyard_service.sortindexer import SortIndexer
from shipyard_service.store import db as store_db
from shipyard_service.store import migrations, sortindex
from shipyard_service.store.db import database
from shipyard_service.store.models import (
    Environment,
    Execution,
    ListMetric,
    Metric,
    MetricSortFill,
    MetricStatusFill,
    Project,
    RowCount,
    SchemaVersion,
    SortFill,
    SortKey,
    SortMark,
    SortPending,
)

START = dt.datetime(2026, 1, 1)
COUNT = 240
SORTS = [("in:lr", False), ("in:lr", True), ("in:tag", False), ("out:label", True),
         ("m:acc", False), (None, True), ("meta:created_at", False)]
FILTERS = [comparison.Filters(), comparison.Filters(status="Succeeded"),
           comparison.Filters(pipeline="p-b"), comparison.Filters(deployment="d-1"),
           comparison.Filters(pipeline="p-a", status="Failed", text="-0")]
ENDED = ("Succeeded", "Failed")


@pytest.fixture
def store(database_url):
    db = store_db.init_db(database_url)
    with db.connection_context():
        yield database_url, Environment.create(project=Project.create(name="p"), name="e")
    db.close()


def _item(kind: str, name: str, value) -> dict:
    return {f"pipeline_{kind}_name": name, "data_type": "number", "value": value}


def _lr(i: int):
    """Numbers with ties, text, a JSON null, an object, a long text, or no input at all."""
    if i % 11 == 0:
        return "text-%d" % (i % 4)
    if i % 13 == 0:
        return None
    if i % 17 == 0:
        return {"nested": i % 3}
    if i % 19 == 0:
        return "x" * 150 + str(i)
    return round((i % 9) * 0.1, 1)


def _add(environment: Environment, first: int, count: int, status: str = "Succeeded") -> None:
    """Executions `first`..: under deployment d-1, d-2 or none; one ended in ten Failed."""
    for i in range(first, first + count):
        ended = "Failed" if status == "Succeeded" and i % 10 == 3 else status
        inputs = [] if i % 7 == 0 else [_item("input", "lr", _lr(i))]
        inputs.append(_item("input", "tag", f"t{i % 5}"))
        outputs = [_item("output", "label", i % 4)] if status == "Succeeded" else []
        # Pairs of executions share a creation date: ties go to the id.
        Execution.create(execution_id=f"x-{i:04d}", environment=environment,
                         pipeline_name="p-a" if i % 3 else "p-b", status=ended,
                         deployment_name=(None, "d-1", "d-2")[i % 5 % 3],
                         inputs=inputs, outputs=outputs,
                         created_at=START + dt.timedelta(seconds=i // 2))
        if i % 4:
            Metric.create(environment=environment, execution_id=f"x-{i:04d}",
                          pipeline_name="p", name="acc", value=(i % 5) / 10)


def _pages(environment: Environment, sort: str, descending: bool,
           filters: comparison.Filters) -> list[list[str]]:
    pages, page = [], 1
    while True:
        found = comparison.page_of(environment, filters, sort, descending, page, 25)
        if not found.executions:
            return pages
        pages.append([e.execution_id for e in found.executions])
        page += 1


def _cursor_pages(environment: Environment, sort: str | None, descending: bool,
                  filters: comparison.Filters) -> list[list[str]]:
    """The same pages, each after the first reached by the cursor of the one before (as
    the UI's Next link does), the cursor passed through its text form."""
    pages, page, after = [], 1, None
    while True:
        found = comparison.page_of(environment, filters, sort, descending, page, 25, "last",
                                   after)
        if not found.executions:
            return pages
        pages.append([e.execution_id for e in found.executions])
        assert found.next_after is not None
        after = Cursor.decode(found.next_after.encode())
        page += 1


def _full_scans(environment: Environment, monkeypatch) -> dict:
    """Every sort and filter's pages read from the executions' JSON alone."""
    with monkeypatch.context() as patch:
        patch.setattr(comparison, "TAIL_LIMIT", 0)
        assert comparison.page_of(environment, comparison.Filters(), "in:lr", False,
                                  1, 25).catching_up
        return {(s, d, f): _pages(environment, s, d, f)
                for s, d in SORTS for f in FILTERS}


def _assert_same(environment: Environment, expected: dict) -> None:
    for (sort, descending, filters), pages in expected.items():
        case = (sort, descending, filters)
        assert _pages(environment, sort, descending, filters) == pages, case
        assert _cursor_pages(environment, sort, descending, filters) == pages, case


def _io_keys() -> set[tuple[str, str]]:
    return {(k.execution_id, k.key) for k in SortKey.select()
            if k.key.startswith(("in:", "out:"))}


def test_sort_by_input_or_output_matches_a_full_scan_while_indexing(store, monkeypatch):
    _, env = store
    _add(env, 0, COUNT)
    _add(env, COUNT, 20, status="Running")
    expected = _full_scans(env, monkeypatch)
    assert len(expected[("in:lr", False, FILTERS[0])]) == -(-(COUNT + 20) // 25)
    _assert_same(env, expected)  # nothing indexed: all of it is the tail
    horizon = START + dt.timedelta(days=1)
    assert sortindex.index_batch(env.id, ("Succeeded", "Failed"), horizon, batch=70) == 70
    _assert_same(env, expected)  # part indexed, the rest merged from the JSON
    while sortindex.index_batch(env.id, ("Succeeded", "Failed"), horizon, batch=70):
        pass
    _assert_same(env, expected)  # all indexed but the running ones (pending)
    running = {f"x-{i:04d}" for i in range(COUNT, COUNT + 20)}
    assert {p.execution_id for p in SortPending.select()} == running
    keyed = {e for e, _ in _io_keys()}
    assert not keyed & running
    ended = {f"x-{i:04d}" for i in range(COUNT)}
    assert keyed == ended  # every ended one has at least its tag
    # The stored values are the ones the scan reads.
    lr = {k.execution_id: k.value for k in SortKey.select().where(SortKey.key == "in:lr")}
    assert len(lr) == len([i for i in range(COUNT) if i % 7 and _lr(i) is not None])
    # The running ones end with outputs: keyed at the next pass, no longer pending.
    Execution.update(status="Succeeded", outputs=[_item("output", "label", 9)]).where(
        Execution.execution_id.in_(running)).execute()
    expected = _full_scans(env, monkeypatch)
    _assert_same(env, expected)  # before the pass: merged from the tail
    assert sortindex.index_pending(env.id, ("Succeeded", "Failed"), horizon) == 20
    assert SortPending.select().count() == 0
    assert {e for e, k in _io_keys() if k == "out:label"} >= running
    _counters_match()
    _assert_same(env, expected)


def test_the_indexer_resumes_from_its_mark_and_keys_go_with_their_execution(store):
    url, env = store
    _add(env, 0, 50)
    assert SortIndexer(60).index_once() == 50
    mark = SortMark.get(SortMark.environment_id == env.id)
    assert mark.execution_id == "x-0049"
    # A key removed behind the mark stays removed after a restart: the new indexer starts
    # where the old one stopped instead of reading the store again.
    SortKey.delete().where((SortKey.execution_id == "x-0003") & (SortKey.key == "in:tag")
                           ).execute()
    store_db.init_db(url).close()
    db = store_db.init_db(url)
    with db.connection_context():
        _add(env, 50, 10)
        _add(env, 60, 3, status="Running")
        assert SortIndexer(60).index_once() == 13
        keys = _io_keys()
        assert ("x-0003", "in:tag") not in keys
        assert {e for e, _ in keys} == {f"x-{i:04d}" for i in range(60)}
        assert SortMark.get(SortMark.environment_id == env.id).execution_id == "x-0062"
        # Removal: an execution's keys go with it (trigger), a pending one leaves the list.
        Execution.delete().where(Execution.execution_id.in_(["x-0010", "x-0061"])).execute()
        assert not [k for k in _io_keys() if k[0] == "x-0010"]
        _counters_match()
        assert SortIndexer(60).index_once() == 1
        assert {p.execution_id for p in SortPending.select()} == {"x-0060", "x-0062"}
        # Executions younger than the lag wait for a later pass.
        Execution.create(execution_id="x-now", environment=env, pipeline_name="p-a",
                         status="Succeeded", inputs=[_item("input", "lr", 1)])
        SortIndexer(60).index_once()
        assert not [k for k in _io_keys() if k[0] == "x-now"]
        # A removed environment takes its executions' keys, its mark and pending list.
        for model in (Metric, Execution):
            model.delete().where(model.environment == env.id).execute()
        Environment.delete().where(Environment.id == env.id).execute()
        SortIndexer(60).index_once()
        assert not _io_keys()
        assert SortMark.select().count() == 0 and SortPending.select().count() == 0
    db.close()


def _filter_columns() -> dict[tuple[str, str], tuple]:
    return {(k.execution_id, k.key): (k.pipeline_name, k.deployment_name, k.status)
            for k in SortKey.select() if k.key.startswith(("in:", "out:"))}


def test_filtered_sorts_before_and_after_the_filter_columns_are_filled(store, monkeypatch):
    """Keys written before migration 0017 (no filter columns) beside keys written after
    it and executions not indexed yet: filtered sorts by page number (first, middle, last,
    past the middle) and by cursor give a full read's pages while the indexer fills the
    columns, none, part or all of them; then a filtered sort reads one index range."""
    url, env = store
    _add(env, 0, COUNT)
    horizon = START + dt.timedelta(days=1)
    while sortindex.index_batch(env.id, ENDED, horizon, batch=100):
        pass
    written = _filter_columns()
    executions = {e.execution_id: e for e in Execution.select()}
    assert written and all(
        columns == (executions[i].pipeline_name, executions[i].deployment_name or "",
                    executions[i].status) for (i, _), columns in written.items())
    # A store indexed before migration 0017: no filter columns nor their indexes; then
    # reopened, which migrates it.
    for statement in sortindex.filter_indexes():
        database.execute_sql(f'DROP INDEX "{statement.split(chr(34))[1]}"')
    sqlite = url.startswith("sqlite")
    for op in ("insert", "delete", "update"):  # migration 0018's counters
        database.execute_sql(f'DROP TRIGGER "sortkey_count_{op}"'
                             + ("" if sqlite else ' ON "sortkey"'))
    RowCount.delete().where(RowCount.kind.not_in(["execution", "metric", "listmetric"])
                            ).execute()
    for column in sortindex.FILTERS:
        database.execute_sql(f'ALTER TABLE "sortkey" DROP COLUMN "{column}"')
    before = migrations.MIGRATIONS.index(migrations._0017_sort_key_filters)
    SchemaVersion.update(version=before).execute()
    store_db.init_db(url).close()
    db = store_db.init_db(url)
    with db.connection_context():
        assert SchemaVersion.get().version == len(migrations.MIGRATIONS)
        _check_fill(url, env, written, monkeypatch)
    db.close()


def _counters_match() -> None:
    """The sort keys' counters (store/counts.py) equal a count of the keys that carry
    their filter columns, per key, pipeline, deployment and status ('' for a metric's)."""
    counted = {(r.kind, r.pipeline_name, r.deployment_name, r.name): r.count
               for r in RowCount.select()
               if r.kind.startswith(("in:", "out:", "m:", "lm:")) and r.count}
    grouped = {}
    for k in SortKey.select().where(SortKey.pipeline_name.is_null(False)):
        group = (k.key, k.pipeline_name, k.deployment_name, k.status or "")
        grouped[group] = grouped.get(group, 0) + 1
    assert counted == grouped


def _check_fill(url: str, env: Environment, written: dict, monkeypatch) -> None:
    fill = SortFill.get(SortFill.environment_id == env.id)
    assert (fill.until_execution_id, fill.execution_id) == (f"x-{COUNT - 1:04d}", None)
    assert not sortindex.filled(env.id)
    assert set(_filter_columns().values()) == {(None, None, None)}
    _counters_match()
    # Keyed after the migration (with their columns), then a tail not indexed yet.
    _add(env, COUNT, 40)
    horizon = START + dt.timedelta(days=1)
    assert sortindex.index_batch(env.id, ENDED, horizon, batch=25) == 25
    _add(env, COUNT + 40, 10, status="Running")
    sorts = [("in:lr", False), ("out:label", True), ("in:tag", True)]
    with monkeypatch.context() as patch:
        patch.setattr(comparison, "TAIL_LIMIT", 0)
        expected = {(s, d, f): _pages(env, s, d, f) for s, d in sorts for f in FILTERS}
    assert all(expected.values())
    _assert_same(env, expected)  # nothing filled: each key's execution is checked
    assert sortindex.fill_batch(env.id, batch=100) == 100
    assert SortFill.get(SortFill.environment_id == env.id).execution_id == "x-0099"
    _assert_same(env, expected)  # part filled
    _counters_match()
    assert sortindex.fill_batch(env.id, batch=100) == 100
    # The indexer fills the rest (and passes the 15 ended and 10 running past its mark,
    # and fills the metric keys of the COUNT executions before migrations 0021 and 0023
    # ran again: their pipeline, then their status).
    assert SortIndexer(60).index_once() == 15 + 10 + COUNT - 200 + COUNT + COUNT
    assert sortindex.filled(env.id) and SortFill.select().count() == 0
    assert sortindex.fill_batch(env.id, batch=100) == 0
    # Every key has its execution's columns again; a metric key has its execution's
    # status once the indexer passed it ended, none while it runs.
    assert {k: v for k, v in _filter_columns().items() if k in written} == written
    assert _metric_statuses() == {k.execution_id: None if k.status == "Running" else k.status
                                  for k in Execution.select()
                                  if Metric.select().where(
                                      Metric.execution_id == k.execution_id).exists()}
    _counters_match()
    _assert_same(env, expected)  # all filled: the keys' own columns, with the tail merged
    if url.startswith("sqlite"):
        _assert_reads_the_pipeline_index(comparison._keyed(
            env, comparison.Filters(pipeline="p-b"), "in:lr", sortindex.FILTERS), 100)


def _metric_statuses() -> dict[str, str | None]:
    """The status on each execution's metric keys (all its keys carry the same)."""
    found = {}
    for k in SortKey.select().where(SortKey.key.startswith("m:") | SortKey.key.startswith("lm:")):
        assert found.setdefault(k.execution_id, k.status) == k.status, k.execution_id
    return found


def _assert_reads_the_pipeline_index(keyed, offset: int, column: str = "pipeline_name") -> None:
    """SQLite's plan for a page of a sort filtered by pipeline (or `column`): one range of
    the column's partial index, never the execution table."""
    sql, params = keyed.order_by(SortKey.value, SortKey.created_at,
                                 SortKey.execution_id).limit(25).offset(offset).sql()
    plan = " ".join(str(row) for row in database.execute_sql(
        "EXPLAIN QUERY PLAN " + sql, params).fetchall())
    assert f"sortkey_environment_id_key_{column}_value" in plan, plan
    assert "execution" not in plan.replace("execution_id", ""), plan


def test_nan_stored_before_requests_refused_it_no_longer_stops_the_indexer(store):
    """A NaN/Infinity an execution stored before 1c470b3 (Python's json writes a bare `NaN`)
    made every indexer pass fail on PostgreSQL (jsonb refuses the token): migration 0020
    makes them null, and JSONField writes null for them from now on."""
    url, env = store
    _add(env, 0, 5)
    Execution.create(execution_id="x-nan", environment=env, pipeline_name="p-a",
                     status="Succeeded", inputs=[_item("input", "lr", 1.0)],
                     created_at=START)
    raw = ('[{"pipeline_input_name": "lr", "data_type": "number", "value": NaN}, '
           '{"pipeline_input_name": "tag", "data_type": "string", "value": "NaN"}]')
    database.execute_sql(f'UPDATE "execution" SET "inputs" = {database.param} '
                         f'WHERE "execution_id" = {database.param}', [raw, "x-nan"])
    # Written now: the number is null, a text "Infinity" stays text.
    Execution.create(execution_id="x-inf", environment=env, pipeline_name="p-a",
                     status="Succeeded", created_at=START,
                     inputs=[_item("input", "lr", float("-inf")),
                             _item("input", "tag", "Infinity")])

    def stored(execution_id: str) -> str:
        return database.execute_sql(
            f'SELECT "inputs" FROM "execution" WHERE "execution_id" = {database.param}',
            [execution_id]).fetchone()[0]

    assert "null" in stored("x-inf") and '"Infinity"' in stored("x-inf")
    if url.startswith("postgresql"):
        with pytest.raises(peewee.DataError):  # the bug: every pass, for good
            with database.atomic():
                SortIndexer(60).index_once()
    migrations.MIGRATIONS[19](database)
    assert migrations.MIGRATIONS[19].__name__ == "_0020_finite_json"
    assert json.loads(stored("x-nan"))[0]["value"] is None
    assert json.loads(stored("x-nan"))[1]["value"] == "NaN"
    assert SortIndexer(60).index_once() == 7
    keys = _io_keys()
    assert {("x-nan", "in:tag"), ("x-inf", "in:tag"), ("x-0004", "in:tag")} <= keys


METRIC_SORTS = [("m:acc", False, "last"), ("m:acc", True, "last"),
                ("lm:loss", False, "mean"), ("lm:loss", True, "min")]
METRIC_FILTERS = [*FILTERS, comparison.Filters(pipeline="p-a", deployment="d-2"),
                  comparison.Filters(pipeline="p-b", status="Running"),
                  comparison.Filters(deployment="d-1", status="Failed")]


def _add_lists(first: int, count: int) -> None:
    """A list metric `loss` on two executions in three, its summary as appends keep it."""
    for i in range(first, first + count):
        if i % 3 != 1:
            values = [(i % 7) / 4, (i % 3) / 2, 1.5 - (i % 5) / 4][: 1 + i % 3]
            ListMetric.create(environment=Execution.get_by_id(f"x-{i:04d}").environment,
                              execution_id=f"x-{i:04d}", pipeline_name="p", name="loss",
                              count=len(values), value_min=min(values), value_max=max(values),
                              value_sum=sum(values), value_last=values[-1])


def _metric_read(environment: Environment, sort: str, descending: bool, aggregation: str,
                 filters: comparison.Filters) -> list[list[str]]:
    """A full read: every filtered execution and its metric (or list summary) value,
    sorted here: valued ones by (value, date, id), then the others by (date, id), each
    in the sort's direction; pages of 25."""
    name = sort.split(":")[1]
    if sort.startswith("m:"):
        values = {m.execution_id: m.value for m in Metric.select().where(
            (Metric.environment == environment) & (Metric.name == name))}
    else:
        values = {}
        for row in ListMetric.select().where((ListMetric.environment == environment)
                                             & (ListMetric.name == name)):
            values[row.execution_id] = {
                "min": row.value_min, "max": row.value_max, "last": row.value_last,
                "mean": row.value_sum / row.count if row.count else None}[aggregation]
    rows = [(e.execution_id, e.created_at) for e in comparison.filtered(environment, filters)]
    valued = sorted(((values[i], c, i) for i, c in rows if values.get(i) is not None),
                    reverse=descending)
    others = sorted(((c, i) for i, c in rows if values.get(i) is None), reverse=descending)
    ids = [row[-1] for row in valued] + [row[-1] for row in others]
    return [ids[n:n + 25] for n in range(0, len(ids), 25)]


def _assert_metric_pages(environment: Environment) -> None:
    """Every page by number (first, middle, past the middle, last) and every page by
    cursor equals the full read, for each metric sort and filter."""
    for sort, descending, aggregation in METRIC_SORTS:
        for filters in METRIC_FILTERS:
            case = (sort, descending, aggregation, filters)
            expected = _metric_read(environment, sort, descending, aggregation, filters)
            pages, after = [], None
            for number in range(1, len(expected) + 2):
                found = comparison.page_of(environment, filters, sort, descending, number,
                                           25, aggregation)
                pages.append([e.execution_id for e in found.executions])
            assert pages == [*expected, []], case
            pages, page = [], 1
            while True:
                found = comparison.page_of(environment, filters, sort, descending, page, 25,
                                           aggregation, after)
                if not found.executions:
                    break
                pages.append([e.execution_id for e in found.executions])
                after = Cursor.decode(found.next_after.encode())
                page += 1
            assert pages == expected, case


def test_filtered_metric_sorts_read_the_keys_own_columns(store):
    """Metric and list-metric keys carry their execution's pipeline and deployment
    (migration 0021), and no status until the indexer passes them: filtered sorts by them
    equal a full read with none, part or all of the keys written before 0021 filled, with
    running executions that record metrics then end, and after deletes (retention); the
    counters equal a GROUP BY; a sort filtered by pipeline reads one index range and no
    execution."""
    url, env = store
    _add(env, 0, COUNT)
    _add_lists(0, COUNT)
    # A store from before 0021: its metric keys carry nothing (nor are counted).
    SortKey.update(pipeline_name=None, deployment_name=None, status=None).where(
        SortKey.key.startswith("m:") | SortKey.key.startswith("lm:")).execute()
    SchemaVersion.update(version=migrations.MIGRATIONS.index(
        migrations._0021_metric_key_filters)).execute()
    store_db.init_db(url).close()
    db = store_db.init_db(url)
    with db.connection_context():
        fill = MetricSortFill.get(MetricSortFill.environment_id == env.id)
        assert (fill.until_execution_id, fill.execution_id) == (f"x-{COUNT - 1:04d}", None)
        assert sortindex.carried(env.id, "m:acc") == ()
        assert sortindex.carried(env.id, "in:lr") == sortindex.FILTERS
        _counters_match()
        # Written after 0021: they carry their columns from the start (and, recorded
        # after their execution ended here, its status: 0023); some still run.
        _add(env, COUNT, 30)
        _add(env, COUNT + 30, 20, status="Running")
        _add_lists(COUNT, 50)
        fresh = SortKey.select().where(SortKey.execution_id >= f"x-{COUNT:04d}")
        statuses = {e.execution_id: e.status for e in Execution.select()}
        assert fresh.count() and all(
            (k.pipeline_name, k.status) == (
                ("p-a", "p-b")[int(k.execution_id[2:]) % 3 == 0],
                None if statuses[k.execution_id] == "Running" else statuses[k.execution_id])
            for k in fresh if k.key.startswith(("m:", "lm:")))
        _assert_metric_pages(env)  # nothing filled: each key's execution checked
        assert sortindex.fill_batch(env.id, batch=100, model=MetricSortFill) == 100
        assert sortindex.carried(env.id, "m:acc") == ()
        _counters_match()
        _assert_metric_pages(env)  # part filled
        while sortindex.fill_batch(env.id, batch=100, model=MetricSortFill):
            pass
        # The indexer passed none: no key has a status yet, a status filter's are all tail.
        assert sortindex.carried(env.id, "m:acc") == sortindex.FILTERS
        assert not SortKey.select().where(
            (SortKey.key.startswith("m:") | SortKey.key.startswith("lm:"))
            & SortKey.pipeline_name.is_null()).exists()
        assert _metric_statuses() == {  # the fill gives no status
            i: statuses[i] if int(i[2:]) >= COUNT and statuses[i] != "Running" else None
            for i in _metric_statuses()}
        _counters_match()
        _assert_metric_pages(env)  # all filled: the keys' own columns
        # The running ones record more, then end (some fail): a status filter follows
        # their execution at once.
        running = [f"x-{i:04d}" for i in range(COUNT + 30, COUNT + 50)]
        Metric.update(value=Metric.value + 0.05).where(Metric.execution_id.in_(running)
                                                       ).execute()
        for n, execution_id in enumerate(running):
            Execution.update(status="Failed" if n % 4 == 0 else "Succeeded").where(
                Execution.execution_id == execution_id).execute()
        _counters_match()
        _assert_metric_pages(env)
        # Retention: executions go with their metrics, lists and keys.
        gone = [f"x-{i:04d}" for i in range(0, COUNT + 50, 7)]
        for model in (Metric, ListMetric, Execution):
            model.delete().where(model.execution_id.in_(gone)).execute()
        assert not SortKey.select().where(SortKey.execution_id.in_(gone)).exists()
        _counters_match()
        _assert_metric_pages(env)
        if url.startswith("sqlite"):
            _assert_reads_the_pipeline_index(comparison._keyed(
                env, comparison.Filters(pipeline="p-b"), "m:acc",
                sortindex.carried(env.id, "m:acc")), 40)
    db.close()


def test_status_filtered_metric_sorts_read_the_status_index(store, monkeypatch):
    """The indexer stamps an ended execution's metric keys with its status (migration
    0023; those it passed before, MetricStatusFill): a sort by a metric filtered by status
    reads the status index and merges in the executions not passed yet, equal to a full
    read with none, part or all of the old keys stamped, executions running then ending,
    metrics recorded after their execution ended, the tail too long to merge, and after
    deletes; an execution that ended within the lag waits (a metric still committing
    would miss the stamp)."""
    url, env = store
    _add(env, 0, COUNT)
    _add(env, COUNT, 20, status="Running")
    _add_lists(0, COUNT + 20)
    horizon = START + dt.timedelta(days=1)
    assert sortindex.index_batch(env.id, ENDED, horizon, batch=COUNT) == COUNT
    # A store from before 0023: passed executions' metric keys carry no status.
    SortKey.update(status=None).where(SortKey.key.startswith("m:")
                                      | SortKey.key.startswith("lm:")).execute()
    SchemaVersion.update(version=migrations.MIGRATIONS.index(
        migrations._0023_metric_key_status)).execute()
    store_db.init_db(url).close()
    db = store_db.init_db(url)
    with db.connection_context():
        assert MetricStatusFill.get(MetricStatusFill.environment_id == env.id
                                    ).until_execution_id == f"x-{COUNT - 1:04d}"
        assert sortindex.carried(env.id, "m:acc") == sortindex.METRIC_FILTERS
        # Not passed yet, their metrics recorded after they ended: stamped by the trigger.
        _add(env, COUNT + 20, 30)
        statuses = {e.execution_id: e.status for e in Execution.select()}
        assert _metric_statuses() == {
            i: statuses[i] if int(i[2:]) >= COUNT + 20 else None for i in _metric_statuses()}
        _assert_metric_pages(env)  # nothing stamped: each key's execution checked
        assert sortindex.fill_batch(env.id, batch=100, model=MetricStatusFill,
                                    ended=ENDED) == 100
        assert sortindex.carried(env.id, "m:acc") == sortindex.METRIC_FILTERS
        _counters_match()
        _assert_metric_pages(env)  # part stamped
        while sortindex.fill_batch(env.id, batch=100, model=MetricStatusFill, ended=ENDED):
            pass
        assert sortindex.carried(env.id, "m:acc") == sortindex.FILTERS
        assert _metric_statuses() == {
            i: None if COUNT <= int(i[2:]) < COUNT + 20 else statuses[i]
            for i in _metric_statuses()}
        _counters_match()
        _assert_metric_pages(env)  # the status index, the running ones merged in
        if url.startswith("sqlite"):
            _assert_reads_the_pipeline_index(comparison._keyed(
                env, comparison.Filters(status="Failed"), "m:acc", sortindex.FILTERS), 5,
                "status")
        with monkeypatch.context() as patch:
            patch.setattr(comparison, "TAIL_LIMIT", 10)  # too many to merge: checked
            _assert_metric_pages(env)
        # The running ones record more and end now; the indexer passes them and the 30.
        running = [f"x-{i:04d}" for i in range(COUNT, COUNT + 20)]
        Metric.update(value=Metric.value + 0.05).where(Metric.execution_id.in_(running)
                                                       ).execute()
        now = store_db.utcnow()
        for n, execution_id in enumerate(running):
            Execution.update(status="Failed" if n % 4 == 0 else "Succeeded",
                             end_date=now).where(Execution.execution_id == execution_id
                                                 ).execute()
        # Recorded after their execution ended (a request that checked it still ran): the
        # trigger gives these keys the status, the indexer's stamp has passed or skips them.
        late = ["x-0244"]  # no metric nor list before
        assert not Metric.select().where(Metric.execution_id.in_(late)).exists()
        assert not ListMetric.select().where(ListMetric.execution_id.in_(late)).exists()
        Metric.create(environment=env, execution_id=late[0], pipeline_name="p", name="acc",
                      value=0.33)
        ListMetric.create(environment=env, execution_id=late[0], pipeline_name="p",
                          name="loss", count=1, value_min=0.7, value_max=0.7, value_sum=0.7,
                          value_last=0.7)
        assert SortIndexer(60).index_once() == 50
        statuses = {e.execution_id: e.status for e in Execution.select()}
        # Ended within the lag: still pending, their keys unstamped but the late ones.
        assert {p.execution_id for p in SortPending.select()} == set(running)
        assert _metric_statuses() == {
            i: None if i in running and i not in late else statuses[i]
            for i in _metric_statuses()}
        _counters_match()
        _assert_metric_pages(env)
        later = now + 2 * sortindex.LAG
        assert sortindex.index_pending(env.id, ENDED, later - sortindex.LAG) == 20
        assert _metric_statuses() == {i: statuses[i] for i in _metric_statuses()}
        _counters_match()
        _assert_metric_pages(env)  # all from the status index
        gone = [f"x-{i:04d}" for i in range(0, COUNT + 50, 7)]
        for model in (Metric, ListMetric, Execution):
            model.delete().where(model.execution_id.in_(gone)).execute()
        _counters_match()
        _assert_metric_pages(env)
    db.close()
