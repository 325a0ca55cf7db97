"""Execution tracking: environment → pipeline or deployment → executions, newest first,
with the General, Inputs/Outputs, Metrics and Logs tabs."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from ..domain import auth, browse, executions, metrics
from ..errors import NotFound
from .blueprint import bp
from .charts import list_metric_chart
from .context import place
from .paging import Paging

TABS = ("general", "io", "metrics", "logs")
MAX_LOG_LINES = 5_000


@bp.route("/projects/<project_name>/executions")
def tracking_home(project_name: str):
    """Pick an environment, then one of its pipelines or deployments."""
    here = place(project_name)
    sources = [{"environment": env, **browse.execution_sources(env)} for env in here.environments]
    return render_template("tracking_home.html", sources=sources, **here.template_args("tracking"))


@bp.route("/projects/<project_name>/environments/<environment_name>/executions")
def tracking(project_name: str, environment_name: str):
    here = place(project_name, environment_name)
    env = here.environment
    pipeline = request.args.get("pipeline") or None
    deployment = request.args.get("deployment") or None
    paging = Paging.from_args(request.args).with_total(
        browse.count_executions(env, pipeline_name=pipeline, deployment_name=deployment))
    listed = browse.list_executions(env, pipeline_name=pipeline, deployment_name=deployment,
                                    limit=paging.per_page,
                                    offset=(paging.page - 1) * paging.per_page)
    selected_id = request.args.get("execution") or (listed[0]["execution_id"] if listed else None)
    tab = request.args.get("tab") if request.args.get("tab") in TABS else "general"
    detail = _detail(env, selected_id, tab) if selected_id else None
    return render_template(
        "tracking.html", sources=browse.execution_sources(env), executions=listed,
        pipeline=pipeline, deployment=deployment, selected=selected_id, tab=tab, detail=detail,
        paging=paging,
        **here.template_args("tracking"),
    )


def _detail(environment, execution_id: str, tab: str) -> dict:
    execution = executions.get_execution(environment, execution_id)
    body = executions.execution_to_dict(execution)
    body.update(browse.with_resources(execution))
    detail = {"execution": body}
    if tab == "general":
        try:
            detail["creator"] = auth.get_user(execution.created_by) if execution.created_by else None
        except NotFound:
            detail["creator"] = None
    elif tab == "metrics":
        found = metrics.for_executions(environment, [execution_id])[execution_id]
        detail["single"] = sorted(found["single"].items())
        detail["charts"] = [list_metric_chart(name, {execution_id: values})
                            for name, values in sorted(found["list"].items())]
        detail["list_sizes"] = {name: len(v) for name, v in found["list"].items()}
    elif tab == "logs":
        detail["logs"] = executions.logs(execution, None, None, MAX_LOG_LINES)
    return detail


@bp.route("/projects/<project_name>/environments/<environment_name>/executions/<execution_id>")
def execution_page(project_name: str, environment_name: str, execution_id: str):
    """A stable link to one execution (opens it in the tracking page of its pipeline)."""
    here = place(project_name, environment_name)
    execution = executions.get_execution(here.environment, execution_id)
    args = {"execution": execution_id, "tab": request.args.get("tab", "general")}
    if execution.deployment_name:
        args["deployment"] = execution.deployment_name
    else:
        args["pipeline"] = execution.pipeline_name
    return redirect(url_for("ui.tracking", project_name=project_name,
                            environment_name=environment_name, **args))


@bp.route("/projects/<project_name>/environments/<environment_name>/executions/<execution_id>/logs.txt")
def download_logs(project_name: str, environment_name: str, execution_id: str):
    here = place(project_name, environment_name)
    execution = executions.get_execution(here.environment, execution_id)
    lines = [f"{entry['timestamp']} [{entry['stream']}] {entry['message']}"
             for entry in executions.logs(execution, None, None, None)]
    return Response("\n".join(lines) + ("\n" if lines else ""), mimetype="text/plain",
                    headers={"Content-Disposition": f"attachment; filename={execution_id}.log"})
