"""Schema version bookkeeping; each migration is a function run once, in order."""

from __future__ import annotations

import peewee

from .models import SchemaVersion


def _add_column(db: peewee.Database, table: str, name: str, field: peewee.Field) -> None:
    """Idempotent: a fresh database got the column from create_tables already."""
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

    if name in {c.name for c in db.get_columns(table)}:
        return
    migrator = (SqliteMigrator(db) if isinstance(db, peewee.SqliteDatabase)
                else PostgresqlMigrator(db))
    migrate(migrator.add_column(table, name, field))


def _0001_deployment_runner_token(db: peewee.Database) -> None:
    _add_column(db, "deployment", "runner_token_sealed", peewee.TextField(null=True))


def _0002_execution_indexes(db: peewee.Database) -> None:
    """Six single-column indexes on executions become two composite ones (and the token
    one stays): fewer index writes per execution."""
    for column in ("environment_id", "pipeline_name", "deployment_name", "status", "created_at"):
        db.execute_sql(f'DROP INDEX IF EXISTS "execution_{column}"')
    for columns in (("environment_id", "pipeline_name", "created_at"),
                    ("environment_id", "deployment_name", "created_at")):
        name = "execution_" + "_".join(columns)
        quoted = ", ".join(f'"{c}"' for c in columns)
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "execution" ({quoted})')


def _0003_list_metric_summary(db: peewee.Database) -> None:
    """Min, max, sum and last value of each list metric, for the comparison table's SQL
    sorts; existing lists get theirs from their chunks."""
    from .models import ListMetric, ListMetricChunk

    for name in ("value_min", "value_max", "value_sum", "value_last"):
        _add_column(db, "listmetric", name, peewee.FloatField(null=True))
    pending = (ListMetric.select(ListMetric.id, ListMetric.values)
               .where((ListMetric.count > 0) & ListMetric.value_last.is_null()).tuples())
    for header_id, legacy in list(pending):
        values = list(legacy or [])
        for (chunk,) in (ListMetricChunk.select(ListMetricChunk.values)
                         .where(ListMetricChunk.list_metric == header_id)
                         .order_by(ListMetricChunk.id).tuples()):
            values.extend(chunk)
        if values:
            ListMetric.update(value_min=min(values), value_max=max(values),
                              value_sum=float(sum(values)), value_last=values[-1]
                              ).where(ListMetric.id == header_id).execute()


def _0004_pipeline_graphs(db: peewee.Database) -> None:
    """Multi-step pipelines: their connections, and the step of each execution log line
    (the PipelineStep and StepExecution tables are new: create_tables made them)."""
    _add_column(db, "pipeline", "connections", peewee.TextField(null=True))
    _add_column(db, "executionlog", "step_name", peewee.CharField(null=True))


def _0005_project_memberships(db: peewee.Database) -> None:
    """Project roles arrive: before them every user could read and change every project,
    so each existing user becomes admin of each existing project (nobody loses access).
    Users get the `disabled` flag."""
    from .models import Membership, Project, User

    _add_column(db, "user", "disabled", peewee.BooleanField(default=False))
    db.create_tables([Membership], safe=True)
    users = [u.id for u in User.select(User.id)]
    projects = [p.id for p in Project.select(Project.id)]
    rows = [{"user": u, "project": p, "role": "admin"} for u in users for p in projects]
    for start in range(0, len(rows), 500):
        Membership.insert_many(rows[start:start + 500]).on_conflict_ignore().execute()


def _0006_store_indexes(db: peewee.Database) -> None:
    """Indexes for stores of millions of executions: the environment's executions by date,
    and metric pages by (environment, filter, created_at, id) in place of single-column
    indexes, which made every filtered page sort all matching rows."""
    from .models import METRIC_INDEXES

    for table in ("metric", "listmetric"):
        for column in ("environment_id", "execution_id", "pipeline_name", "deployment_name",
                       "name"):
            db.execute_sql(f'DROP INDEX IF EXISTS "{table}_{column}"')
        for columns, unique in METRIC_INDEXES[1:]:
            _create_index(db, table, [c + "_id" if c == "environment" else c
                                      for c in columns], unique)
    _create_index(db, "execution", ["environment_id", "created_at", "execution_id"], False)


