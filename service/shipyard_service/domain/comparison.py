"""The execution comparison's store queries: one page of executions with filters and the
sort applied in SQL (any column: metadata, an input or output value, a metric, a list
metric's aggregate, resource usage), the true total, and which columns hold something for
the current filter. Works on SQLite and PostgreSQL; no Flask here."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce

import peewee
from peewee import SQL, NodeList, fn

from ..errors import BadRequest
from ..store import counts
from ..store.db import database
from ..store.models import Environment, Execution, ListMetric, Metric, SortKey
from .lifecycle import ExecutionStatus
from .metrics import AGGREGATIONS

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
METADATA = ("pipeline_name", "deployment_name", "status", "created_at", "duration_s")
RESOURCES = ("cpu_time_s", "peak_rss_mb")


@dataclass(frozen=True)
class Filters:
    pipeline: str | None = None
    deployment: str | None = None
    status: str | None = None
    text: str | None = None  # part of the execution id


def _sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


def _conditions(filters: Filters):
    """The filters on Execution's columns (beside the environment), or None."""
    terms = []
    if filters.pipeline:
        terms.append(Execution.pipeline_name == filters.pipeline)
    if filters.deployment:
        terms.append(Execution.deployment_name == filters.deployment)
    if filters.status:
        terms.append(Execution.status == filters.status)
    if filters.text and filters.text.strip():
        terms.append(Execution.execution_id.contains(filters.text.strip()))
    return reduce(operator.and_, terms) if terms else None


def filtered(environment: Environment, filters: Filters) -> peewee.ModelSelect:
    query = Execution.select().where(Execution.environment == environment)
    narrowing = _conditions(filters)
    return query if narrowing is None else query.where(narrowing)


def _io_value(field: peewee.Field, kind: str, name: str):
    """The value of one input (or output) inside the execution's JSON list of items."""
    if _sqlite():
        return NodeList([
            SQL("(SELECT json_extract(j.value, '$.value') FROM json_each("), field,
            SQL(f") AS j WHERE json_extract(j.value, '$.pipeline_{kind}_name') = ?)", [name]),
        ], glue="")
    # PostgreSQL: the column is JSON text; jsonb values order numbers as numbers.
    return NodeList([
        SQL("(SELECT j -> 'value' FROM jsonb_array_elements(CAST("), field,
        SQL(f" AS jsonb)) AS j WHERE j ->> 'pipeline_{kind}_name' = %s)", [name]),
    ], glue="")


def _duration():
    if _sqlite():
        return (fn.julianday(Execution.end_date) - fn.julianday(Execution.start_date)) * 86400
    return NodeList([SQL("EXTRACT(EPOCH FROM ("), Execution.end_date, SQL("-"),
                     Execution.start_date, SQL("))")], glue="")


def sort_expression(key: str):
    """The SQL expression a metadata, resource, input or output column sorts by (read per
    row: the JSON of every filtered execution for an input); BadRequest for a key that is
    none of these nor a stored sort key (`_sort_key`)."""
    group, _, name = key.partition(":")
    if group == "meta" and name in METADATA:
        return _duration() if name == "duration_s" else getattr(Execution, name)
    if group == "res" and name in RESOURCES:
        return Execution.cpu_time_s if name == "cpu_time_s" else Execution.peak_rss_bytes
    if group in ("in", "out") and name:
        return _io_value(Execution.inputs if group == "in" else Execution.outputs,
                         "input" if group == "in" else "output", name)
    raise BadRequest(f"Cannot sort by {key!r}", {"field": "sort"})


def _sort_key(key: str, aggregation: str) -> str | None:
    """The store's sort key (store/sortkeys.py) of a metric or list-metric column; None
    for the other columns."""
    group, _, name = key.partition(":")
    if group == "m" and name:
        return key
    if group == "lm" and name:
        return f"lm:{name}:{aggregation if aggregation in AGGREGATIONS else 'last'}"
    return None


def _keyed_ids(environment: Environment, filters: Filters, key: str, descending: bool,
               offset: int, limit: int) -> list[str]:
    """A page of the filtered executions sorted by a stored key: those holding a value in
    the key's index order (ties newest first), then those without one, newest first. The
    index scan stops at the page; the filters are checked on each execution it meets."""
    keyed = SortKey.select(SortKey.execution_id).where(
        (SortKey.environment_id == environment.id) & (SortKey.key == key))
    narrowing = _conditions(filters)
    if narrowing is not None:
        # A correlated test, not a join: a join lets the planner start from the executions
        # (a scan of a million rows, then a sort) instead of the key's index.
        keyed = keyed.where(fn.EXISTS(Execution.select(SQL("1")).where(
            (Execution.execution_id == SortKey.execution_id) & narrowing)))
    ids = [i for (i,) in keyed.order_by(
        SortKey.value.desc() if descending else SortKey.value.asc(),
        SortKey.created_at.desc(), SortKey.execution_id.desc())
        .limit(limit).offset(offset).tuples()]
    if len(ids) == limit:
        return ids
    # Past the keyed executions: how many there are, then the rest from their first.
    holding = offset + len(ids) if ids else keyed.count()
    without = filtered(environment, filters).where(~fn.EXISTS(
        SortKey.select(SQL("1")).where((SortKey.execution_id == Execution.execution_id)
                                       & (SortKey.key == key))))
    return ids + [i for (i,) in without.select(Execution.execution_id)
                  .order_by(Execution.created_at.desc(), Execution.execution_id.desc())
                  .limit(limit - len(ids)).offset(max(0, offset - holding)).tuples()]


