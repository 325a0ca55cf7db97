"""Retention: each environment may keep its executions N days and/or only the last N
executions of each deployment (off by default). `sweep` removes the others with their logs,
metrics and files (executions.delete_many), never one that is still pending or running.

Each pass deletes in batches, oldest first, through the (environment, created_at) and
(environment, deployment_name, created_at) indexes, so a store of millions is swept without
reading it whole. Several API processes may sweep at once: deletes are idempotent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from ..errors import BadRequest
from ..store.db import database, utcnow
from ..store.models import Environment, Execution
from .lifecycle import FINAL

BATCH = 200  # one transaction each: short, so the hot path's writes never wait long
MAX_DAYS = 100 * 366
MAX_KEEP = 10**9
FIELDS = {"keep_days": ("retention_days", MAX_DAYS),
          "keep_last_per_deployment": ("retention_keep_last", MAX_KEEP)}


def policy_view(environment: Environment) -> dict:
    return {"keep_days": environment.retention_days,
            "keep_last_per_deployment": environment.retention_keep_last,
            "enabled": environment.retention_days is not None
            or environment.retention_keep_last is not None}


def set_policy(environment: Environment, body: dict) -> dict:
    """Both keys are optional; null turns that rule off. Values are whole numbers >= 1."""
    changes = {}
    for key, (column, maximum) in FIELDS.items():
        if key not in body:
            continue
        value = body[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 1 <= value <= maximum):
            raise BadRequest(f"'{key}' must be null or a whole number from 1 to {maximum}",
                             {key: value})
        changes[column] = value
    if changes:
        Environment.update(**changes).where(Environment.id == environment.id).execute()
        for column, value in changes.items():
            setattr(environment, column, value)
    return policy_view(environment)


def expired_ids(environment: Environment, now: dt.datetime, limit: int = BATCH) -> list[str]:
    """Up to `limit` finished executions past the environment's policy, oldest first."""
    ids: list[str] = []
    if environment.retention_days is not None:
        cutoff = now - dt.timedelta(days=environment.retention_days)
        ids += [i for (i,) in Execution.select(Execution.execution_id).where(
            (Execution.environment == environment) & (Execution.created_at < cutoff)
            & Execution.status.in_(FINAL)).order_by(Execution.created_at).limit(limit).tuples()]
    keep = environment.retention_keep_last
    if keep is not None and len(ids) < limit:
        for deployment in _deployment_names(environment):
            newest = (Execution.select(Execution.created_at)
                      .where((Execution.environment == environment)
                             & (Execution.deployment_name == deployment))
                      .order_by(Execution.created_at.desc(), Execution.execution_id.desc()))
            kept = list(newest.select(Execution.created_at, Execution.execution_id)
                        .offset(keep - 1).limit(1).tuples())
            if not kept:
                continue  # no more than `keep` executions
            last_created, last_id = kept[0]
            # Everything older than the keep-th newest (ties broken by id, as the pages do).
            older = ((Execution.created_at < last_created)
                     | ((Execution.created_at == last_created)
                        & (Execution.execution_id < last_id)))
            ids += [i for (i,) in Execution.select(Execution.execution_id).where(
                (Execution.environment == environment)
                & (Execution.deployment_name == deployment) & older
                & Execution.status.in_(FINAL)).order_by(Execution.created_at)
                .limit(limit - len(ids)).tuples()]
            if len(ids) >= limit:
                break
    return list(dict.fromkeys(ids))


def _deployment_names(environment: Environment) -> list[str]:
    return [name for (name,) in Execution.select(Execution.deployment_name).distinct().where(
        (Execution.environment == environment) & Execution.deployment_name.is_null(False))
        .tuples()]


def sweep(svc, now: dt.datetime | None = None, max_batches: int = 100,
          should_stop: Callable[[], bool] = lambda: False) -> int:
    """One pass over every environment with a policy; the number of executions removed.
    Bounded per pass (`max_batches` of BATCH): the next pass goes on where this one stopped.
    `should_stop` is checked between batches (the server is stopping)."""
    from .executions import delete_many

    now = now or utcnow()
    removed = 0
    environments = list(Environment.select().where(
        Environment.retention_days.is_null(False) | Environment.retention_keep_last.is_null(False)))
    for environment in environments:
        for _ in range(max_batches):
            if should_stop():
                return removed
            ids = expired_ids(environment, now)
            if not ids:
                break
            with database.atomic():
                delete_many(svc, ids)
            removed += len(ids)
    return removed
