"""The execution comparison's store queries: one page of executions with filters and the
sort applied in SQL (any column: metadata, an input or output value, a metric, a list
metric's aggregate, resource usage), the true total, and which columns hold something for
the current filter. Works on SQLite and PostgreSQL; no Flask here."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

import peewee
from peewee import SQL, NodeList, fn

from ..errors import BadRequest
from ..store import counts, sortindex
from ..store.db import database
from ..store.models import Environment, Execution, ListMetric, Metric, SortKey
from .cursors import Cursor
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
    if group in sortindex.KINDS and name:
        return sortindex.scan_value(group, name)
    raise BadRequest(f"Cannot sort by {key!r}", {"field": "sort"})


def _sort_key(key: str, aggregation: str) -> str | None:
    """The store's sort key of a metric or list-metric column (store/sortkeys.py) or of
    an input or output (store/sortindex.py); None for the other columns."""
    group, _, name = key.partition(":")
    if group in ("m", *sortindex.KINDS) and name:
        return key
    if group == "lm" and name:
        return f"lm:{name}:{aggregation if aggregation in AGGREGATIONS else 'last'}"
    return None


# Most executions an input/output sort reads from their JSON (those the indexer has not
# reached) beside the index; past it, the whole sort reads them (the indexer catching up).
TAIL_LIMIT = 5_000


@dataclass(frozen=True)
class Page:
    total: int
    executions: list[Execution]
    # Executions the input/output sort index has not reached yet (more than TAIL_LIMIT):
    # this page was sorted by reading every execution's JSON.
    catching_up: bool = False
    # Where the next page starts (a keyset cursor) for the orders that have one.
    next_after: Cursor | None = None


def _on_key(filters: Filters) -> dict[str, str]:
    """The filters a sort key's own columns may carry, by column."""
    on_key = {"pipeline_name": filters.pipeline, "deployment_name": filters.deployment,
              "status": filters.status}
    return {column: value for column, value in on_key.items() if value}


def _keyed(environment: Environment, filters: Filters, key: str,
           carried: tuple[str, ...]) -> peewee.ModelSelect:
    """The key's rows under the filters: those the rows carry (`carried`,
    sortindex.carried) read from their own columns, the others checked on each row's
    execution."""
    keyed = SortKey.select(SortKey.execution_id).where(
        (SortKey.environment_id == environment.id) & (SortKey.key == key))
    if filters.text and filters.text.strip():
        keyed = keyed.where(SortKey.execution_id.contains(filters.text.strip()))
    on_key = _on_key(filters)
    own = [getattr(SortKey, column) == value for column, value in on_key.items()
           if column in carried]
    if own:
        # One range of the column's index, in the key's order (a deep page is an OFFSET
        # in it).
        keyed = keyed.where(reduce(operator.and_, own))
    rest = {column: value for column, value in on_key.items() if column not in carried}
    if not rest:
        return keyed
    # A correlated test, not a join: a join lets the planner start from the executions
    # (a scan of a million rows, then a sort) instead of the key's index.
    narrowing = _conditions(Filters(rest.get("pipeline_name"), rest.get("deployment_name"),
                                    rest.get("status")))
    return keyed.where(fn.EXISTS(Execution.select(SQL("1")).where(
        (Execution.execution_id == SortKey.execution_id) & narrowing)))


def _valued_rows(keyed: peewee.ModelSelect, key: str, descending: bool, tail: list[str],
                 start: int, count: int, after: Cursor | None) -> list[tuple]:
    """(execution_id, value, created_at) of executions holding a value, in the key's
    order (ties by date and id in the same direction): `count` from the index from
    `start` (or right after `after`), with the tail's rows (after `after`) merged in."""
    window = keyed.select(SortKey.execution_id, SortKey.value, SortKey.created_at)
    if after is not None:
        window = window.where(after.beyond(SortKey.value, SortKey.created_at,
                                           SortKey.execution_id, descending))
    # One direction for the three columns: the key's index (whose entries end with the
    # execution id) is read forwards or backwards, never sorted (a tie group of a
    # thousand executions sharing a value was sorted on each page).
    window = (window.order_by(*(f.desc() if descending else f.asc() for f in (
        SortKey.value, SortKey.created_at, SortKey.execution_id)))
              .limit(count).offset(start))
    sql, params = window.sql()
    if tail:
        group, _, name = key.partition(":")
        if group in sortindex.KINDS:  # read from the executions' JSON
            value, dated, ids = (sortindex.scan_value(group, name), Execution.created_at,
                                 Execution.execution_id)
            extra = Execution.select(ids, value, dated)
        else:  # metric keys the indexer has not stamped with their status
            value, dated, ids = SortKey.value, SortKey.created_at, SortKey.execution_id
            extra = SortKey.select(ids, value, dated).where(SortKey.key == key)
        extra = extra.where(ids.in_(tail))
        if after is not None:
            extra = extra.where(after.beyond(value, dated, ids, descending))
        extra_sql, extra_params = extra.sql()
        sql = (f"SELECT * FROM ({sql}) AS w UNION ALL SELECT * FROM ({extra_sql}) AS t "
               "ORDER BY 2 {0}, 3 {0}, 1 {0}".format("DESC" if descending else "ASC"))
        params = params + extra_params
    rows, seen = [], set()
    for row in database.execute_sql(sql, params).fetchall():
        if row[0] not in seen:  # the indexer may have caught one up between the reads
            seen.add(row[0])
            rows.append(row)
    return rows