def page_of(environment: Environment, filters: Filters, sort: str | None, descending: bool,
            page: int, per_page: int, aggregation: str = "last") -> tuple[int, list[Execution]]:
    """(total matching the filters, the executions of this page). Empty values sort last
    either way; ties newest first."""
    if page < 1 or per_page not in PAGE_SIZES:
        raise BadRequest(f"'page' starts at 1 and 'per_page' is one of {list(PAGE_SIZES)}",
                         {"page": page, "per_page": per_page})
    query = filtered(environment, filters)
    total = _total(environment, filters, query)
    key = _sort_key(sort, aggregation) if sort else None
    order = []
    if key is None and sort and sort != "meta:created_at":
        expression = sort_expression(sort)
        order += [NodeList([expression, SQL("IS NULL")]),
                  NodeList([expression, SQL("DESC" if descending else "ASC")])]
        order += [Execution.created_at.desc(), Execution.execution_id.desc()]
    elif sort == "meta:created_at" and not descending:
        order += [Execution.created_at.asc(), Execution.execution_id.asc()]
    else:
        order += [Execution.created_at.desc(), Execution.execution_id.desc()]
    # Never more than the total holds: a scan for a rare status (Running, say) stops at
    # its last match instead of reading the rest of a million rows.
    limit = min(per_page, total - (page - 1) * per_page)
    if limit <= 0:
        return total, []
    if key is not None:
        return total, by_ids(_keyed_ids(environment, filters, key, descending,
                                        (page - 1) * per_page, limit))
    # Sort and cut on the ids alone, then read the page's whole rows: the sorter never
    # carries the rows' JSON (100,000 rows of inputs would be ~100 MB to sort).
    ids = [i for (i,) in query.select(Execution.execution_id).order_by(*order)
           .limit(limit).offset((page - 1) * per_page).tuples()]
    return total, by_ids(ids)


def _counted(filters: Filters) -> dict[str, str | None]:
    """The filters as the store's execution counters key them (status under `name`)."""
    return {"pipeline_name": filters.pipeline, "deployment_name": filters.deployment,
            "name": filters.status}


def _total(environment: Environment, filters: Filters, query: peewee.ModelSelect) -> int:
    """From the store's counters (a few rows, not a count of a million), but a search in
    the execution ids, which no counter keeps."""
    if (filters.text or "").strip():
        return query.count()
    return counts.total("execution", environment.id, _counted(filters))


def by_ids(ids: list[str]) -> list[Execution]:
    """The executions of these ids, in this order."""
    found = {e.execution_id: e for e in Execution.select().where(Execution.execution_id.in_(ids))}
    return [found[i] for i in ids if i in found]


def available_columns(environment: Environment, filters: Filters) -> dict[str, list[str]]:
    """Column names that hold something for the filter: inputs/outputs of the pipelines
    present (read from each one's newest execution), metric and list-metric names recorded
    under the filter's pipeline or deployment, resource usage if those newest executions
    have it. The store's counters name what is present, so no listing of millions is read;
    a status or id search narrows the pipelines, not the metric names."""
    present = counts.breakdown("execution", environment.id, _counted(filters), "pipeline_name")
    inputs: set[str] = set()
    outputs: set[str] = set()
    measured = False
    scope = Filters(pipeline=filters.pipeline, deployment=filters.deployment)
    for pipeline_name in present:
        sample = (filtered(environment, scope).where(Execution.pipeline_name == pipeline_name)
                  .select(Execution.inputs, Execution.outputs, Execution.cpu_time_s)
                  .order_by(Execution.created_at.desc()).first())
        if sample is not None:
            measured = measured or sample.cpu_time_s is not None
            inputs.update(i.get("pipeline_input_name") for i in sample.inputs or [])
            outputs.update(o.get("pipeline_output_name") for o in sample.outputs or [])
    names = {}
    for group, kind in (("metrics", "metric"), ("list_metrics", "listmetric")):
        names[group] = sorted(counts.breakdown(kind, environment.id, {
            "pipeline_name": filters.pipeline, "deployment_name": filters.deployment}, "name"))
    return {"metadata": list(METADATA), "inputs": sorted(n for n in inputs if n),
            "outputs": sorted(n for n in outputs if n), "metrics": names["metrics"],
            "list_metrics": names["list_metrics"],
            "resources": list(RESOURCES) if measured else []}


def page_values(environment: Environment, execution_ids: list[str]) -> dict[str, dict]:
    """{execution_id: {"metrics": {name: value}, "lists": {name: {min, max, mean, last,
    count}}}} for one page, the lists from their running summary (no chunk read)."""
    result = {e: {"metrics": {}, "lists": {}} for e in execution_ids}
    if not execution_ids:
        return result
    for execution_id, name, value in (Metric.select(Metric.execution_id, Metric.name, Metric.value)
                                      .where((Metric.environment == environment)
                                             & Metric.execution_id.in_(execution_ids)).tuples()):
        result[execution_id]["metrics"][name] = value
    for row in (ListMetric.select(ListMetric.execution_id, ListMetric.name, ListMetric.count,
                                  ListMetric.value_min, ListMetric.value_max,
                                  ListMetric.value_sum, ListMetric.value_last)
                .where((ListMetric.environment == environment)
                       & ListMetric.execution_id.in_(execution_ids))):
        mean = row.value_sum / row.count if row.count and row.value_sum is not None else None
        result[row.execution_id]["lists"][row.name] = {
            "min": row.value_min, "max": row.value_max, "mean": mean,
            "last": row.value_last, "count": row.count}
    return result


def statuses() -> list[str]:
    """Every status of the execution lifecycle, whatever the filter (none ever vanishes
    from the status filter)."""
    return [status.value for status in ExecutionStatus]