def _create_index(db: peewee.Database, table: str, columns: list[str], unique: bool) -> None:
    # Peewee's own name for a model index, so fresh and migrated stores are alike.
    name = f"{table}_" + "_".join(columns)
    quoted = ", ".join(f'"{c}"' for c in columns)
    kind = "UNIQUE INDEX" if unique else "INDEX"
    db.execute_sql(f'CREATE {kind} IF NOT EXISTS "{name}" ON "{table}" ({quoted})')


def _0007_environment_retention(db: peewee.Database) -> None:
    """Each environment's retention policy; null (off) for existing ones."""
    _add_column(db, "environment", "retention_days", peewee.IntegerField(null=True))
    _add_column(db, "environment", "retention_keep_last", peewee.IntegerField(null=True))


def _0008_endpoint_token_sealed(db: peewee.Database) -> None:
    """Endpoint tokens are stored sealed (crypto.py): a sealed chosen token can pass 255
    characters, so the column becomes TEXT on PostgreSQL (SQLite does not bound VARCHAR).
    The clear tokens already stored are sealed at the next start, once the encryption key
    is loaded (projects.seal_stored_secrets): migrations run before it is."""
    if not isinstance(db, peewee.SqliteDatabase):
        db.execute_sql("ALTER TABLE deployment ALTER COLUMN endpoint_token TYPE TEXT")


def _0009_login_failures(db: peewee.Database) -> None:
    """Failed logins, counted per account and per address by the login throttle."""
    from .models import LoginFailure

    db.create_tables([LoginFailure], safe=True)


def _0010_step_retries(db: peewee.Database) -> None:
    """Retries of a step (none for existing steps: their behaviour is unchanged), when a
    retry may start, and the attempt each log line comes from."""
    _add_column(db, "step", "max_retries", peewee.IntegerField(default=0))
    _add_column(db, "step", "retry_delay_s", peewee.IntegerField(default=0))
    _add_column(db, "stepexecution", "retry_at", peewee.DateTimeField(null=True))
    _add_column(db, "executionlog", "attempt", peewee.IntegerField(null=True))


def _0011_step_reuse_and_cache(db: peewee.Database) -> None:
    """Re-runs and the step cache: a step's cache flag and files hash, a step execution's
    origin (Reused or Cached), its cache key and metrics note, a deployment's use of the
    cache (the StepCache table is new: create_tables made it)."""
    _add_column(db, "step", "cache_results", peewee.BooleanField(default=False))
    _add_column(db, "step", "code_hash", peewee.CharField(null=True))
    _add_column(db, "stepexecution", "origin_execution_id", peewee.CharField(null=True))
    _add_column(db, "stepexecution", "metrics_in_origin", peewee.BooleanField(null=True))
    _add_column(db, "stepexecution", "cache_key", peewee.CharField(null=True))
    _add_column(db, "deployment", "use_cache", peewee.BooleanField(default=True))


def _0012_row_counts(db: peewee.Database) -> None:
    """Metric, list-metric and execution totals kept per (pipeline, deployment, metric
    name or status) by triggers, so a page never counts millions of rows (existing rows are
    counted once here); failed executions get a partial index of their own."""
    from . import counts

    counts.install(db)


def _0013_sort_keys(db: peewee.Database) -> None:
    """The comparison view's sort keys (metrics and list-metric summaries),
    kept by triggers and filled here from what is stored."""
    from . import sortkeys

    sortkeys.install(db)


def _0014_sort_index(db: peewee.Database) -> None:
    """The sort indexer's mark and pending executions (store/sortindex.py). Nothing is
    filled here: the indexer catches up in the background, and until it has, the
    comparison view reads what it has not indexed yet from the executions themselves."""
    from .models import SortMark, SortPending

    db.create_tables([SortMark, SortPending], safe=True)


