"""The stored state of the platform. Every fact that must survive a restart lives here."""

from __future__ import annotations

import json
import math

import peewee

from ..jsonwalk import map_leaves
from .db import database, utcnow


def finite(value):
    """The JSON value with NaN and ±Infinity floats made null (as JavaScript's
    JSON.stringify does): JSON cannot carry them, strict readers (the web UI, PostgreSQL's
    jsonb in the sort index) refuse the bare `NaN` Python's json writes."""
    return map_leaves(value, _finite_leaf)


def _finite_leaf(leaf):
    return None if isinstance(leaf, float) and not math.isfinite(leaf) else leaf


class JSONField(peewee.TextField):
    def db_value(self, value):
        if value is None:
            return None
        text = json.dumps(value)
        # Requests refuse such numbers (jsontext.py); a step's answer may still hold them
        # (a resident runner's is read with plain json.loads). The text test spares the walk.
        if "NaN" in text or "Infinity" in text:
            text = json.dumps(finite(value))
        return text

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database


class SchemaVersion(BaseModel):
    version = peewee.IntegerField()


class User(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36)
    name = peewee.CharField()
    email = peewee.CharField(unique=True)
    password_hash = peewee.CharField(null=True)
    sdk_token_hash = peewee.CharField(index=True)
    # Bumped when the SDK token is regenerated: access tokens minted before are refused.
    token_generation = peewee.IntegerField(default=1)
    is_admin = peewee.BooleanField(default=False)  # platform admin: users, projects, all roles
    # A disabled user keeps its rows (created_by, memberships) but can no longer sign in.
    disabled = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField(default=utcnow)


class Project(BaseModel):
    name = peewee.CharField(unique=True)
    settings = JSONField(default=dict)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)


class Environment(BaseModel):
    project = peewee.ForeignKeyField(Project, backref="environments", on_delete="CASCADE")
    name = peewee.CharField()
    created_at = peewee.DateTimeField(default=utcnow)
    # Retention policy (domain/retention.py), off while both are null (migration 0007).
    retention_days = peewee.IntegerField(null=True)
    retention_keep_last = peewee.IntegerField(null=True)  # per deployment

    class Meta:
        indexes = ((("project", "name"), True),)


class EnvironmentVariable(BaseModel):
    environment = peewee.ForeignKeyField(Environment, on_delete="CASCADE")
    name = peewee.CharField()
    value = peewee.TextField()
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("environment", "name"), True),)


class Step(BaseModel):
    environment = peewee.ForeignKeyField(Environment, on_delete="CASCADE")
    name = peewee.CharField()
    function_path = peewee.CharField(null=True)
    function_name = peewee.CharField(null=True)
    description = peewee.TextField(null=True)
    inputs = JSONField(default=list)
    outputs = JSONField(default=list)
    container_config = JSONField(default=dict)
    origin = peewee.CharField(default="local")
    commit_id = peewee.CharField(null=True)
    status = peewee.CharField(default="creation_pending")
    error = peewee.TextField(null=True)
    env_key = peewee.CharField(null=True)
    # True for the step a pipeline created from a function owns (hidden from list_steps).
    internal = peewee.BooleanField(default=False)
    # A failed run is tried again up to max_retries times, the n-th retry after
    # retry_delay_s * 2**(n-1) seconds (migration 0010).
    max_retries = peewee.IntegerField(default=0)
    retry_delay_s = peewee.IntegerField(default=0)
    # The step cache (domain/step_cache.py): on for this step, and the hash of its files.
    cache_results = peewee.BooleanField(default=False)
    code_hash = peewee.CharField(null=True)
    created_by = peewee.CharField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("environment", "name", "internal"), True),)


class BuildLog(BaseModel):
    step = peewee.ForeignKeyField(Step, on_delete="CASCADE")
    timestamp = peewee.DateTimeField(default=utcnow)
    message = peewee.TextField()


class Pipeline(BaseModel):
    environment = peewee.ForeignKeyField(Environment, on_delete="CASCADE")
    name = peewee.CharField()
    # The first step; the only one of a single-step pipeline.
    step = peewee.ForeignKeyField(Step, on_delete="RESTRICT")
    # Multi-step pipelines: [{"source": "a.out", "target": "b.in"}] (null: a single step).
    connections = JSONField(null=True)
    created_by = peewee.CharField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("environment", "name"), True),)


class PipelineStep(BaseModel):
    """The steps of a multi-step pipeline, in the order `step_names` gave them."""

    pipeline = peewee.ForeignKeyField(Pipeline, on_delete="CASCADE")
    step = peewee.ForeignKeyField(Step, on_delete="RESTRICT")
    position = peewee.IntegerField()

    class Meta:
        indexes = ((("pipeline", "position"), True),)


