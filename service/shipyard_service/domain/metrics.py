"""Pipeline metrics: single values (last wins) and lists (appended), per execution.

A list metric is a header row (`ListMetric`: name, execution, count) plus one
`ListMetricChunk` per recording call, so appending never rewrites the values already
stored (a step recording 50,000 values one at a time stays linear)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict

import orjson
from peewee import SQL, Case, PostgresqlDatabase, fn

from ..errors import BadRequest, Forbidden, PayloadTooLarge
from ..store import counts, daycounts
from ..store.db import MAX_INT, database, utcnow
from ..store.models import Environment, Execution, ListMetric, ListMetricChunk, Metric
from .auth import Principal
from .lifecycle import ACTIVE

MAX_LIST_VALUES = 50_000
MAX_BATCH = 10_000
MAX_PAGE = 5_000
# Our SDK's pages (`format=columns`): each field once as an array, a field the filter fixes
# given once, at most this many rows a page: a hard cap on a response's size (single metrics:
# 62 B a row in bench_metrics, a few hundred at most as names are bounded; a list page stays
# at 5,000 rows, as each list may hold 50,000 values).
COLUMNS_MAX_PAGE = {"single": 50_000, "list": MAX_PAGE}
FORMATS = ("objects", "columns")
ROW_FIELDS = ("name", "created_at", "execution_id", "deployment_name", "pipeline_name")
SCOPES = ("pipeline_name", "deployment_name", "execution_id")
FILTERS = ("name", *SCOPES)
AGGREGATIONS = ("last", "min", "max", "mean")
# Names travel unencoded in URLs (contract §0): keep them to URL-safe characters.
METRIC_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,127}$")


def check_metric_name(name: object) -> str:
    if not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
        raise BadRequest(
            f"Invalid metric name {name!r}: use letters, digits and '_ . : @ -' "
            "(at most 128 characters)",
            {"field": "name", "value": name if isinstance(name, str) else None},
        )
    return name


# A list's running sum (its mean, sorted by in the comparison) must stay a double: past
# this, adding one more value could overflow, which PostgreSQL refuses (an error) and SQLite
# keeps as infinity. Far beyond any measured quantity.
MAX_SUM = 1e308


def _number(value: object, field: str) -> float:
    """A finite number the store's DOUBLE columns hold: an integer past 64 bits becomes its
    nearest double (as a single value always did), one past the double range is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"'{field}' must be a finite number", {"field": field})
    if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
    if not math.isfinite(value):
        raise BadRequest(f"'{field}' must be a finite number (at most about 1.8e308 in "
                         "magnitude)", {"field": field})
    return value


def _running_execution(environment: Environment, principal: Principal,
                       execution_id: object) -> Execution:
    """Metrics belong to a running execution of this environment; an execution token may
    only write its own. Called in the metric's transaction: on PostgreSQL the execution's
    row stays share-locked until the metric is committed, so the execution cannot end in
    between (on SQLite the transaction's write lock already holds its end back). A metric
    never lands after its execution ended, and the sort indexer, which stamps metric keys
    with their execution's final status `sortindex.LAG` after the end, sees every one."""
    if not isinstance(execution_id, str) or not execution_id:
        raise BadRequest("Metrics are recorded from inside an execution: 'execution_id' is missing",
                         {"field": "execution_id"})
    if principal.in_execution and principal.execution_id != execution_id:
        raise Forbidden("An execution can only record its own metrics",
                        {"execution_id": execution_id})
    query = Execution.select().where(
        (Execution.execution_id == execution_id) & (Execution.environment == environment))
    if isinstance(database.obj, PostgresqlDatabase):
        query = query.for_update("FOR SHARE")
    execution = query.get_or_none()
    if execution is None or execution.status not in ACTIVE:
        raise Forbidden("Metrics can only be recorded while their execution runs",
                        {"execution_id": execution_id})
    return execution


