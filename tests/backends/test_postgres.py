"""PostgreSQL as the store: the same Peewee models, migrations that run once on SQLite and on
PostgreSQL, and several API processes sharing one database."""

from __future__ import annotations

import struct
import threading

import peewee
import pytest
from playhouse.migrate import SchemaMigrator, migrate
from shipyard_service.store import db as store_db
from shipyard_service.store import migrations
from shipyard_service.store.models import (
    Environment,
    Metric,
    Project,
    SchemaVersion,
    SortKey,
    User,
)

from ..helpers import Api, ServerProcess, assert_error, create_step_http, run_and_wait


def _columns(db: peewee.Database, table: str) -> set[str]:
    return {c.name for c in db.get_columns(table)}


def test_migrations_run_once_on_both_databases(database_url, monkeypatch):
    db = store_db.init_db(database_url)
    with db.connection_context():
        base = SchemaVersion.get().version
    calls = []

    def add_nickname(database: peewee.Database) -> None:
        calls.append(1)
        migrator = SchemaMigrator.from_database(database)
        migrate(migrator.add_column("user", "test_nickname", peewee.CharField(null=True)))

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, add_nickname])
    for _ in range(3):  # every start applies what is missing, and only that
        db = store_db.init_db(database_url)
    assert calls == [1]
    with db.connection_context():
        assert SchemaVersion.select().count() == 1
        assert SchemaVersion.get().version == base + 1
        assert "test_nickname" in _columns(db, "user")
        User.create(id="u1", name="n", email="n@example.com", sdk_token_hash="x")
        assert User.select().count() == 1
    db.close()


def test_a_failing_migration_leaves_the_version_unchanged(database_url, monkeypatch):
    db = store_db.init_db(database_url)
    with db.connection_context():
        base = SchemaVersion.get().version

    def broken(database: peewee.Database) -> None:
        raise RuntimeError("broken migration")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    with pytest.raises(RuntimeError):
        store_db.init_db(database_url)
    with db.connection_context():
        assert SchemaVersion.get().version == base
    db.close()


