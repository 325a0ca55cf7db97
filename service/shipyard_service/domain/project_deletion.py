"""Deleting a project with everything in it.

Order matters:
1. the orchestrator stops the project's schedules and resident runners, so nothing new
   starts while the rows go;
2. every row of the project (environments, variables, steps and build logs, pipelines and
   their step lists, deployments with their logs and ticks, executions with their step
   executions, logs and metrics,
   memberships, the project) goes in ONE transaction: a failure leaves the project whole;
3. then what lives outside the store: running executions are cancelled, their files, the
   step archives and the environments' data-store objects are removed.
A crash between 2 and 3 leaves orphan files only (no row points at them)."""

from __future__ import annotations

import logging

from ..errors import BadRequest
from ..store.db import database
from ..store.models import (
    BuildLog,
    Deployment,
    DeploymentLog,
    Environment,
    EnvironmentVariable,
    Execution,
    ExecutionLog,
    ListMetric,
    ListMetricChunk,
    Membership,
    Metric,
    Pipeline,
    PipelineStep,
    Project,
    ScheduleTick,
    Step,
    StepCache,
    StepExecution,
)
from .datastore import namespace

log = logging.getLogger("shipyard.projects")


def check_confirmation(project: Project, confirm: object) -> None:
    """The caller re-types the project's name: a deletion is never one stray request."""
    if confirm != project.name:
        raise BadRequest(
            f"Deleting project '{project.name}' and everything in it needs the confirmation "
            f"parameter confirm={project.name}",
            {"field": "confirm", "expected": project.name},
        )


def delete_project(svc, project: Project) -> dict:
    environments = list(Environment.select(Environment, Project).join(Project)
                        .where(Environment.project == project))
    env_ids = [e.id for e in environments]
    prefixes = [namespace(e) for e in environments]  # read before the rows go
    for deployment in Deployment.select(Deployment.id).where(Deployment.environment.in_(env_ids)):
        svc.orchestrator.remove_deployment(deployment.id)

    with database.atomic():
        counts = _delete_rows(project, env_ids)
        execution_ids, step_ids = counts.pop("_execution_ids"), counts.pop("_step_ids")

    svc.endpoints.forget_deployments()
    for execution_id in execution_ids:
        svc.orchestrator.cancel_execution(execution_id)
        svc.artifacts.delete_execution(execution_id)
        svc.events.notify(execution_id)
    for step_id in step_ids:
        svc.artifacts.delete_step(step_id)
    objects = 0
    for prefix in prefixes:
        objects += _delete_objects(svc, prefix)
    counts["data_store_objects"] = objects
    return {"name": project.name, "deleted": counts}


def _delete_rows(project: Project, env_ids: list[int]) -> dict:
    deployments = Deployment.select(Deployment.id).where(Deployment.environment.in_(env_ids))
    execution_ids = [e.execution_id for e in Execution.select(Execution.execution_id)
                     .where(Execution.environment.in_(env_ids))]
    step_ids = [s.id for s in Step.select(Step.id).where(Step.environment.in_(env_ids))]
    lists = ListMetric.select(ListMetric.id).where(ListMetric.environment.in_(env_ids))
    ScheduleTick.delete().where(ScheduleTick.deployment.in_(deployments)).execute()
    DeploymentLog.delete().where(DeploymentLog.deployment.in_(deployments)).execute()
    counts = {"deployments": Deployment.delete().where(
        Deployment.environment.in_(env_ids)).execute()}
    for start in range(0, len(execution_ids), 500):
        ExecutionLog.delete().where(
            ExecutionLog.execution.in_(execution_ids[start:start + 500])).execute()
    StepExecution.delete().where(StepExecution.execution.in_(
        Execution.select(Execution.execution_id).where(Execution.environment.in_(env_ids)))).execute()
    StepCache.delete().where(StepCache.execution.in_(
        Execution.select(Execution.execution_id).where(Execution.environment.in_(env_ids)))).execute()
    counts["executions"] = Execution.delete().where(Execution.environment.in_(env_ids)).execute()
    ListMetricChunk.delete().where(ListMetricChunk.list_metric.in_(lists)).execute()
    ListMetric.delete().where(ListMetric.environment.in_(env_ids)).execute()
    Metric.delete().where(Metric.environment.in_(env_ids)).execute()
    PipelineStep.delete().where(PipelineStep.pipeline.in_(
        Pipeline.select(Pipeline.id).where(Pipeline.environment.in_(env_ids)))).execute()
    counts["pipelines"] = Pipeline.delete().where(Pipeline.environment.in_(env_ids)).execute()
    BuildLog.delete().where(BuildLog.step.in_(
        Step.select(Step.id).where(Step.environment.in_(env_ids)))).execute()
    counts["steps"] = Step.delete().where(Step.environment.in_(env_ids)).execute()
    counts["environment_variables"] = EnvironmentVariable.delete().where(
        EnvironmentVariable.environment.in_(env_ids)).execute()
    counts["environments"] = Environment.delete().where(Environment.id.in_(env_ids)).execute()
    Membership.delete().where(Membership.project == project).execute()
    Project.delete().where(Project.id == project.id).execute()
    return {**counts, "_execution_ids": execution_ids, "_step_ids": step_ids}


def _delete_objects(svc, prefix: str) -> int:
    count = 0
    for key in list(svc.datastore.iter_keys(prefix)):
        try:
            svc.datastore.delete(key)
            count += 1
        except Exception as exc:  # noqa: BLE001 - one stuck object must not stop the rest
            log.warning("could not delete data-store object %s: %s", key, exc)
    return count
