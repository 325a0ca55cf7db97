"""Sort keys of executions' input and output values (`in:NAME`, `out:NAME` rows of the
`sortkey` table, beside the metric keys of store/sortkeys.py), written by a background
indexer (sortindexer.py) for executions that ended. Not by triggers: extracting them on
every execution write doubled the endpoint path's store time (+90 us on SQLite).

The indexer walks each environment's executions in (created_at, execution_id) order and
keeps its place in `SortMark`; an execution it passes before it ended waits in
`SortPending`. It never passes executions younger than `LAG`: a transaction may still be
committing one created a moment before a newer one that is visible. What it has not
indexed (newer than the mark, or pending) is the "tail" the comparison view reads from the
executions' JSON itself (`unindexed`, `scan_value`) and merges with the index.

A value sorts as SQLite's json_extract gives it (numbers, then text) or as PostgreSQL's
jsonb orders it; text, objects and arrays by their first `TEXT_PREFIX` characters (a
PostgreSQL index entry must stay small); a JSON null is no value (sorted last).

Each key carries its execution's pipeline, deployment ('' for none) and status (`FILTERS`,
migration 0017; the status is final: only ended executions are keyed, and an ended one
never moves again), each with a partial index (environment, key, column, value, created_at,
execution_id): a sort filtered by any of them reads one range of one index, and its page N
is an OFFSET in it. Keys written before 0017 get theirs from `fill_batch`; until an
environment's are all filled (`filled`), its filtered sorts check each key's execution.
Metric keys (store/sortkeys.py) carry pipeline and deployment since migration 0021
(`METRIC_FILTERS`), in the same indexes; those written before it are filled the same way
(MetricSortFill). A metric is written while its execution runs, so its key gets the
execution's status from the indexer when it passes the ended execution (migration 0023;
those passed before it, from MetricStatusFill; one written after the end, from its
trigger): a metric key's status is final or null, null only on keys of executions the
indexer has not passed, which a status-filtered metric sort merges in as its tail."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from functools import reduce

import peewee
from peewee import SQL, NodeList, Tuple, fn

from .db import database
from .models import (
    Environment,
    Execution,
    MetricSortFill,
    MetricStatusFill,
    SortFill,
    SortKey,
    SortMark,
    SortPending,
)

LAG = dt.timedelta(seconds=5)
BATCH = 1000
TEXT_PREFIX = 40
KEY_LENGTH = 255  # sortkey.key is VARCHAR(255) on PostgreSQL
_IN_LIST = 500  # ids per INSERT ... SELECT

KINDS = {"in": ("inputs", "input"), "out": ("outputs", "output")}
FILTERS = ("pipeline_name", "deployment_name", "status")
METRIC_FILTERS = FILTERS[:2]  # written with the key; the status when the indexer passes
METRIC_PREFIXES = ("m:", "lm:")
# Each fill: the keys it gives their execution's columns, and which columns (the first
# is null on each key it has not reached).
_FILLS = {SortFill: (("in:", "out:"), FILTERS), MetricSortFill: (METRIC_PREFIXES, METRIC_FILTERS),
          MetricStatusFill: (METRIC_PREFIXES, ("status",))}

# The sort value of one item `j` (a row of json_each / jsonb_array_elements).
_SQLITE_VALUE = (f"CASE WHEN json_type(j.value, '$.value') IN ('text', 'object', 'array') "
                 f"THEN substr(json_extract(j.value, '$.value'), 1, {TEXT_PREFIX}) "
                 "ELSE json_extract(j.value, '$.value') END")
_PG_VALUE = ("CASE WHEN jsonb_typeof(j -> 'value') IN ('string', 'object', 'array') "
             f"THEN to_jsonb(left(j ->> 'value', {TEXT_PREFIX})) "
             "WHEN jsonb_typeof(j -> 'value') = 'null' THEN NULL ELSE j -> 'value' END")


# The execution's filter columns, as a key carries them (FILTERS' order).
_EXECUTION_FILTERS = "x.pipeline_name, COALESCE(x.deployment_name, ''), x.status"


def _sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


def scan_value(group: str, name: str):
    """The sort value of input (group `in`) or output (`out`) `name`, read from each
    execution's JSON: the same value the indexer stores."""
    column, kind = KINDS[group]
    field = getattr(Execution, column)
    if _sqlite():
        return NodeList([
            SQL(f"(SELECT {_SQLITE_VALUE} FROM json_each("), field,
            SQL(f") AS j WHERE j.type = 'object' "
                f"AND json_extract(j.value, '$.pipeline_{kind}_name') = ?)", [name]),
        ], glue="")
    return NodeList([
        SQL(f"(SELECT {_PG_VALUE} FROM jsonb_array_elements(CAST("), field,
        SQL(f" AS jsonb)) AS j WHERE j ->> 'pipeline_{kind}_name' = %s)", [name]),
    ], glue="")