def record_single(environment: Environment, principal: Principal, name: str, body: dict) -> dict:
    check_metric_name(name)
    value = _number(body.get("value"), "value")
    with database.atomic():
        execution = _running_execution(environment, principal, body.get("execution_id"))
        now = utcnow()
        (
            Metric.insert(environment=environment, execution_id=execution.execution_id,
                          pipeline_name=execution.pipeline_name,
                          deployment_name=execution.deployment_name, name=name, value=value,
                          created_at=now)
            .on_conflict(conflict_target=[Metric.execution_id, Metric.name],
                         update={Metric.value: value, Metric.created_at: now})
            .execute()
        )
    return {"name": name, "value": value, "execution_id": execution.execution_id}


def record_list(environment: Environment, principal: Principal, name: str, body: dict) -> dict:
    check_metric_name(name)
    values = body.get("values")
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]  # one value, as `value` alone: accepted like the SDKs' shorthand
    if not isinstance(values, list) or not values:
        raise BadRequest("'values' must be a non-empty list of numbers", {"field": "values"})
    if len(values) > MAX_BATCH:
        raise PayloadTooLarge(f"At most {MAX_BATCH} values per call", {"count": len(values)})
    values = [_number(v, "values[]") for v in values]
    with database.atomic():
        execution = _running_execution(environment, principal, body.get("execution_id"))
        ListMetric.insert(
            environment=environment, execution_id=execution.execution_id,
            pipeline_name=execution.pipeline_name, deployment_name=execution.deployment_name,
            name=name, values=[], count=0, created_at=utcnow(),
        ).on_conflict_ignore().execute()
        # The cap is checked and the count raised in one statement: concurrent appends of
        # the same list cannot overshoot it, on SQLite as on PostgreSQL.
        low, high, added = min(values), max(values), sum(values)
        if not -MAX_SUM <= added <= MAX_SUM:
            raise _sum_overflows(name)
        accepted = ListMetric.update(
            count=ListMetric.count + len(values),
            value_min=Case(None, [(ListMetric.value_min.is_null() | (ListMetric.value_min > low),
                                   low)], ListMetric.value_min),
            value_max=Case(None, [(ListMetric.value_max.is_null() | (ListMetric.value_max < high),
                                   high)], ListMetric.value_max),
            value_sum=fn.COALESCE(ListMetric.value_sum, 0) + float(added),
            value_last=values[-1],
        ).where(
            (ListMetric.execution_id == execution.execution_id) & (ListMetric.name == name)
            & (ListMetric.count + len(values) <= MAX_LIST_VALUES)
            # Checked before the sum is made: PostgreSQL fails an overflowing addition.
            & fn.COALESCE(ListMetric.value_sum, 0).between(-MAX_SUM - float(added),
                                                           MAX_SUM - float(added))
        ).execute()
        header = ListMetric.get(
            (ListMetric.execution_id == execution.execution_id) & (ListMetric.name == name)
        )
        if not accepted and header.count + len(values) <= MAX_LIST_VALUES:
            raise _sum_overflows(name)
        if not accepted:
            raise PayloadTooLarge(
                f"List metric '{name}' would hold {header.count + len(values)} values: at most "
                f"{MAX_LIST_VALUES} per execution",
                {"name": name, "limit": MAX_LIST_VALUES, "current": header.count},
            )
        ListMetricChunk.create(list_metric=header, values=values)
    return {"name": name, "count": header.count, "execution_id": execution.execution_id}


def _sum_overflows(name: str) -> BadRequest:
    return BadRequest(f"List metric '{name}': the sum of its values would pass {MAX_SUM:g} in "
                      "magnitude, past what its mean can be kept with", {"name": name,
                                                                         "max_sum": MAX_SUM})


# Reading ------------------------------------------------------------------------------

