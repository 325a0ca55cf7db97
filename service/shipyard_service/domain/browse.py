"""Read-only listings the web UI needs beside the API's own views: projects and their
environments, executions by pipeline or deployment with their resource usage, and the
data of the execution comparison. No Flask here; the UI never queries the store itself."""

from __future__ import annotations

from ..store import counts
from ..store.models import Deployment, Environment, Execution, Pipeline, Project
from .executions import summary
from .times import iso


def list_projects(visible: list[Project]) -> list[dict]:
    """The given projects (domain/access.visible_projects) with their environments."""
    projects = visible
    envs: dict[int, list[str]] = {p.id: [] for p in projects}
    for env in Environment.select().where(Environment.project.in_(list(envs))).order_by(
            Environment.name):
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
        "executions": counts.total("execution", environment.id, {}),
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


def _of(environment: Environment, pipeline_name: str | None, deployment_name: str | None):
    query = Execution.select().where(Execution.environment == environment)
    if pipeline_name:
        query = query.where(Execution.pipeline_name == pipeline_name)
    if deployment_name:
        query = query.where(Execution.deployment_name == deployment_name)
    return query


def list_executions(environment: Environment, pipeline_name: str | None = None,
                    deployment_name: str | None = None, limit: int = 50,
                    offset: int = 0) -> list[dict]:
    """One page, newest first, with CPU time and peak memory."""
    from .comparison import by_ids

    ids = [i for (i,) in _of(environment, pipeline_name, deployment_name)
           .select(Execution.execution_id)
           .order_by(Execution.created_at.desc(), Execution.execution_id.desc())
           .limit(limit).offset(offset).tuples()]
    return [with_resources(e) for e in by_ids(ids)]


def count_executions(environment: Environment, pipeline_name: str | None = None,
                     deployment_name: str | None = None) -> int:
    return counts.total("execution", environment.id, {"pipeline_name": pipeline_name,
                                                      "deployment_name": deployment_name})


def with_io(execution: Execution) -> dict:
    """`with_resources` plus the input and output items (the comparison's cells)."""
    item = with_resources(execution)
    item.update(inputs=execution.inputs or [], outputs=execution.outputs or [])
    return item


def execution_sources(environment: Environment) -> dict:
    """Pipelines that were run and deployments that executed, with their counts (from the
    store's counters: a grouping of a million executions took a second)."""
    pipelines = counts.breakdown("execution", environment.id, {}, "pipeline_name")
    deployments = counts.breakdown("execution", environment.id, {}, "deployment_name")
    deployments.pop("", None)  # executions of no deployment
    return {"pipelines": [{"name": n, "count": c} for n, c in sorted(pipelines.items())],
            "deployments": [{"name": n, "count": c} for n, c in sorted(deployments.items())]}


def _lines(query, model, after_id: int | None, limit: int) -> list[dict]:
    from .logs import since, tail

    rows = tail(query, model, limit) if after_id is None else since(query, model, after_id, limit)
    return [{"id": r.id, "timestamp": iso(r.timestamp), "stream": r.stream, "message": r.message,
             "source": getattr(r, "pod_id", None) or getattr(r, "step_name", None)} for r in rows]


def execution_log_lines(execution: Execution, after_id: int | None = None,
                        limit: int = 2_000) -> list[dict]:
    """The log's last lines (after_id None), or the lines after one: a live page's tail."""
    from ..store.models import ExecutionLog

    query = ExecutionLog.select().where(ExecutionLog.execution == execution.execution_id)
    return _lines(query, ExecutionLog, after_id, limit)


def deployment_log_lines(deployment: Deployment, after_id: int | None = None,
                         limit: int = 500) -> list[dict]:
    from ..store.models import DeploymentLog

    query = DeploymentLog.select().where(DeploymentLog.deployment == deployment)
    return _lines(query, DeploymentLog, after_id, limit)