def _insert_sql(count: int) -> str:
    """INSERT ... SELECT of the keys of `count` executions (their ids as parameters)."""
    sqlite = _sqlite()
    marks = ", ".join([database.obj.param] * count)
    parts = []
    for group, (column, kind) in KINDS.items():
        if sqlite:
            parts.append(
                f"SELECT x.execution_id AS e, "
                f"'{group}:' || json_extract(j.value, '$.pipeline_{kind}_name') AS k, "
                f"x.environment_id AS env, {_SQLITE_VALUE} AS v, x.created_at AS c, "
                f"{_EXECUTION_FILTERS} "
                f'FROM "execution" AS x, json_each(CASE WHEN json_valid(x.{column}) '
                f"THEN x.{column} ELSE '[]' END) AS j "
                f"WHERE x.execution_id IN ({marks}) AND j.type = 'object'")
        else:
            items = f"CAST(x.{column} AS jsonb)"
            parts.append(
                f"SELECT x.execution_id AS e, '{group}:' || (j ->> 'pipeline_{kind}_name') AS k, "
                f"x.environment_id AS env, {_PG_VALUE} AS v, x.created_at AS c, "
                f"{_EXECUTION_FILTERS} "
                f'FROM "execution" AS x, jsonb_array_elements(CASE WHEN jsonb_typeof({items}) '
                f"= 'array' THEN {items} ELSE '[]'::jsonb END) AS j "
                f"WHERE x.execution_id IN ({marks})")
    union = " UNION ALL ".join(parts)
    kept = f"WHERE q.v IS NOT NULL AND q.k IS NOT NULL AND length(q.k) <= {KEY_LENGTH}"
    columns = ('"sortkey" (execution_id, key, environment_id, value, created_at, '
               f'{", ".join(FILTERS)})')
    updated = ", ".join(f"{c} = excluded.{c}" for c in ("value", *FILTERS))
    if sqlite:
        return (f"INSERT INTO {columns} SELECT * FROM ({union}) AS q {kept} "
                f"ON CONFLICT (execution_id, key) DO UPDATE SET {updated}")
    # DISTINCT ON: ON CONFLICT may not touch a row twice (an item listed twice).
    return (f"INSERT INTO {columns} SELECT DISTINCT ON (1, 2) * FROM ({union}) AS q {kept} "
            f"ON CONFLICT (execution_id, key) DO UPDATE SET {updated}")


def filter_indexes() -> list[str]:
    """One partial index per filter column: its rows are the input/output keys (a metric
    key's columns are null), in the key's sort order under each value of the column."""
    return [f'CREATE INDEX IF NOT EXISTS "sortkey_environment_id_key_{c}_value" ON "sortkey" '
            f'("environment_id", "key", "{c}", "value", "created_at", "execution_id") '
            f'WHERE "{c}" IS NOT NULL' for c in FILTERS]


def start_fill(model: type[SortFill] = SortFill) -> None:
    """Every environment the indexer has walked gets its keys' filter columns (`model`'s)
    filled up to its mark (migrations 0017, 0023): the indexer gives them to those it
    passes from now on."""
    rows = [{"environment_id": m.environment_id, "until_created_at": m.created_at,
             "until_execution_id": m.execution_id} for m in SortMark.select()]
    for start in range(0, len(rows), _IN_LIST):
        model.insert_many(rows[start:start + _IN_LIST]).on_conflict_ignore().execute()


def start_metric_fill() -> None:
    """Every environment's metric keys get their pipeline and deployment up to its newest
    execution (migration 0021): those written from now on carry them already."""
    for (environment_id,) in Environment.select(Environment.id).tuples():
        newest = (Execution.select(Execution.created_at, Execution.execution_id)
                  .where(Execution.environment == environment_id)
                  .order_by(Execution.created_at.desc(), Execution.execution_id.desc())
                  .first())
        if newest is None:
            continue
        # From the first execution again if a fill was under way (the migration re-run).
        (MetricSortFill.insert(environment_id=environment_id, created_at=None,
                               execution_id=None, until_created_at=newest.created_at,
                               until_execution_id=newest.execution_id)
         .on_conflict(conflict_target=[MetricSortFill.environment_id],
                      preserve=[MetricSortFill.created_at, MetricSortFill.execution_id,
                                MetricSortFill.until_created_at,
                                MetricSortFill.until_execution_id]).execute())