def parse_filters(raw: dict[str, str | None]) -> dict[str, str]:
    """At most one of pipeline/deployment/execution, optionally with a name (the
    documentation's own example combines name and pipeline_name)."""
    filters = {k: v for k, v in raw.items() if v not in (None, "")}
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise BadRequest(f"Unknown metric filters: {unknown}; use {list(FILTERS)}",
                         {"filters": unknown})
    scopes = [k for k in SCOPES if k in filters]
    if len(scopes) > 1:
        raise BadRequest("Filter by at most one of pipeline_name, deployment_name, execution_id",
                         {"filters": scopes})
    return filters


def _where(model, environment: Environment, filters: dict):
    """The filter; the store's (environment, scope, created_at, id) indexes serve it in
    page order (migration 0006)."""
    condition = model.environment == environment
    for key in FILTERS:
        if filters.get(key):
            condition &= getattr(model, key) == filters[key]
    return condition


def _values_of(header_ids) -> dict[int, list[float]]:
    """{header id: values} of a list of header ids, or of a query selecting them (a page)."""
    if not isinstance(header_ids, list):
        return _decode_chunks(_chunk_texts(ListMetricChunk.list_metric.in_(header_ids)))
    values: dict[int, list[float]] = {i: [] for i in header_ids}
    for start in range(0, len(header_ids), 500):  # keep IN (...) lists short for SQLite
        values.update(_decode_chunks(_chunk_texts(
            ListMetricChunk.list_metric.in_(header_ids[start:start + 500]))))
    return values


def _chunk_texts(condition) -> dict[int, list[str]]:
    """{header id: the stored JSON text of each of its chunks, in order}. Raw rows: Peewee's
    per-field conversions cost more than the query."""
    texts: dict[int, list[str]] = defaultdict(list)
    for header_id, text in database.execute(
            ListMetricChunk.select(ListMetricChunk.list_metric, ListMetricChunk.values)
            .where(condition).order_by(ListMetricChunk.id)):
        texts[header_id].append(text)
    return texts


def _decode_chunks(texts: dict[int, list[str]]) -> dict[int, list[float]]:
    # One JSON parse for all of them: thousands of small json.loads calls cost more.
    return {header_id: json.loads(_concat_arrays(chunks)) for header_id, chunks in texts.items()}


def _concat_arrays(texts: list[str]) -> str:
    """The JSON text of the concatenation of JSON arrays given as text (as stored)."""
    texts = [t for t in texts if t and t.strip() != "[]"]
    if len(texts) == 1:
        return texts[0]
    return "[" + ",".join(t.strip()[1:-1] for t in texts) + "]"


