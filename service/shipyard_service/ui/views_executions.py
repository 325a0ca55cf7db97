"""Execution tracking: environment → pipeline or deployment → executions, newest first,
with the General, Inputs/Outputs, Metrics and Logs tabs."""

from __future__ import annotations

from flask import Response, flash, jsonify, redirect, render_template, request, url_for

from ..domain import auth, browse, executions, metrics, reruns
from ..domain.lifecycle import FINAL
from ..errors import BadRequest, NotFound, ShipyardError
from .blueprint import bp
from .charts import list_metric_chart
from .context import place
from .paging import Paging
from .services import services
from .session import current_user

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
    if detail is not None and tab == "general":
        _graph_detail(env, detail, request.args.get("step"), lambda step: url_for(
            "ui.tracking", project_name=project_name, environment_name=environment_name,
            execution=selected_id, tab="general", step=step,
            **{k: v for k, v in (("pipeline", pipeline), ("deployment", deployment)) if v}))
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
        detail["logs"] = browse.execution_log_lines(execution, None, MAX_LOG_LINES)
    return detail


def _graph_detail(environment, detail: dict, selected: str | None, link) -> None:
    """A multi-step execution: its graph with each step's status (each step a link), and
    the selected step's dates, inputs/outputs and log lines."""
    from ..domain import pipelines
    from ..errors import NotFound as Missing
    from . import graph_svg

    body = detail["execution"]
    steps = body.get("steps") or []
    if len(steps) < 2:
        return
    try:
        found = pipelines.get_pipeline(environment, body["pipeline_name"])
    except Missing:
        return
    shape = pipelines.pipeline_to_dict(found)
    statuses = {s["name"]: s["status"] for s in steps}
    detail["graph"] = graph_svg.render(shape["steps"], shape["connections"],
                                       shape["open_inputs"], shape["open_outputs"],
                                       statuses=statuses, link=link, selected=selected)
    step = next((s for s in steps if s["name"] == selected), None)
    if step is not None:
        execution = executions.get_execution(environment, body["execution_id"])
        detail["step"] = step
        detail["step_logs"] = executions.logs(execution, None, None, MAX_LOG_LINES,
                                              step_name=step["name"])


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


@bp.route("/projects/<project_name>/environments/<environment_name>/executions/<execution_id>/rerun",
          methods=["POST"])
def execution_rerun(project_name: str, environment_name: str, execution_id: str):
    """The execution page's Re-run form: a new execution from the chosen step (empty: the
    first failed one); it opens the new execution, or says why there is none."""
    here = place(project_name, environment_name)
    origin = executions.get_execution(here.environment, execution_id)
    try:
        started = reruns.rerun(services(), here.environment, current_user().id, origin,
                               request.form.get("from_step") or None)
    except ShipyardError as exc:
        flash(exc.message, "error")
        started = origin
    else:
        flash(f"Re-run of {execution_id} started: {started.execution_id}.", "success")
    return redirect(url_for("ui.execution_page", project_name=project_name,
                            environment_name=environment_name,
                            execution_id=started.execution_id))


@bp.route("/projects/<project_name>/environments/<environment_name>/executions/<execution_id>/logs.txt")
def download_logs(project_name: str, environment_name: str, execution_id: str):
    here = place(project_name, environment_name)
    execution = executions.get_execution(here.environment, execution_id)
    lines = [f"{entry['timestamp']} [{entry['stream']}] {entry['message']}"
             for entry in executions.logs(execution, None, None, None)]
    return Response("\n".join(lines) + ("\n" if lines else ""), mimetype="text/plain",
                    headers={"Content-Disposition": f"attachment; filename={execution_id}.log"})


@bp.route("/projects/<project_name>/environments/<environment_name>/executions/<execution_id>/live")
def execution_live(project_name: str, environment_name: str, execution_id: str):
    """Polled by the tracking page while the execution runs: status, the log lines after
    `after`, single metrics so far. `final` tells the page to stop."""
    here = place(project_name, environment_name)
    execution = executions.get_execution(here.environment, execution_id)
    try:
        after = int(request.args.get("after") or 0)
    except ValueError as exc:
        raise BadRequest("'after' must be a log line id", {"field": "after"}) from exc
    found = metrics.for_executions(here.environment, [execution_id])[execution_id]
    body = browse.with_resources(execution)
    steps = None
    if "steps" in (execution.step_info or {}):  # a multi-step execution: its graph's nodes
        from ..domain.graph_runs import rows_of

        steps = {row.step_name: row.status for row in rows_of(execution_id)}
    return jsonify({"status": execution.status, "final": execution.status in FINAL,
                    "steps": steps,
                    "duration_s": body["duration_s"], "cpu_time_s": body["cpu_time_s"],
                    "logs": browse.execution_log_lines(execution, after, MAX_LOG_LINES),
                    "metrics": found["single"],
                    "list_sizes": {name: len(v) for name, v in found["list"].items()}})