# Columns of user numbers and times that were Peewee FloatFields: `real` on PostgreSQL, a
# 4-byte float that rounded 0.1 + 0.2 to 0.3 and 123456789.12 to 123456790.
_DOUBLES = {"metric": ("value",),
            "listmetric": ("value_min", "value_max", "value_sum", "value_last"),
            "execution": ("pid_started_at", "cpu_time_s"),
            "stepexecution": ("pid_started_at", "cpu_time_s"),
            "resourcesample": ("cpu_percent", "gpu_percent")}


def _0015_double_precision(db: peewee.Database) -> None:
    """On PostgreSQL the `real` columns of _DOUBLES become DOUBLE PRECISION (values already
    rounded stay as they were, new ones are exact); SQLite's REAL is 8 bytes already. The
    sort keys' update triggers name these columns (PostgreSQL refuses to retype a column a
    trigger depends on): they are dropped, then made again, and the metric sort keys are
    rewritten from the retyped values so they sort as the values now read."""
    from . import sortkeys

    if isinstance(db, peewee.SqliteDatabase):
        return
    real = set(db.execute_sql(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type = 'real'").fetchall())
    alters = {table: [c for c in columns if (table, c) in real]
              for table, columns in _DOUBLES.items()}
    if not any(alters.values()):
        return
    for name, table in (("metric_sortkey_update", "metric"),
                        ("listmetric_sortkey_update", "listmetric")):
        db.execute_sql(f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"')
    for table, columns in alters.items():
        if columns:
            db.execute_sql(f'ALTER TABLE "{table}" ' + ", ".join(
                f'ALTER COLUMN "{c}" TYPE DOUBLE PRECISION' for c in columns))
    sortkeys.refresh_postgres(db)


def _0016_metric_days(db: peewee.Database) -> None:
    """Metric and list-metric rows per day of their filters (store/daycounts.py), kept by
    triggers and counted here from what is stored (one GROUP BY per table: seconds at
    1,000,000 executions), so a deep metric page starts at its day."""
    from . import daycounts

    daycounts.install(db)


def _0017_sort_key_filters(db: peewee.Database) -> None:
    """Input/output sort keys carry their execution's pipeline, deployment and status,
    with an index per filter, so a filtered sort's deep page is a range of one index.
    Three columns (no rewrite of the table) and three partial indexes holding no row yet;
    keys already written get their columns from the sort indexer in the background
    (SortFill), and until then that environment's filtered sorts check each key's
    execution as before."""
    from . import sortindex
    from .models import SortFill

    for column in sortindex.FILTERS:
        _add_column(db, "sortkey", column, peewee.CharField(null=True))
    for statement in sortindex.filter_indexes():
        db.execute_sql(statement)
    db.create_tables([SortFill], safe=True)
    sortindex.start_fill()


def _0018_sort_key_counts(db: peewee.Database) -> None:
    """Input/output sort keys counted per key, pipeline, deployment and status by triggers
    (store/counts.py), so a filtered sort's last pages need no count of the key's rows;
    the keys carrying their filter columns already are counted here (an index range)."""
    from . import counts

    counts.install_sort_keys(db)


def _0019_metric_days_pruned(db: peewee.Database) -> None:
    """The metric day counters' triggers remove a day left with no row (retention empties
    old days: a page's walk over its filter's days then stays as long as the days kept),
    and the days already at zero go."""
    from . import daycounts

    daycounts.install_triggers(db)


def _0020_finite_json(db: peewee.Database) -> None:
    """NaN/±Infinity stored before requests refused them (1c470b3) made null, as JSONField
    now writes them: PostgreSQL's jsonb refuses the bare tokens, so one such execution
    stopped the sort indexer of its environment for good (every pass failed on its CAST).
    Only rows whose text holds a token are read (a LIKE scan; none in most stores)."""
    import json

    from .models import Execution, StepCache, StepExecution, finite

    for model, columns in ((Execution, ("inputs", "outputs")),
                           (StepExecution, ("inputs", "outputs")), (StepCache, ("outputs",))):
        table, key = model._meta.table_name, model._meta.primary_key.column_name
        for column in columns:
            rows = db.execute_sql(
                f'SELECT "{key}", "{column}" FROM "{table}" '
                f'WHERE "{column}" LIKE {db.param} OR "{column}" LIKE {db.param}',
                ["%NaN%", "%Infinity%"]).fetchall()
            for row_key, text in rows:
                try:
                    fixed = json.dumps(finite(json.loads(text)))
                except ValueError:
                    continue  # not JSON at all: left as it is
                if fixed != text:
                    db.execute_sql(f'UPDATE "{table}" SET "{column}" = {db.param} '
                                   f'WHERE "{key}" = {db.param}', [fixed, row_key])


def _0021_metric_key_filters(db: peewee.Database) -> None:
    """Metric and list-metric sort keys carry their execution's pipeline and deployment
    (not its status: a metric is written while the execution runs), in the partial indexes
    of 0017 and counted by 0018's triggers (a null status under ''), so a sort by a metric
    filtered by pipeline or deployment reads one index range. Triggers only: the keys
    already stored are filled by the sort indexer in the background (MetricSortFill, up to
    each environment's newest execution), and until then that environment's filtered
    metric sorts check each key's execution as before."""
    from . import counts, sortindex, sortkeys
    from .models import MetricSortFill

    db.create_tables([MetricSortFill], safe=True)
    counts.sort_key_triggers(db)
    sortkeys.carry_filters(db)
    sortindex.start_metric_fill()


def _0022_sort_key_counts_per_statement(db: peewee.Database) -> None:
    """On PostgreSQL the sort keys' insert and delete counters run once per statement over
    its rows instead of once per row (store/counts.py): since 0021 every metric key fires
    them, which made a bulk load of metrics 3.2x slower. SQLite's triggers are remade as
    they were."""
    from . import counts

    counts.sort_key_triggers(db)


def _0023_metric_key_status(db: peewee.Database) -> None:
    """Metric and list-metric sort keys get their execution's status once it has ended:
    the sort indexer stamps those of each ended execution it passes, so a sort by a metric
    filtered by status reads one range of 0017's status index, with the executions not
    passed yet merged in (comparison.py). The keys of executions passed before are stamped
    in the background (MetricStatusFill, up to each environment's mark); until then that
    environment's status-filtered metric sorts check each key's execution as before. A
    metric written after its execution ended gets the status from its trigger."""
    from ..domain.lifecycle import FINAL
    from . import sortindex, sortkeys
    from .models import MetricStatusFill

    db.create_tables([MetricStatusFill], safe=True)
    sortkeys.carry_filters(db, FINAL)
    sortindex.start_fill(MetricStatusFill)


# Append migrations here; never edit one that has shipped.
MIGRATIONS: list = [_0001_deployment_runner_token, _0002_execution_indexes,
                    _0003_list_metric_summary, _0004_pipeline_graphs,
                    _0005_project_memberships, _0006_store_indexes,
                    _0007_environment_retention, _0008_endpoint_token_sealed,
                    _0009_login_failures, _0010_step_retries,
                    _0011_step_reuse_and_cache, _0012_row_counts,
                    _0013_sort_keys, _0014_sort_index,
                    _0015_double_precision, _0016_metric_days,
                    _0017_sort_key_filters, _0018_sort_key_counts,
                    _0019_metric_days_pruned, _0020_finite_json,
                    _0021_metric_key_filters, _0022_sort_key_counts_per_statement,
                    _0023_metric_key_status]


def apply(db: peewee.Database) -> None:
    row = SchemaVersion.select().first()
    current = row.version if row else 0
    for number, migration in enumerate(MIGRATIONS, start=1):
        if number > current:
            with db.atomic():
                migration(db)
    target = len(MIGRATIONS)
    if row is None:
        SchemaVersion.create(version=target)
    elif row.version != target:
        row.version = target
        row.save()