def filled(environment_id: int, fill: type[SortFill] = SortFill) -> bool:
    """Whether every input/output key (metric key, with MetricSortFill) of the
    environment carries its filter columns."""
    return not fill.select().where(fill.environment_id == environment_id).exists()


def carried(environment_id: int, key: str) -> tuple[str, ...]:
    """The filter columns every row of sort key `key` carries in the environment: none
    while its kind of keys is being filled. A metric key's status only on the keys of
    executions the indexer has passed (`unindexed` names the others)."""
    if key.partition(":")[0] in KINDS:
        return FILTERS if filled(environment_id) else ()
    if not filled(environment_id, MetricSortFill):
        return ()
    return FILTERS if filled(environment_id, MetricStatusFill) else METRIC_FILTERS


def fill_batch(environment_id: int, batch: int = BATCH,
               model: type[SortFill] = SortFill, ended: Sequence[str] = ()) -> int:
    """Fill the filter columns of the keys of the next `batch` executions the fill
    (`model`: SortFill, MetricSortFill or MetricStatusFill) has left for the environment,
    and move it past them (remove it past its last) in the same transaction; returns how
    many executions were passed. MetricStatusFill stamps the executions whose status is in
    `ended` (the others are pending: the indexer stamps them when they end)."""
    if model is MetricStatusFill and not ended:
        raise ValueError("MetricStatusFill stamps the statuses in `ended`: none given")
    prefixes, columns = _FILLS[model]
    fill = model.get_or_none(model.environment_id == environment_id)
    if fill is None:
        return 0
    query = Execution.select(Execution.execution_id, Execution.created_at,
                             Execution.status).where(
        (Execution.environment == environment_id)
        & (Tuple(Execution.created_at, Execution.execution_id)
           <= Tuple(fill.until_created_at, fill.until_execution_id)))
    if fill.execution_id is not None:
        query = query.where(Tuple(Execution.created_at, Execution.execution_id)
                            > Tuple(fill.created_at, fill.execution_id))
    rows = list(query.order_by(Execution.created_at, Execution.execution_id)
                .limit(batch).tuples())
    execution = Execution.alias("x")

    def of_execution(column):
        return execution.select(column).where(execution.execution_id == SortKey.execution_id)

    values = {SortKey.pipeline_name: of_execution(execution.pipeline_name),
              SortKey.deployment_name: of_execution(fn.COALESCE(execution.deployment_name, "")),
              SortKey.status: of_execution(execution.status)}
    values = {field: value for field, value in values.items() if field.name in columns}
    keys = reduce(operator.or_, [SortKey.key.startswith(p) for p in prefixes])
    unfilled = getattr(SortKey, columns[0]).is_null()
    chosen = [i for i, *_ in rows]
    if model is MetricStatusFill:
        # A metric key's status is final, and only on the keys of the executions the
        # indexer passed: a pending one's wait for it (the comparison reads them as the tail).
        waiting = {i for (i,) in SortPending.select(SortPending.execution_id).where(
            SortPending.execution_id.in_(chosen)).tuples()} if chosen else set()
        chosen = [i for i, _, status in rows if status in ended and i not in waiting]
    with database.atomic():
        for start in range(0, len(chosen), _IN_LIST):
            ids = chosen[start:start + _IN_LIST]
            SortKey.update(values).where(SortKey.execution_id.in_(ids) & unfilled & keys).execute()
        if len(rows) < batch:
            model.delete().where(model.environment_id == environment_id).execute()
        else:
            model.update(created_at=rows[-1][1], execution_id=rows[-1][0]).where(
                model.environment_id == environment_id).execute()
    return len(rows)


def _write_keys(execution_ids: list[str]) -> None:
    """The input/output keys of these ended executions, and their status on their metric
    keys."""
    execution = Execution.alias("x")
    status = execution.select(execution.status).where(
        execution.execution_id == SortKey.execution_id)
    metric_keys = reduce(operator.or_, [SortKey.key.startswith(p) for p in METRIC_PREFIXES])
    for start in range(0, len(execution_ids), _IN_LIST):
        chunk = execution_ids[start:start + _IN_LIST]
        # Twice the ids: once per union part (inputs, outputs).
        database.execute_sql(_insert_sql(len(chunk)), chunk + chunk)
        SortKey.update(status=status).where(SortKey.execution_id.in_(chunk)
                                            & SortKey.status.is_null() & metric_keys).execute()