class Execution(BaseModel):
    execution_id = peewee.CharField(primary_key=True)
    environment = peewee.ForeignKeyField(Environment, on_delete="CASCADE", index=False)
    pipeline_name = peewee.CharField()
    deployment_name = peewee.CharField(null=True)
    step_name = peewee.CharField(null=True)
    status = peewee.CharField(default="Pending")
    error = peewee.TextField(null=True)
    inputs = JSONField(default=list)
    outputs = JSONField(default=list)
    step_info = JSONField(default=dict)
    token_hash = peewee.CharField(null=True, index=True)
    pid = peewee.IntegerField(null=True)
    pid_started_at = peewee.DoubleField(null=True)
    cpu_time_s = peewee.DoubleField(null=True)
    peak_rss_bytes = peewee.BigIntegerField(null=True)
    created_by = peewee.CharField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    start_date = peewee.DateTimeField(null=True)
    end_date = peewee.DateTimeField(null=True)

    class Meta:
        # Each index is written by every insert on the endpoint hot path: only those the
        # lists need (per pipeline, per deployment, newest first) and the token lookup.
        # Active executions are searched only at start and stop: a scan is fine there.
        # (environment, created_at, execution_id): the environment's page, newest first, and
        # retention's cut by age (migration 0006).
        # Failed executions have their own partial index (store/counts.py, migration 0012).
        indexes = ((("environment", "pipeline_name", "created_at"), False),
                   (("environment", "deployment_name", "created_at"), False),
                   (("environment", "created_at", "execution_id"), False))


class StepExecution(BaseModel):
    """One attempt of one step in an execution of a multi-step pipeline. Its own token
    (the runner's credentials) tells which step a runner callback is about."""

    execution = peewee.ForeignKeyField(Execution, on_delete="CASCADE")
    step_name = peewee.CharField()
    position = peewee.IntegerField()
    attempt = peewee.IntegerField(default=1)
    status = peewee.CharField(default="Pending")  # lifecycle.StepExecutionStatus
    error = peewee.TextField(null=True)
    inputs = JSONField(default=list)  # [{"name", "data_type", "value", "source"}]
    outputs = JSONField(default=list)  # [{"name", "data_type", "value"}]
    token_hash = peewee.CharField(null=True, index=True)
    pid = peewee.IntegerField(null=True)
    pid_started_at = peewee.DoubleField(null=True)
    cpu_time_s = peewee.DoubleField(null=True)
    peak_rss_bytes = peewee.BigIntegerField(null=True)
    start_date = peewee.DateTimeField(null=True)
    end_date = peewee.DateTimeField(null=True)
    # A retry (attempt > 1) waits Pending until this time (migration 0010).
    retry_at = peewee.DateTimeField(null=True)
    # A step Reused by a re-run or Cached: the execution whose result it took.
    origin_execution_id = peewee.CharField(null=True)
    # Reused or Cached while the origin execution holds metrics (they stay there).
    metrics_in_origin = peewee.BooleanField(null=True)
    # The step cache's key of this run (steps with cache_results): recorded at its start,
    # entered in StepCache when it succeeds.
    cache_key = peewee.CharField(null=True)

    class Meta:
        indexes = ((("execution", "step_name", "attempt"), True),)


class StepCache(BaseModel):
    """A successful step run whose outputs serve later runs with the same key (code,
    environment, inputs: domain/step_cache.py). Deleted with its execution."""

    key = peewee.CharField()
    execution = peewee.ForeignKeyField(Execution, on_delete="CASCADE")
    step_name = peewee.CharField()
    # The step's own outputs [{"name", "data_type", "value"}] (file values are null: the
    # files stay in the execution's folder, `files_kind`).
    outputs = JSONField(default=list)
    files_kind = peewee.CharField()
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("key", "created_at"), False),)


class ExecutionLog(BaseModel):
    execution = peewee.ForeignKeyField(Execution, on_delete="CASCADE")
    timestamp = peewee.DateTimeField(index=True)
    stream = peewee.CharField(default="stdout")
    message = peewee.TextField()
    step_name = peewee.CharField(null=True)  # null: the only step of the pipeline
    attempt = peewee.IntegerField(null=True)  # the step's attempt; null: its first (0010)


# Metric pages are read by environment and one filter, in (created_at, id) order: one
# composite index per filter serves the count and the page's ids without touching rows, at
# any depth (migration 0006). (execution_id, name) also serves lookups by execution.
METRIC_INDEXES = (
    (("execution_id", "name"), True),
    (("environment", "created_at", "id"), False),
    (("environment", "pipeline_name", "created_at", "id"), False),
    (("environment", "deployment_name", "created_at", "id"), False),
    (("environment", "name", "created_at", "id"), False),
)


