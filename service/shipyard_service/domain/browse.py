"""Read-only listings the web UI needs beside the API's own views: projects and their
environments, executions by pipeline or deployment with their resource usage, and the
data of the execution comparison. No Flask here; the UI never queries the store itself."""

from __future__ import annotations

from ..store.models import Deployment, Environment, Execution, Pipeline, Project
from .executions import summary
from .times import iso

MAX_EXECUTIONS = 500


def list_projects() -> list[dict]:
    projects = list(Project.select().order_by(Project.name))
    envs: dict[int, list[str]] = {p.id: [] for p in projects}
    for env in Environment.select().order_by(Environment.name):
        envs.setdefault(env.project_id, []).append(env.name)
    return [{"name": p.name, "created_at": iso(p.created_at), "environments": envs[p.id],
             "language": p.settings.get("language")} for p in projects]


def list_environments(project: Project) -> list[Environment]:
    return list(Environment.select().where(Environment.project == project)
                .order_by(Environment.created_at, Environment.name))


def environment_counts(environment: Environment) -> dict:
    return {
        "pipelines": Pipeline.select().where(Pipeline.environment == environment).count(),
        "deployments": Deployment.select().where(Deployment.environment == environment).count(),
        "executions": Execution.select().where(Execution.environment == environment).count(),
    }


def with_resources(execution: Execution) -> dict:
    item = summary(execution)
    item.update(cpu_time_s=execution.cpu_time_s, peak_rss_bytes=execution.peak_rss_bytes,
                duration_s=_duration(execution))
    return item


def _duration(execution: Execution) -> float | None:
    if execution.start_date and execution.end_date:
        return round((execution.end_date - execution.start_date).total_seconds(), 3)
    return None


def list_executions(environment: Environment, pipeline_name: str | None = None,
                    deployment_name: str | None = None,
                    limit: int = MAX_EXECUTIONS) -> list[dict]:
    """Newest first, with CPU time and peak memory."""
    query = Execution.select().where(Execution.environment == environment)
    if pipeline_name:
        query = query.where(Execution.pipeline_name == pipeline_name)
    if deployment_name:
        query = query.where(Execution.deployment_name == deployment_name)
    query = query.order_by(Execution.created_at.desc(), Execution.execution_id).limit(limit)
    return [with_resources(e) for e in query]


def execution_sources(environment: Environment) -> dict:
    """Pipelines that were run and deployments that executed, with their counts."""
    from peewee import fn

    pipelines = (Execution.select(Execution.pipeline_name, fn.COUNT(Execution.execution_id))
                 .where(Execution.environment == environment)
                 .group_by(Execution.pipeline_name).order_by(Execution.pipeline_name).tuples())
    deployments = (Execution.select(Execution.deployment_name, fn.COUNT(Execution.execution_id))
                   .where((Execution.environment == environment)
                          & Execution.deployment_name.is_null(False))
                   .group_by(Execution.deployment_name).order_by(Execution.deployment_name)
                   .tuples())
    return {"pipelines": [{"name": n, "count": c} for n, c in pipelines],
            "deployments": [{"name": n, "count": c} for n, c in deployments]}


def comparison_data(environment: Environment, limit: int = MAX_EXECUTIONS) -> list[dict]:
    """Every execution of the environment (newest first, bounded) with its I/O values,
    metrics and resource usage: what the comparison table is built from."""
    from .metrics import for_executions

    executions = list(Execution.select().where(Execution.environment == environment)
                      .order_by(Execution.created_at.desc()).limit(limit))
    metrics = for_executions(environment, [e.execution_id for e in executions])
    rows = []
    for execution in executions:
        item = with_resources(execution)
        item["inputs"] = {i["pipeline_input_name"]: i for i in execution.inputs}
        item["outputs"] = {o["pipeline_output_name"]: o for o in execution.outputs}
        item["metrics"] = metrics[execution.execution_id]["single"]
        item["list_metrics"] = metrics[execution.execution_id]["list"]
        rows.append(item)
    return rows