def _done(status: str, end_date: dt.datetime | None, ended: Sequence[str],
          horizon: dt.datetime) -> bool:
    """Whether an execution is ended long enough to be keyed: a metric recorded in a
    transaction still committing when it ended gets its status too (a key committed after
    the stamp would stay without one, out of every status filter)."""
    return status in ended and (end_date is None or end_date <= horizon)


def _after(mark: SortMark | None):
    if mark is None:
        return None
    return (Tuple(Execution.created_at, Execution.execution_id)
            > Tuple(mark.created_at, mark.execution_id))


def index_batch(environment_id: int, ended: Sequence[str], horizon: dt.datetime,
                batch: int = BATCH) -> int:
    """Index the next `batch` executions past the environment's mark created before
    `horizon`: keys for those whose status is in `ended`, the others to SortPending; the
    mark moves past them in the same transaction. Returns how many were passed."""
    mark = SortMark.get_or_none(SortMark.environment_id == environment_id)
    query = Execution.select(Execution.execution_id, Execution.created_at, Execution.status,
                             Execution.end_date
                             ).where((Execution.environment == environment_id)
                                     & (Execution.created_at <= horizon))
    after = _after(mark)
    if after is not None:
        query = query.where(after)
    rows = list(query.order_by(Execution.created_at, Execution.execution_id)
                .limit(batch).tuples())
    if not rows:
        return 0
    done = {i for i, _, status, end in rows if _done(status, end, ended, horizon)}
    waiting = [{"execution_id": i, "environment_id": environment_id}
               for i, *_ in rows if i not in done]
    last_id, last_created, *_ = rows[-1]
    with database.atomic():
        _write_keys([i for i, *_ in rows if i in done])
        for start in range(0, len(waiting), _IN_LIST):
            SortPending.insert_many(waiting[start:start + _IN_LIST]).on_conflict_ignore().execute()
        (SortMark.insert(environment_id=environment_id, created_at=last_created,
                         execution_id=last_id)
         .on_conflict(conflict_target=[SortMark.environment_id],
                      update={SortMark.created_at: last_created,
                              SortMark.execution_id: last_id}).execute())
    return len(rows)


def index_pending(environment_id: int, ended: Sequence[str], horizon: dt.datetime) -> int:
    """Index the environment's pending executions that ended before `horizon`, and forget
    those deleted; returns how many left the pending list."""
    pending = [i for (i,) in SortPending.select(SortPending.execution_id)
               .where(SortPending.environment_id == environment_id).tuples()]
    if not pending:
        return 0
    statuses = {}
    for start in range(0, len(pending), _IN_LIST):
        statuses.update((i, (status, end)) for i, status, end in Execution.select(
            Execution.execution_id, Execution.status, Execution.end_date)
            .where(Execution.execution_id.in_(pending[start:start + _IN_LIST])).tuples())
    done = [i for i in pending if i in statuses and _done(*statuses[i], ended, horizon)]
    leaving = done + [i for i in pending if i not in statuses]
    if leaving:
        with database.atomic():
            _write_keys(done)
            for start in range(0, len(leaving), _IN_LIST):
                SortPending.delete().where(
                    SortPending.execution_id.in_(leaving[start:start + _IN_LIST])).execute()
    return len(leaving)


def unindexed(query: peewee.ModelSelect, environment_id: int, limit: int) -> list[str] | None:
    """Ids of the executions of `query` (an environment's, filtered) the index does not
    hold yet: newer than the mark, or pending; None if more than `limit`."""
    after = _after(SortMark.get_or_none(SortMark.environment_id == environment_id))
    newer = query.select(Execution.execution_id)
    if after is not None:
        newer = newer.where(after)
    ids = [i for (i,) in newer.limit(limit + 1).tuples()]
    if len(ids) > limit:
        return None
    waiting = SortPending.select(SortPending.execution_id).where(
        SortPending.environment_id == environment_id)
    ids += [i for (i,) in query.select(Execution.execution_id)
            .where(Execution.execution_id.in_(waiting)).limit(limit + 1 - len(ids)).tuples()]
    return None if len(ids) > limit else ids


def forget(environment_ids: set[int]) -> None:
    """Drop the marks, pending rows and fills of environments that are gone (read first:
    an idle pass writes nothing)."""
    held = {e for (e,) in SortMark.select(SortMark.environment_id).tuples()}
    held |= {e for (e,) in SortPending.select(SortPending.environment_id).distinct().tuples()}
    for fill in _FILLS:
        held |= {e for (e,) in fill.select(fill.environment_id).tuples()}
    gone = list(held - environment_ids)
    if gone:
        with database.atomic():
            for model in (SortMark, SortPending, *_FILLS):
                model.delete().where(model.environment_id.in_(gone)).execute()