def _created_sql(postgres: bool) -> str:
    """A row's `created_at` as `times.iso` writes it (milliseconds, UTC), made by the database."""
    if postgres:
        return """to_char("created_at", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
    # 'YYYY-MM-DD HH:MM:SS[.ffffff]' -> 'YYYY-MM-DDTHH:MM:SS.mmmZ'
    return ("""substr(replace("created_at", ' ', 'T') || CASE WHEN length("created_at") = 19 """
            """THEN '.000' ELSE '000' END, 1, 23) || 'Z'""")


def _head_sql(postgres: bool) -> str:
    """The JSON object of a row's fields but its value, made by the database.

    Keys in the documented order, dates as `times.iso` writes them; the value is left to
    Python (`repr`, what the json module prints): SQLite's own JSON prints REALs with 15
    digits, which would change values."""
    created = _created_sql(postgres)
    if postgres:
        def text(column: str) -> str:
            return f"COALESCE(to_json(\"{column}\")::text, 'null')"
        return (f"""'{{"name":' || {text("name")} || ',"created_at":"' || {created} """
                f"""|| '","execution_id":' || {text("execution_id")} """
                f"""|| ',"deployment_name":' || {text("deployment_name")} """
                f"""|| ',"pipeline_name":' || {text("pipeline_name")} || '}}'""")
    return (f"""json_object('name', "name", 'created_at', {created}, """
            """'execution_id', "execution_id", 'deployment_name', "deployment_name", """
            """'pipeline_name', "pipeline_name")""")


def _page_scope(kind: str, environment: Environment, filters: dict, page: int, per_page: int,
                max_page: int = MAX_PAGE):
    """(total, model, condition, rows to skip) of one page.

    Built for stores of millions of rows: the total comes from the store's counters, and a
    deep page starts at the day its first row falls in (`daycounts`: it skips that day's
    earlier rows, not the whole list before it)."""
    if page < 1 or not 1 <= per_page <= max_page or (page - 1) * per_page > MAX_INT:
        raise BadRequest(f"'page' starts at 1 and 'items_per_page' is 1 to {max_page}",
                         {"page": page, "items_per_page": per_page})
    filters = parse_filters(filters)
    model = Metric if kind == "single" else ListMetric
    table = model._meta.table_name
    where = _where(model, environment, filters)
    offset = skip = (page - 1) * per_page
    if filters.get("execution_id"):  # a few rows, on the (execution_id, name) index
        total = model.select(fn.COUNT(SQL("*"))).where(where).scalar()
    else:  # the store's counters: a sum of a few rows, not a count of millions
        total = counts.total(table, environment.id, filters)
        if offset:
            # The day counts and the rows are read by the page's one statement: one snapshot.
            (day, day_params), (within, within_params) = daycounts.page_start(
                table, environment.id, filters, offset, database.obj.param)
            where &= model.created_at >= SQL(day, day_params)
            skip = SQL(within, within_params)
    return total, model, where, skip


def _ordered(model, where, per_page: int, skip, *columns):
    """The page's rows, read on the filter's (environment, filter, created_at, id) index, in
    a total order, so pages never overlap or skip while the client walks them."""
    return (model.select(*columns).where(where).order_by(model.created_at, model.id)
            .limit(per_page).offset(skip))


def _page(kind: str, environment: Environment, filters: dict, page: int, per_page: int,
          fields: tuple[str, ...] | None = None, max_page: int = MAX_PAGE):
    """(total, rows, {header id: chunk texts}) of one page; rows are raw tuples
    (id, JSON object of the fields but the value, value), or with `fields`
    (id, *those fields' values, value), dates as the JSON object writes them.

    The page is read in one statement, each row's JSON made by the database, in C (a page
    holds up to 5,000)."""
    total, model, where, skip = _page_scope(kind, environment, filters, page, per_page, max_page)
    value = model.value if kind == "single" else model.values
    postgres = isinstance(database.obj, PostgresqlDatabase)
    selected = (_head_sql(postgres) if fields is None else ", ".join(
        _created_sql(postgres) if f == "created_at" else f'"{f}"' for f in fields))
    if postgres:
        # PostgreSQL makes a scan's output columns for every row it skips: the JSON is made
        # above the LIMIT, for the page's rows only.
        sql, params = _ordered(model, where, per_page, skip, model.id, model.name,
                               model.created_at, model.execution_id, model.deployment_name,
                               model.pipeline_name, value).sql()
        rows = list(database.execute_sql(
            f'SELECT "id", {selected}, "{value.column_name}" FROM ({sql}) AS "page" '
            'ORDER BY "created_at", "id"', params))
    else:
        # SQLite skips OFFSET rows before making their columns; a subquery would cost a
        # co-routine and a sort of the page.
        rows = list(database.execute(_ordered(model, where, per_page, skip, model.id,
                                              SQL(selected), value)))
    chunks = {}
    if kind == "list" and rows:
        # The ids passed as one parameter: 5,000 Peewee parameters cost more than the query.
        found = ",".join(str(row[0]) for row in rows)
        chunks = _chunk_texts(
            SQL('"list_metric_id" = ANY(%s::bigint[])', (f"{{{found}}}",)) if postgres
            else SQL('"list_metric_id" IN (SELECT value FROM json_each(?))', (f"[{found}]",)))
    return total, rows, chunks


def _single_columns(environment: Environment, filters: dict, page: int, per_page: int,
                    fields: tuple[str, ...]) -> tuple[int, str, list[float]]:
    """(total, `"field":[...]` for each of `fields`, the values) of a page of single metrics.

    The database makes each field's JSON array, in C (no Python object per row and field);
    the values come to Python as numbers, because SQLite's text of a REAL is not exact.
    One statement, so one snapshot: on SQLite the values' rows, then one row of the arrays."""
    total, model, where, skip = _page_scope("single", environment, filters, page, per_page,
                                            COLUMNS_MAX_PAGE["single"])
    postgres = isinstance(database.obj, PostgresqlDatabase)
    # The aggregates' own ORDER BY (PostgreSQL) needs the order's columns from the page.
    order = [model.id] + ([model.created_at] if postgres and "created_at" not in fields else [])
    sql, params = _ordered(model, where, per_page, skip, model.value,
                           *(getattr(model, f) for f in fields),
                           *(order if postgres else ())).sql()

    def array(field: str) -> str:
        made = _created_sql(postgres) if field == "created_at" else f'"{field}"'
        made = (f"""COALESCE(json_agg({made} ORDER BY "created_at", "id")::text, '[]')"""
                if postgres else f"json_group_array({made})")
        return f"""'"{field}":' || {made}"""

    arrays = " || ',' || ".join(map(array, fields))
    if postgres:
        [(head, values)] = database.execute_sql(
            f'SELECT {arrays}, array_agg("value" ORDER BY "created_at", "id") '
            f'FROM ({sql}) AS "page"', params).fetchall()
        return total, head, values or []
    # SQLite 3.40 has no ORDER BY in aggregates: json_group_array reads the sorted subquery
    # in its order (not documented; tests/backends/test_metric_pages checks it).
    values_sql, values_params = _ordered(model, where, per_page, skip, model.value).sql()
    rows = database.execute_sql(f'SELECT "value" FROM ({values_sql}) UNION ALL '
                                f'SELECT {arrays} FROM ({sql})', [*values_params, *params]).fetchall()
    return total, rows.pop()[0], [value for (value,) in rows]