class Metric(BaseModel):
    environment = peewee.ForeignKeyField(Environment, on_delete="CASCADE", index=False)
    execution_id = peewee.CharField()
    pipeline_name = peewee.CharField(null=True)
    deployment_name = peewee.CharField(null=True)
    name = peewee.CharField()
    value = peewee.DoubleField()
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = METRIC_INDEXES


class ListMetric(BaseModel):
    environment = peewee.ForeignKeyField(Environment, on_delete="CASCADE", index=False)
    execution_id = peewee.CharField()
    pipeline_name = peewee.CharField(null=True)
    deployment_name = peewee.CharField(null=True)
    name = peewee.CharField()
    values = JSONField(default=list)
    count = peewee.IntegerField(default=0)
    # Running summary of the values, kept by each append, so the comparison table can sort
    # and show "min/max/mean/last" in SQL without reading the chunks (migration 0003).
    value_min = peewee.DoubleField(null=True)
    value_max = peewee.DoubleField(null=True)
    value_sum = peewee.DoubleField(null=True)
    value_last = peewee.DoubleField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = METRIC_INDEXES


class Deployment(BaseModel):
    environment = peewee.ForeignKeyField(Environment, on_delete="CASCADE")
    name = peewee.CharField()
    pipeline = peewee.ForeignKeyField(Pipeline, on_delete="RESTRICT")
    execution_rule = peewee.CharField()  # endpoint | periodic
    mode = peewee.CharField(default="elastic")  # elastic | low_latency
    description = peewee.TextField(null=True)
    endpoint_url_path = peewee.CharField(null=True)
    endpoint_token = peewee.TextField(null=True)  # sealed (crypto.py)
    schedule = peewee.CharField(null=True)
    inputs_mapping = JSONField(default=list)
    outputs_mapping = JSONField(default=list)
    enable_parallel_executions = peewee.BooleanField(default=False)
    use_cache = peewee.BooleanField(default=True)  # False: its runs take no cached result
    max_parallel_executions_per_pod = peewee.IntegerField(default=6)
    replicas = peewee.IntegerField(default=1)
    ram_request = peewee.CharField(null=True)
    gpu_request = peewee.IntegerField(null=True)
    is_enabled = peewee.BooleanField(default=True)
    status = peewee.CharField(default="creation_pending")
    status_detail = peewee.TextField(null=True)
    # Bumped by update_deployment: a resident runner of an older generation is replaced.
    generation = peewee.IntegerField(default=1)
    runner_token_hash = peewee.CharField(null=True, index=True)
    # The token itself, sealed (crypto.py): every API process and every restart hands the
    # same one to the runners, so replicas agree and pods are not rolled for nothing.
    runner_token_sealed = peewee.TextField(null=True)
    last_tick_at = peewee.DateTimeField(null=True)
    created_by = peewee.CharField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_by = peewee.CharField(null=True)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("environment", "name"), True),
            (("environment", "endpoint_url_path"), True),
        )


class DeploymentLog(BaseModel):
    deployment = peewee.ForeignKeyField(Deployment, on_delete="CASCADE")
    timestamp = peewee.DateTimeField(index=True)
    stream = peewee.CharField(default="stdout")
    pod_id = peewee.CharField(null=True)
    message = peewee.TextField()


class ScheduleTick(BaseModel):
    """One row per fired cron tick: the unique index makes a tick fire exactly once, even
    with several API processes or a restart in the middle."""

    deployment = peewee.ForeignKeyField(Deployment, on_delete="CASCADE")
    fire_time = peewee.DateTimeField()
    execution_id = peewee.CharField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("deployment", "fire_time"), True),)


class ListMetricChunk(BaseModel):
    """The values one recording call appended to a list metric (in id order). Appending
    adds a row instead of rewriting the list; `ListMetric.values` stays empty."""

    list_metric = peewee.ForeignKeyField(ListMetric, on_delete="CASCADE", index=True)
    values = JSONField(default=list)


class ResourceSample(BaseModel):
    """One reading of one worker's resources (monitoring/ samples, domain/resources reads).
    Ticks are aligned to the sampling period so workers' readings line up for the
    cumulated series. Network figures are bytes moved during the period."""

    timestamp_ms = peewee.BigIntegerField(index=True)
    worker = peewee.CharField()
    cpu_percent = peewee.DoubleField()
    cpu_count = peewee.IntegerField(default=1)
    ram_used = peewee.BigIntegerField()
    ram_total = peewee.BigIntegerField()
    disk_used = peewee.BigIntegerField()
    disk_total = peewee.BigIntegerField()
    net_in_bytes = peewee.BigIntegerField(default=0)
    net_out_bytes = peewee.BigIntegerField(default=0)
    gpu_percent = peewee.DoubleField(null=True)
    vram_used = peewee.BigIntegerField(null=True)
    vram_total = peewee.BigIntegerField(null=True)

    class Meta:
        indexes = ((("worker", "timestamp_ms"), True),)