def test_several_api_processes_share_one_postgresql_database(pg, tmp_path):
    env = {"SHIPYARD_DATABASE_URL": pg.create_database("shared")}
    data = tmp_path / "data"  # shared: the signing key, step code and execution files
    first = ServerProcess(data, env=env).start()
    second = None
    try:
        second = ServerProcess(data, env=env).start()
        a, b = Api(first), Api(second)
        assert a.request("GET", "/steps").status_code == 200
        # Tokens minted by one process are accepted by the other.
        b._token = a.token()
        assert b.request("GET", "/steps").status_code == 200

        errors = []

        def writer(api: Api, prefix: str) -> None:
            for i in range(15):
                r = api.request("PUT", "/environment-variables",
                                json={"environment_variables": {f"{prefix}_{i}": str(i)}})
                if r.status_code not in (200, 204):
                    errors.append(r.text)

        threads = [threading.Thread(target=writer, args=(api, name))
                   for api, name in ((a, "A"), (b, "B"), (a, "C"), (b, "D"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        for api in (a, b):
            names = {v["name"] for v in api.request("GET", "/environment-variables").json()}
            assert len({n for n in names if n[:2] in ("A_", "B_", "C_", "D_")}) == 60

        # A pipeline created through one process runs through the other.
        body = create_step_http(a, "shared", {"main.py": "def run():\n    return {'o': 'ok'}\n"},
                                kind="pipelines",
                                fields={"outputs[0][name]": "o", "outputs[0][data_type]": "string"})
        assert body["creation_info"]["status"] == "ready", body
        execution_id, out = run_and_wait(b, "shared")
        assert out.status_code == 200, out.text
        assert a.request("GET", f"/executions/{execution_id}").json()["status"] == "Succeeded"
        # Bad input is refused the same way on both.
        for api in (a, b):
            assert_error(api.request("PUT", "/environment-variables",
                                     json={"environment_variables": {"bad name": "x"}}), 400)
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_execution_index_migration_on_both_databases(database_url):
    """Migration 0002 turns a store made before it (six single-column indexes on
    executions) into the current one (token + two composites); the rows stay."""
    db = store_db.init_db(database_url)
    composites = {"execution_environment_id_pipeline_name_created_at",
                  "execution_environment_id_deployment_name_created_at"}
    with db.connection_context():
        for name in composites:
            db.execute_sql(f'DROP INDEX "{name}"')
        for column in ("environment_id", "pipeline_name", "deployment_name", "status",
                       "created_at"):
            db.execute_sql(f'CREATE INDEX "execution_{column}" ON "execution" ("{column}")')
        SchemaVersion.update(version=1).execute()
    db = store_db.init_db(database_url)
    with db.connection_context():
        names = {index.name for index in db.get_indexes("execution")}
        assert SchemaVersion.get().version == len(migrations.MIGRATIONS)
    assert composites <= names
    assert "execution_token_hash" in names
    assert not names & {"execution_environment_id", "execution_pipeline_name",
                        "execution_deployment_name", "execution_status", "execution_created_at"}


def test_store_index_migration_on_both_databases(database_url):
    """Migration 0006 turns the metric tables' single-column indexes into the composite
    (environment, filter, created_at, id) ones and adds the environment's date index on
    executions; a migrated store ends with the indexes of a fresh one, and its rows."""
    db = store_db.init_db(database_url)
    tables = ("metric", "listmetric", "execution")
    with db.connection_context():
        fresh = {t: {i.name for i in db.get_indexes(t)} for t in tables}
        env = Environment.create(project=Project.create(name="p"), name="e")
        Metric.create(environment=env, execution_id="x-1", pipeline_name="p", name="m", value=1)
        # The store as migration 0005 left it.
        for table in ("metric", "listmetric"):
            for name in fresh[table]:
                if name.endswith("_created_at_id"):
                    db.execute_sql(f'DROP INDEX "{name}"')
            for column in ("environment_id", "execution_id", "pipeline_name",
                           "deployment_name", "name"):
                db.execute_sql(f'CREATE INDEX "{table}_{column}" ON "{table}" ("{column}")')
        db.execute_sql('DROP INDEX "execution_environment_id_created_at_execution_id"')
        SchemaVersion.update(version=5).execute()
    db = store_db.init_db(database_url)
    with db.connection_context():
        assert SchemaVersion.get().version == len(migrations.MIGRATIONS)
        migrated = {t: {i.name for i in db.get_indexes(t)} for t in tables}
        assert Metric.select().count() == 1
    assert migrated == fresh
    assert "metric_environment_id_pipeline_name_created_at_id" in fresh["metric"]
    assert "listmetric_environment_id_deployment_name_created_at_id" in fresh["listmetric"]
    assert "execution_environment_id_created_at_execution_id" in fresh["execution"]
    assert not fresh["metric"] & {"metric_pipeline_name", "metric_name", "metric_execution_id"}


def _drop_row_counts(db: peewee.Database) -> None:
    """The store as migration 0011 left it: no counter table, no triggers."""
    sqlite = isinstance(db, peewee.SqliteDatabase)
    for table in ("metric", "listmetric", "execution", "sortkey"):  # sortkey's: 0018
        for op in ("insert", "delete", "update"):
            db.execute_sql(f'DROP TRIGGER IF EXISTS "{table}_count_{op}"'
                           + ("" if sqlite else f' ON "{table}"'))
    db.execute_sql('DROP TABLE "rowcount"')
    db.execute_sql('DROP INDEX "execution_failed_environment_id_created_at"')
    SchemaVersion.update(version=11).execute()


def test_row_counts_follow_every_write_on_both_databases(database_url):
    """Migration 0012 counts the metric rows and executions already stored; then the
    triggers keep the counters equal to COUNT(*) for every filter through inserts, upserts
    (no new row), bulk inserts, status changes and deletes, on SQLite and PostgreSQL."""
    from shipyard_service.store import counts
    from shipyard_service.store.models import Execution, ListMetric

    db = store_db.init_db(database_url)
    with db.connection_context():
        env = Environment.create(project=Project.create(name="p"), name="e")
        other = Environment.create(project=env.project, name="other")
        Metric.insert_many([
            {"environment": env, "execution_id": f"x-{i}", "pipeline_name": f"p{i % 3}",
             "deployment_name": None if i % 2 else "d", "name": f"m{i % 2}", "value": i}
            for i in range(30)]).execute()
        Execution.insert_many([
            {"execution_id": f"x-{i}", "environment": env, "pipeline_name": f"p{i % 3}",
             "deployment_name": None if i % 2 else "d", "status": "Succeeded"}
            for i in range(30)]).execute()
        _drop_row_counts(db)
    db = store_db.init_db(database_url)
    with db.connection_context():
        assert SchemaVersion.get().version == len(migrations.MIGRATIONS)
        assert "execution_failed_environment_id_created_at" in {
            i.name for i in db.get_indexes("execution")}
        Metric.insert(environment=env, execution_id="x-1", pipeline_name="p1", name="m1",
                      value=5).on_conflict(conflict_target=[Metric.execution_id, Metric.name],
                                           update={Metric.value: 5}).execute()
        Metric.insert_many([{"environment": env, "execution_id": f"y-{i}", "pipeline_name": "p0",
                             "deployment_name": "d", "name": "m0", "value": i}
                            for i in range(7)]).execute()
        Metric.create(environment=other, execution_id="z", pipeline_name="p0", name="m0", value=1)
        Metric.delete().where(Metric.execution_id.in_(["x-0", "x-3", "y-1"])).execute()
        for i in range(4):
            ListMetric.create(environment=env, execution_id=f"x-{i}", pipeline_name="p0",
                              name="curve", values=[])
        ListMetric.delete().where(ListMetric.execution_id == "x-2").execute()
        Execution.create(execution_id="new", environment=env, pipeline_name="p0")  # Pending
        Execution.update(status="Running").where(Execution.execution_id == "new").execute()
        Execution.update(status="Failed").where(Execution.execution_id.in_(
            ["x-1", "x-2", "x-4", "new"])).execute()
        Execution.update(pid=7).where(Execution.execution_id == "x-5").execute()
        Execution.delete().where(Execution.execution_id.in_(["x-3", "x-4"])).execute()
        assert counts.total("execution", env.id, {"name": "Failed"}) == 3
        assert counts.breakdown("execution", env.id, {}, "name") == {"Succeeded": 26,
                                                                    "Failed": 3}
        for model in (Metric, ListMetric, Execution):
            for filters in ({}, {"pipeline_name": "p0"}, {"deployment_name": "d"},
                            {"name": "m0"}, {"name": "curve", "pipeline_name": "p0"},
                            {"name": "m1", "deployment_name": "d"}, {"name": "Failed"},
                            {"name": "Succeeded", "pipeline_name": "p1"}):
                query = model.select().where(model.environment == env)
                for key, value in filters.items():
                    column = "status" if model is Execution and key == "name" else key
                    query = query.where(getattr(model, column) == value)
                assert counts.total(model._meta.table_name, env.id, filters) == query.count(), \
                    (model, filters)
        assert counts.total("metric", env.id, {}) == 30 + 7 - 3
        assert counts.total("metric", other.id, {"pipeline_name": "p0"}) == 1
    db.close()


def test_step_reuse_and_cache_migration_on_both_databases(database_url):
    """Migration 0011 gives a store made before it the step cache's columns (existing steps
    uncached, existing deployments using the cache) and its table; the rows stay."""
    from shipyard_service.store.models import Step, StepCache

    db = store_db.init_db(database_url)
    with db.connection_context():
        env = Environment.create(project=Project.create(name="p"), name="e")
        Step.create(environment=env, name="s", function_path="main.py", function_name="run")
        _drop_row_counts(db)  # 0012 runs again too: from the store as 0010 left it
        migrator = SchemaMigrator.from_database(db)
        for table, column in (("step", "cache_results"), ("step", "code_hash"),
                              ("stepexecution", "origin_execution_id"),
                              ("stepexecution", "metrics_in_origin"),
                              ("stepexecution", "cache_key"), ("deployment", "use_cache")):
            migrate(migrator.drop_column(table, column))
        db.execute_sql('DROP TABLE "stepcache"')
        SchemaVersion.update(version=10).execute()
    db = store_db.init_db(database_url)
    with db.connection_context():
        assert SchemaVersion.get().version == len(migrations.MIGRATIONS)
        assert {"cache_results", "code_hash"} <= _columns(db, "step")
        assert {"origin_execution_id", "metrics_in_origin", "cache_key"} <= _columns(
            db, "stepexecution")
        assert "use_cache" in _columns(db, "deployment")
        step = Step.get(Step.name == "s")
        assert step.cache_results is False and step.code_hash is None
        assert StepCache.select().count() == 0
    db.close()


def test_sort_keys_follow_metric_writes_on_both_databases(database_url):
    """Migration 0013 fills the comparison's sort keys from the stored metrics and list
    summaries; then triggers keep them equal to the metric tables through inserts, upserts
    (one inside another upsert), appends and deletes, and drop an execution's keys with it."""
    from shipyard_service.store.models import Execution, ListMetric, SortKey

    db = store_db.init_db(database_url)
    with db.connection_context():
        env = Environment.create(project=Project.create(name="p"), name="e")
        for i in range(3):
            Execution.create(execution_id=f"x-{i}", environment=env, pipeline_name="p")
        Metric.create(environment=env, execution_id="x-0", pipeline_name="p", name="acc",
                      value=0.5)
        ListMetric.create(environment=env, execution_id="x-0", pipeline_name="p", name="loss",
                          values=[], count=2, value_min=1, value_max=3, value_sum=4,
                          value_last=3)
        db.execute_sql('DROP TABLE "sortkey"')
        SchemaVersion.update(version=12).execute()
    db = store_db.init_db(database_url)

    def keys() -> dict:
        return {(k.execution_id, k.key): (float(k.value), k.created_at is not None)
                for k in SortKey.select()}

    with db.connection_context():
        assert keys() == {("x-0", "m:acc"): (0.5, True), ("x-0", "lm:loss:min"): (1, True),
                          ("x-0", "lm:loss:max"): (3, True), ("x-0", "lm:loss:mean"): (2, True),
                          ("x-0", "lm:loss:last"): (3, True)}
        for value in (0.7, 0.9):  # the metric's upsert: insert, then its update path
            Metric.insert(environment=env, execution_id="x-1", pipeline_name="p", name="acc",
                          value=value).on_conflict(
                conflict_target=[Metric.execution_id, Metric.name],
                update={Metric.value: value}).execute()
        ListMetric.insert(environment=env, execution_id="x-1", pipeline_name="p", name="loss",
                          values=[], count=0).on_conflict_ignore().execute()
        assert ("x-1", "lm:loss:last") not in keys()  # no value yet
        ListMetric.update(count=1, value_min=5, value_max=5, value_sum=5, value_last=5).where(
            ListMetric.execution_id == "x-1").execute()
        found = keys()
        assert found[("x-1", "m:acc")] == (0.9, True)
        assert found[("x-1", "lm:loss:mean")] == (5, True)
        Metric.delete().where(Metric.execution_id == "x-0").execute()
        ListMetric.delete().where(ListMetric.execution_id == "x-0").execute()
        Execution.delete().where(Execution.execution_id == "x-1").execute()
        assert keys() == {}
    db.close()


def _as_float4(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def _record_values(env, prefix: str, values: list[float]) -> None:
    """An execution per value, with the value as metric `m` and as list metric `l`."""
    from shipyard_service.store.models import Execution, ListMetric

    for i, value in enumerate(values):
        Execution.create(execution_id=f"{prefix}-{i}", environment=env, pipeline_name="p")
        Metric.create(environment=env, execution_id=f"{prefix}-{i}", name="m", value=value)
        ListMetric.create(environment=env, execution_id=f"{prefix}-{i}", name="l", count=1,
                          value_min=value, value_max=value, value_sum=value, value_last=value)


def test_double_precision_migration_on_both_databases(database_url):
    """Migration 0015: a PostgreSQL store made before it (metric values and list summaries
    in `real` columns, 4 bytes) gets DOUBLE PRECISION columns; the values it had rounded
    stay what they were, new ones are exact, and the sort keys follow the retyped values
    (SQLite's REAL held 8 bytes all along)."""
    from shipyard_service.domain import comparison
    from shipyard_service.store import sortkeys
    from shipyard_service.store.models import Execution, ListMetric

    db = store_db.init_db(database_url)
    postgres = not isinstance(db, peewee.SqliteDatabase)
    old, new = [0.1 + 0.2, 123456789.12, 1e30, -1e-30], [0.1 + 0.2, 123456789.12, 1e300, -1e-300]
    with db.connection_context():
        if postgres:  # the columns as Peewee's FloatField made them, triggers as 0014 left them
            for name, table in (("metric_sortkey_update", "metric"),
                                ("listmetric_sortkey_update", "listmetric")):
                db.execute_sql(f'DROP TRIGGER "{name}" ON "{table}"')
            for table, columns in migrations._DOUBLES.items():
                db.execute_sql(f'ALTER TABLE "{table}" ' + ", ".join(
                    f'ALTER COLUMN "{c}" TYPE REAL' for c in columns))
            sortkeys.refresh_postgres(db)
        env = Environment.create(project=Project.create(name="p"), name="e")
        _record_values(env, "old", old)
        SchemaVersion.update(version=14).execute()
    db = store_db.init_db(database_url)
    stored = [_as_float4(v) for v in old] if postgres else old
    with db.connection_context():
        assert SchemaVersion.get().version == len(migrations.MIGRATIONS)
        if postgres:
            types = set(db.execute_sql(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND data_type = 'real'").fetchall())
            assert types == set()
        assert [m.value for m in Metric.select().order_by(Metric.execution_id)] == stored
        env = Environment.get()
        _record_values(env, "new", new)
        # A runner's start time (the local orchestrator's pid-reuse check allows 1 s; a
        # float4 keeps 128 s steps of today's epoch seconds).
        started = 1780000000.123456
        Execution.update(pid_started_at=started).where(
            Execution.execution_id == "new-0").execute()
        assert Execution.get(Execution.execution_id == "new-0").pid_started_at == started
        metrics = {m.execution_id: m.value for m in Metric.select()}
        assert [metrics[f"new-{i}"] for i in range(4)] == new
        lists = {m.execution_id: (m.value_min, m.value_max, m.value_sum, m.value_last)
                 for m in ListMetric.select()}
        assert [lists[f"new-{i}"] for i in range(4)] == [(v,) * 4 for v in new]
        # The sort keys hold the values as they now read, and sort by them.
        ranked = sorted(metrics, key=lambda e: (metrics[e], e))
        for sort in ("m:m", "lm:l"):
            for aggregation in ("min", "max", "mean", "last"):
                page = comparison.page_of(env, comparison.Filters(), sort, False, 1, 25,
                                          aggregation)
                order = [x.execution_id for x in page.executions]
                assert sorted(order, key=lambda e: (metrics[e], e)) == ranked
                assert [metrics[e] for e in order] == sorted(metrics.values())
        keys = {(k.execution_id, k.key): float(k.value)
                for k in SortKey.select().where(SortKey.key == "m:m")}
        assert keys == {(e, "m:m"): v for e, v in metrics.items()}
    db.close()