def _list_text(stored: str, texts) -> str:
    """A list's values as JSON text: those its header row holds itself first, then its chunks'.
    The common list, recorded in one call, has one chunk: that is the answer's text."""
    return texts[0] if len(texts) == 1 and stored == "[]" else _concat_arrays([stored, *texts])


def query_json(kind: str, environment: Environment, filters: dict, page: int,
               per_page: int) -> str:
    """One page of `{metrics, total_count}` as JSON text; total_count always matches what
    the pages hold. List values go from their stored JSON text into the answer without
    being parsed and printed again (100,000 numbers a page)."""
    total, rows, chunks = _page(kind, environment, filters, page, per_page)
    if kind == "single":
        # `repr` of a float is what the json module prints for it.
        parts = [f'{head[:-1]},"value":{value!r}}}' for _, head, value in rows]
    else:
        parts = []
        for row_id, head, stored in rows:
            values = _list_text(stored, chunks.get(row_id, ()))
            # `value` is what 0.60.0 and the documentation read; later clients read `values`.
            parts.append(f'{head[:-1]},"value":{values},"values":{values}}}')
    return f'{{"metrics":[{",".join(parts)}],"total_count":{int(total)}}}'


def query_columns_json(kind: str, environment: Environment, filters: dict, page: int,
                       per_page: int) -> bytes:
    """One page as `{total_count, constant, columns}`: `columns` holds one array per field
    (`value`, or `values` for lists, last) in row order, `constant` the fields every row
    shares because the filter fixes them. The rows are those `query_json` gives for the
    same page and size; no key is repeated per row and no per-row object is made."""
    filters = parse_filters(filters)
    constant = {f: filters[f] for f in ROW_FIELDS if filters.get(f)}
    fields = tuple(f for f in ROW_FIELDS if f not in constant)
    if kind == "single":
        total, head, values = _single_columns(environment, filters, page, per_page, fields)
        columns = b'%s,"value":%s' % (head.encode(), orjson.dumps(values))
    else:  # each list's stored JSON text, spliced in unparsed
        total, rows, chunks = _page(kind, environment, filters, page, per_page, fields,
                                    COLUMNS_MAX_PAGE[kind])
        arrays = list(zip(*rows)) if rows else [()] * (len(fields) + 2)
        columns = b",".join([
            *(b'"%s":%s' % (f.encode(), orjson.dumps(array)) for f, array in zip(fields, arrays[1:])),
            b'"values":[' + ",".join(_list_text(stored, chunks.get(row_id, ()))
                                     for row_id, stored in zip(arrays[0], arrays[-1])).encode()
            + b"]"])
    return b'{"total_count":%d,"constant":%s,"columns":{%s}}' % (
        int(total), orjson.dumps(constant), columns)


