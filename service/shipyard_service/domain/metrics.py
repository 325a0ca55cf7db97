"""Pipeline metrics: single values (last wins) and lists (appended), per execution."""

from __future__ import annotations

import math

from ..errors import BadRequest, Forbidden
from ..store.db import utcnow
from ..store.models import Environment, Execution, ListMetric, Metric
from .auth import Principal
from .executions import ACTIVE
from .times import iso

MAX_LIST_VALUES = 50_000
MAX_BATCH = 10_000
SCOPES = ("pipeline_name", "deployment_name", "execution_id")


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"'{field}' must be a finite number", {"field": field})
    return value


def _running_execution(environment: Environment, principal: Principal, execution_id: object) -> Execution:
    if not isinstance(execution_id, str) or not execution_id:
        raise BadRequest("Metrics are recorded from inside an execution: 'execution_id' is missing")
    if principal.in_execution and principal.execution_id != execution_id:
        raise Forbidden("An execution can only record its own metrics")
    execution = Execution.get_or_none(
        (Execution.execution_id == execution_id) & (Execution.environment == environment)
    )
    if execution is None or execution.status not in ACTIVE:
        raise Forbidden("Metrics can only be recorded while their execution runs",
                        {"execution_id": execution_id})
    return execution


def record_single(environment: Environment, principal: Principal, name: str, body: dict) -> None:
    value = _number(body.get("value"), "value")
    execution = _running_execution(environment, principal, body.get("execution_id"))
    (
        Metric.insert(environment=environment, execution_id=execution.execution_id,
                      pipeline_name=execution.pipeline_name,
                      deployment_name=execution.deployment_name, name=name, value=value,
                      created_at=utcnow())
        .on_conflict(conflict_target=[Metric.execution_id, Metric.name],
                     update={Metric.value: value, Metric.created_at: utcnow()})
        .execute()
    )


def record_list(environment: Environment, principal: Principal, name: str, body: dict) -> None:
    values = body.get("values")
    if not isinstance(values, list) or not values:
        raise BadRequest("'values' must be a non-empty list of numbers", {"field": "values"})
    if len(values) > MAX_BATCH:
        raise BadRequest(f"At most {MAX_BATCH} values per call", {"count": len(values)})
    values = [_number(v, "values[]") for v in values]
    execution = _running_execution(environment, principal, body.get("execution_id"))
    row = ListMetric.get_or_none(
        (ListMetric.execution_id == execution.execution_id) & (ListMetric.name == name)
    )
    current = row.count if row else 0
    if current + len(values) > MAX_LIST_VALUES:
        raise BadRequest(
            f"List metric '{name}' would hold {current + len(values)} values: at most "
            f"{MAX_LIST_VALUES} per execution",
            {"name": name, "limit": MAX_LIST_VALUES, "current": current},
        )
    if row is None:
        ListMetric.create(environment=environment, execution_id=execution.execution_id,
                          pipeline_name=execution.pipeline_name,
                          deployment_name=execution.deployment_name, name=name,
                          values=values, count=len(values))
    else:
        row.values = row.values + values
        row.count = current + len(values)
        row.save()


def _filtered(model, environment: Environment, filters: dict):
    scopes = [k for k in SCOPES if filters.get(k)]
    if len(scopes) > 1:
        raise BadRequest("Filter by at most one of pipeline_name, deployment_name, execution_id")
    query = model.select().where(model.environment == environment)
    for key in ("name", *SCOPES):
        if filters.get(key):
            query = query.where(getattr(model, key) == filters[key])
    return query.order_by(model.created_at, model.id)


def query(kind: str, environment: Environment, filters: dict, page: int, per_page: int) -> dict:
    if page < 1 or not 1 <= per_page <= 5000:
        raise BadRequest("'page' starts at 1 and 'items_per_page' is 1 to 5000")
    model = Metric if kind == "single" else ListMetric
    base = _filtered(model, environment, filters)
    total = base.count()
    rows = base.paginate(page, per_page)
    metrics = []
    for row in rows:
        item = {"name": row.name, "created_at": iso(row.created_at),
                "execution_id": row.execution_id, "deployment_name": row.deployment_name,
                "pipeline_name": row.pipeline_name}
        if kind == "single":
            item["value"] = row.value
        else:
            item["values"] = row.values
        metrics.append(item)
    return {"metrics": metrics, "total_count": total}