class Membership(BaseModel):
    """A user's role in a project (domain/access.py holds what each role may do)."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE")
    role = peewee.CharField()  # viewer | editor | admin
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("project", "user"), True),)


class LoginFailure(BaseModel):
    """A failed login (domain/auth.LoginThrottle), once under its account and once under
    its client address: in the store, so every API process and restart sees them."""

    key = peewee.CharField()  # "account:<email>" | "address:<ip>"
    at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("key", "at"), False),)


class RowCount(BaseModel):
    """How many rows of a counted table (`kind`: metric, listmetric, execution) an
    environment holds per pipeline, deployment ('' for none) and `name` (the metric name;
    an execution's status); kept by triggers in the same transaction as the rows' writes.
    Its table is made by store/counts.py (a WITHOUT ROWID table on SQLite: one B-tree to
    write per counted write), not by create_tables."""

    environment = peewee.ForeignKeyField(Environment, on_delete="CASCADE", index=False)
    kind = peewee.CharField()
    pipeline_name = peewee.CharField()
    deployment_name = peewee.CharField()
    name = peewee.CharField()
    count = peewee.BigIntegerField(default=0)

    class Meta:
        primary_key = peewee.CompositeKey("environment", "kind", "pipeline_name",
                                          "deployment_name", "name")


class SortKey(BaseModel):
    """One sortable value of one execution (`key`: m:NAME or
    lm:NAME:AGGREGATION kept by triggers, in:NAME or out:NAME by the sort indexer); its
    table is made by store/sortkeys.py."""

    execution_id = peewee.CharField()
    key = peewee.CharField()
    environment_id = peewee.IntegerField()
    value = peewee.BareField()  # SQLite: the JSON value as SQL; PostgreSQL: jsonb
    created_at = peewee.DateTimeField(null=True)  # the execution's, for ties
    # The execution's (input/output keys are written by the sort indexer once it ended,
    # so their status is final): a filtered sort reads the key's rows alone. A metric
    # key has pipeline and deployment (migration 0021), and its status once the indexer
    # passed the ended execution (0023; null before: it is written while the execution
    # runs). Null on keys written before migrations 0017 (input/output), 0021 and 0023
    # (metric) until SortFill's / MetricSortFill's / MetricStatusFill's pass reaches them.
    # No deployment is '', not null.
    pipeline_name = peewee.CharField(null=True)
    deployment_name = peewee.CharField(null=True)
    status = peewee.CharField(null=True)

    class Meta:
        primary_key = peewee.CompositeKey("execution_id", "key")


class SortMark(BaseModel):
    """How far the sort indexer (store/sortindex.py) has walked an environment's
    executions, in (created_at, execution_id) order: each one up to here is indexed, or
    waits in SortPending because it had not ended."""

    environment_id = peewee.IntegerField(primary_key=True)
    created_at = peewee.DateTimeField()
    execution_id = peewee.CharField()


class SortFill(BaseModel):
    """An environment whose input/output sort keys written before migration 0017 lack
    their execution's pipeline, deployment and status: the sort indexer fills those of the
    executions up to (`until_created_at`, `until_execution_id`), oldest first, past
    (`created_at`, `execution_id`) so far, and removes the row when done. While it is
    there, a filtered sort checks each key's execution instead."""

    environment_id = peewee.IntegerField(primary_key=True)
    created_at = peewee.DateTimeField(null=True)
    execution_id = peewee.CharField(null=True)
    until_created_at = peewee.DateTimeField()
    until_execution_id = peewee.CharField()


class MetricSortFill(SortFill):
    """The same for the metric and list-metric keys written before migration 0021 (their
    pipeline and deployment; a metric key has no status), up to the environment's newest
    execution then."""


class MetricStatusFill(SortFill):
    """The same for the status of the metric and list-metric keys of the ended executions
    the indexer passed before migration 0023 (it stamps those it passes since), up to the
    environment's mark then."""


class SortPending(BaseModel):
    """An execution the sort indexer passed before it ended: indexed once it has."""

    execution_id = peewee.CharField(primary_key=True)
    environment_id = peewee.IntegerField(index=True)


# Models added by later features go above this line and into ALL_MODELS.
ALL_MODELS = [
    SchemaVersion,
    User,
    Project,
    Environment,
    EnvironmentVariable,
    Step,
    BuildLog,
    Pipeline,
    Execution,
    ExecutionLog,
    Metric,
    ListMetric,
    Deployment,
    DeploymentLog,
    ScheduleTick,
    ListMetricChunk,
    ResourceSample,
    PipelineStep,
    StepExecution,
    Membership,
    LoginFailure,
    StepCache,
    SortMark,
    SortPending,
    SortFill,
    MetricSortFill,
    MetricStatusFill,
]