def _keyed_ids(environment: Environment, filters: Filters, key: str,
               carried: tuple[str, ...], descending: bool, total: int, offset: int,
               limit: int, tail: list[str] = (),
               after: Cursor | None = None) -> tuple[list[str], Cursor | None]:
    """A page of the filtered executions sorted by a stored key, and the cursor of the
    next: those holding a value in the key's order (ties by date in the same direction),
    then those without one (by date in the same direction). The index scan stops at the
    page; the filters are read from the key's own columns (`carried`, sortindex.carried),
    or checked on each execution it meets. `tail`: executions holding a value the index
    does not have yet (an input/output read from their JSON) or has without its status (a
    metric key the indexer has not stamped), merged in: the index is
    read from `len(tail)` rows before the offset, so that however the tail interleaves,
    every row of the page is among what was read. With `after`, the page starts right
    after that row instead; past the middle, an offset page is read from the other end
    (the last page costs the key's counter, `_valued_count`, not a walk over its rows)."""
    keyed = _keyed(environment, filters, key, carried)

    def count() -> int:
        return _valued_count(environment, filters, key, keyed, carried)

    without = filtered(environment, filters).where(~fn.EXISTS(
        SortKey.select(SQL("1")).where((SortKey.execution_id == Execution.execution_id)
                                       & (SortKey.key == key))))
    if tail:
        without = without.where(Execution.execution_id.not_in(tail))
    without = without.select(Execution.execution_id, Execution.created_at)
    dated = (Execution.created_at, Execution.execution_id)
    if after is None and offset > total // 2:
        # Backwards: those without a value (by date, reversed), then the valued ones in
        # the opposite order; the page is where the reversed sequence is at `back`.
        missing = total - count() - len(tail)
        back = total - offset - limit
        rows = []
        if back < missing:
            rows = list(without.order_by(*(f.asc() if descending else f.desc() for f in dated))
                        .limit(limit).offset(back).tuples())
        if len(rows) < limit:
            valued, _ = _valued_at(keyed, key, not descending, tail, max(0, back - missing),
                                   limit - len(rows), count)
            rows += [row[:1] for row in valued]
        return [row[0] for row in reversed(rows)], None
    without = without.order_by(*(f.desc() if descending else f.asc() for f in dated))
    if after is not None and after.region == "n":
        rows = list(without.where(after.by_date(not descending)).limit(limit).tuples())
        return [i for i, _ in rows], (Cursor.after_row("n", *rows[-1]) if rows else None)
    if after is not None:
        page = _valued_rows(keyed, key, descending, tail, 0, limit, after)[:limit]
        skip = 0  # the page goes on with those without a value, from their first
    else:
        page, skip = _valued_at(keyed, key, descending, tail, offset, limit, count)
    ids = [row[0] for row in page]
    last = Cursor.after_row("v", page[-1][0], page[-1][2], page[-1][1]) if page else None
    if len(ids) == limit:
        return ids, last
    more = list(without.limit(limit - len(ids)).offset(skip).tuples())
    return ids + [i for i, _ in more], (Cursor.after_row("n", *more[-1]) if more else last)


def _valued_count(environment: Environment, filters: Filters, key: str,
                  keyed: peewee.ModelSelect, carried: tuple[str, ...]) -> int:
    """How many of the filtered executions the index holds a value of `key` for: the
    store's counter of the key (store/counts.py) once every row carries the filter's
    columns, else a count of the `keyed` rows (an id search has no counter)."""
    if (carried and not (filters.text or "").strip()
            and set(_on_key(filters)) <= set(carried)):
        return counts.total(key, environment.id, _counted(filters))
    return keyed.count()


def _valued_at(keyed: peewee.ModelSelect, key: str, descending: bool, tail: list[str],
               offset: int, limit: int, count: Callable[[], int]) -> tuple[list[tuple], int]:
    """The valued rows at `offset` (up to `limit`), and if they run out, how many of
    those without a value come before the page."""
    start = max(0, offset - len(tail))
    rows = _valued_rows(keyed, key, descending, tail, start, limit + len(tail), None)
    in_tail = set(tail)
    read = sum(1 for row in rows if row[0] not in in_tail)
    if start > 0:
        # Tail rows before the first index row sit before the offset (at most len(tail)
        # of them, and the index was read from len(tail) rows before it).
        before = next((n for n, row in enumerate(rows) if row[0] not in in_tail), len(rows))
        rows = rows[before:]
        skip = offset - start - before
    else:
        skip = offset
    page = rows[skip:skip + limit]
    if len(page) == limit:
        return page, 0
    # Past the keyed executions: how many there are, then the rest from their first.
    holding = start + read if read or start == 0 else count()
    return page, max(0, offset - holding - len(tail))