def for_executions(environment: Environment, execution_ids: list[str]) -> dict[str, dict]:
    """{execution_id: {"single": {name: value}, "list": {name: [values]}}} (web UI)."""
    result: dict[str, dict] = {e: {"single": {}, "list": {}} for e in execution_ids}
    for start in range(0, len(execution_ids), 500):
        ids = execution_ids[start:start + 500]
        for row in Metric.select().where((Metric.environment == environment)
                                         & Metric.execution_id.in_(ids)):
            result[row.execution_id]["single"][row.name] = row.value
        headers = list(ListMetric.select().where((ListMetric.environment == environment)
                                                 & ListMetric.execution_id.in_(ids)))
        values = _values_of([h.id for h in headers])
        for header in headers:
            result[header.execution_id]["list"][header.name] = (header.values or []) + values[header.id]
    return result


def aggregate(values: list[float], mode: str) -> float | None:
    """One number standing for a list metric (comparison table, sorting)."""
    if mode not in AGGREGATIONS:
        raise BadRequest(f"Unknown aggregation '{mode}': use one of {list(AGGREGATIONS)}",
                         {"aggregation": mode})
    if not values:
        return None
    if mode == "last":
        return values[-1]
    if mode == "min":
        return min(values)
    if mode == "max":
        return max(values)
    return sum(values) / len(values)


def single_series(environment: Environment, scope: str, scope_name: str,
                  start: dt.datetime | None = None, end: dt.datetime | None = None,
                  limit: int = 20_000) -> dict[str, list[tuple[dt.datetime, float, str]]]:
    """Single metrics of a deployment (or pipeline) over time: {name: [(when, value,
    execution_id)]}, oldest first, for the monitoring page."""
    if scope not in ("deployment_name", "pipeline_name"):
        raise BadRequest("Monitor a deployment or a pipeline", {"scope": scope})
    query = Metric.select().where((Metric.environment == environment)
                                  & (getattr(Metric, scope) == scope_name))
    if start is not None:
        query = query.where(Metric.created_at >= start)
    if end is not None:
        query = query.where(Metric.created_at <= end)
    series: dict[str, list] = defaultdict(list)
    for row in query.order_by(Metric.created_at, Metric.id).limit(limit):
        series[row.name].append((row.created_at, row.value, row.execution_id))
    return dict(series)


def delete_for_executions(execution_ids: list[str]) -> None:
    """Called when executions are deleted, so no metric outlives its execution."""
    for start in range(0, len(execution_ids), 500):
        ids = execution_ids[start:start + 500]
        Metric.delete().where(Metric.execution_id.in_(ids)).execute()
        headers = ListMetric.select(ListMetric.id).where(ListMetric.execution_id.in_(ids))
        ListMetricChunk.delete().where(ListMetricChunk.list_metric.in_(headers)).execute()
        ListMetric.delete().where(ListMetric.execution_id.in_(ids)).execute()