def _valued_tail(environment: Environment, filters: Filters, query: peewee.ModelSelect,
                 key: str) -> list[str] | None:
    """The filtered executions holding a value for `key` that the index does not hold
    yet (an input/output key), or holds without their status (a metric key: the indexer
    stamps it when it passes them); None if too many to read beside it (the indexer
    catching up)."""
    unindexed = sortindex.unindexed(query, environment.id, TAIL_LIMIT)
    if not unindexed:
        return unindexed
    group, _, name = key.partition(":")
    if group not in sortindex.KINDS:  # a key stamped already is read from the index
        return [i for (i,) in SortKey.select(SortKey.execution_id).where(
            (SortKey.key == key) & SortKey.execution_id.in_(unindexed)
            & SortKey.status.is_null()).tuples()]
    value = sortindex.scan_value(group, name)
    return [i for (i,) in Execution.select(Execution.execution_id).where(
        Execution.execution_id.in_(unindexed) & NodeList([value, SQL("IS NOT NULL")]))
        .tuples()]


def _by_date(query: peewee.ModelSelect, ascending: bool, total: int, offset: int,
             limit: int, after: Cursor | None) -> tuple[list[str], Cursor | None]:
    """A page in creation order, and the next page's cursor. Past the middle, an offset
    page is read from the other end (the last page costs what the first does)."""
    rows = query.select(Execution.execution_id, Execution.created_at)
    reverse = after is None and offset > total // 2
    if after is not None:
        rows, offset = rows.where(after.by_date(ascending)), 0
    elif reverse:
        ascending, offset = not ascending, max(0, total - offset - limit)
    order = [Execution.created_at, Execution.execution_id]
    found = list(rows.order_by(*(f.asc() if ascending else f.desc() for f in order))
                 .limit(limit).offset(offset).tuples())
    if reverse:
        found.reverse()
    return [i for i, _ in found], (Cursor.after_row("t", *found[-1]) if found else None)


def page_of(environment: Environment, filters: Filters, sort: str | None, descending: bool,
            page: int, per_page: int, aggregation: str = "last",
            after: Cursor | None = None) -> Page:
    """The total matching the filters and the executions of this page (or of the page
    right after the `after` cursor, for the orders that have one: by date and by a stored
    key). Empty values sort last either way; ties by date in the sort's direction."""
    if page < 1 or per_page not in PAGE_SIZES:
        raise BadRequest(f"'page' starts at 1 and 'per_page' is one of {list(PAGE_SIZES)}",
                         {"page": page, "per_page": per_page})
    query = filtered(environment, filters)
    total = _total(environment, filters, query)
    key = _sort_key(sort, aggregation) if sort else None
    # Never more than the total holds: a scan for a rare status (Running, say) stops at
    # its last match instead of reading the rest of a million rows.
    limit = min(per_page, total - (page - 1) * per_page)
    if limit <= 0:
        return Page(total, [])
    offset = (page - 1) * per_page
    tail: list[str] | None = []
    carried = sortindex.carried(environment.id, key) if key is not None else ()
    if key is not None and key.partition(":")[0] in sortindex.KINDS:
        tail = _valued_tail(environment, filters, query, key)
    elif filters.status and "status" in carried:
        # A metric key's status: on the keys of the executions the indexer passed; the
        # others are read beside them, or, too many, checked on each key's execution.
        tail = _valued_tail(environment, filters, query, key)
        if tail is None:
            tail, carried = [], tuple(c for c in carried if c != "status")
    if key is not None and tail is not None:
        if after is not None and after.region == "t":
            raise BadRequest("'after' belongs to another sort", {"field": "after"})
        ids, following = _keyed_ids(environment, filters, key, carried, descending, total,
                                    offset, limit, tail, after)
        return Page(total, by_ids(ids), next_after=following)
    if key is None and sort in (None, "meta:created_at"):
        if after is not None and after.region != "t":
            raise BadRequest("'after' belongs to another sort", {"field": "after"})
        ids, following = _by_date(query, sort == "meta:created_at" and not descending,
                                  total, offset, limit, after)
        return Page(total, by_ids(ids), next_after=following)
    # Any other column is read from each filtered execution, by page number.
    expression = sort_expression(sort)
    order = [NodeList([expression, SQL("IS NULL")]),
             NodeList([expression, SQL("DESC" if descending else "ASC")]),
             *(f.desc() if descending else f.asc()
               for f in (Execution.created_at, Execution.execution_id))]
    # Sort and cut on the ids alone, then read the page's whole rows: the sorter never
    # carries the rows' JSON (100,000 rows of inputs would be ~100 MB to sort).
    ids = [i for (i,) in query.select(Execution.execution_id).order_by(*order)
           .limit(limit).offset(offset).tuples()]
    return Page(total, by_ids(ids), catching_up=key is not None)


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
