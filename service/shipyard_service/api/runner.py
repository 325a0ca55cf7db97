"""Callbacks from runners, authenticated by the execution's own token (ExecutionToken) or,
for a deployment's resident runners and ticks, the deployment's (DeploymentToken)."""

from __future__ import annotations

from flask import g, request

from ..domain import executions
from ..errors import BadRequest, Unauthorized
from ..request_limits import streamed_upload
from ..store.models import Execution
from .common import env_blueprint as _env_blueprint
from .common import ok, services
from .schemas.runner import (
    DeploymentLogsBody,
    FinishBody,
    Finished,
    Job,
    LogsBody,
    OutputStored,
    Received,
    Tick,
    TickBody,
)
from .smorest import DEPLOYMENT_TOKEN, EXECUTION_TOKEN

blp = _env_blueprint("runner", __name__, "/runner", "Runner callbacks (internal)",
                     authenticated=False)
blp.common_errors = (401, 403, 404)


def _token(scheme: str) -> str:
    given, _, token = request.headers.get("Authorization", "").partition(" ")
    if given != scheme or not token.strip():
        raise Unauthorized(f"Runner calls need 'Authorization: {scheme} <token>'")
    return token.strip()


@blp.before_request
def _authenticate() -> None:
    """Before the body is read: a caller without the right token learns nothing else."""
    args = request.view_args or {}
    if "execution_id" in args:
        g.execution = services().tokens.runner_principal(args["execution_id"],
                                                         _token("ExecutionToken"))
    else:
        g.runner_token = _token("DeploymentToken")


def _execution(execution_id: str) -> Execution:
    return g.execution


@blp.route("/executions/<execution_id>/logs", methods=["POST"])
@blp.arguments(LogsBody)
@blp.response(200, Received)
@blp.doc(security=EXECUTION_TOKEN)
def logs(body: dict, execution_id: str):
    execution = _execution(execution_id)
    step = execution.step_run
    return ok({"received": executions.record_logs(execution, body["logs"],
                                                  step.step_name if step else None,
                                                  step.attempt if step else None)})


@blp.route("/executions/<execution_id>/outputs/<name>", methods=["PUT"])
@streamed_upload
@blp.response(200, OutputStored)
@blp.doc(security=EXECUTION_TOKEN, requestBody={"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})
def upload_output(execution_id: str, name: str):
    from ..domain import graph_runs

    execution = _execution(execution_id)
    if execution.step_run is not None:
        step_name = execution.step_run.step_name
        if graph_runs.output_type(execution, step_name, name) != "file":
            raise BadRequest(f"'{name}' is not a file output of step '{step_name}'")
        kind = graph_runs.outputs_kind(step_name)
    else:
        declared = {o["pipeline_output_name"]: o for o in execution.outputs}
        if declared.get(name, {}).get("data_type") != "file":
            raise BadRequest(f"'{name}' is not a file output of this execution")
        kind = "outputs"
    services().artifacts.save_execution_file(execution_id, kind, name, request.stream)
    return ok({"name": name})


@blp.route("/executions/<execution_id>/finish", methods=["POST"])
@blp.arguments(FinishBody)
@blp.response(200, Finished)
@blp.doc(security=EXECUTION_TOKEN)
def finish(body: dict, execution_id: str):
    execution = _execution(execution_id)
    if execution.step_run is not None:
        from ..domain import graph_runs

        status = graph_runs.finish_step(services(), execution, execution.step_run, body)
        return ok({"execution_id": execution_id, "step_name": execution.step_run.step_name,
                   "status": status})
    finished = executions.finish(services(), execution, body)
    return ok({"execution_id": finished.execution_id, "status": finished.status})


@blp.route("/deployments/logs", methods=["POST"])
@blp.arguments(DeploymentLogsBody)
@blp.response(200, Received)
@blp.doc(security=DEPLOYMENT_TOKEN)
def deployment_logs(body: dict):
    """Lines a resident runner printed outside executions (module import, preloading)."""
    from ..domain import deployments

    deployment_id = deployments.deployment_id_for_runner(g.runner_token)
    count = deployments.record_logs(deployment_id, body["logs"], body.get("pod_id"))
    return ok({"received": count})


# Cluster mode (orchestrators/argo): a pod fetches its job, a CronWorkflow reports its ticks.
@blp.route("/executions/<execution_id>/job", methods=["GET"])
@blp.response(200, Job)
@blp.doc(security=EXECUTION_TOKEN)
def job(execution_id: str):
    """The job of docs/runner-protocol.md for `python -m shipyard_runner run --execution-id`:
    the code and file inputs as signed URLs, since the pod cannot read the API's disk."""
    from pathlib import Path

    from ..domain import envvars, graph_runs
    from ..domain.lifecycle import StepExecutionStatus
    from ..domain.pipelines import get_pipeline
    from .signed import artifact_url

    execution = _execution(execution_id)
    svc = services()
    environment = execution.environment
    data_dir = Path(svc.settings.data_dir)

    def signed(path: Path) -> str:
        return artifact_url(path.relative_to(data_dir).as_posix())

    inputs = {}
    if execution.step_run is not None:  # one step of a multi-step execution
        step = graph_runs.step_of(execution, execution.step_run.step_name)
        row = graph_runs.begin_step(svc, execution, execution.step_run)
        if row.status in (StepExecutionStatus.REUSED.value, StepExecutionStatus.CACHED.value):
            return ok({"execution_id": execution_id, "resolved": row.status,
                       "api_url": svc.environment_url(environment.project.name,
                                                      environment.name),
                       "code_dir": None, "code_url": None, "function_path": None,
                       "function_name": None, "inputs": {}, "input_data_types": {},
                       "outputs": [], "environment_variables": {}})
        for name, value in graph_runs.job_inputs(svc, execution, row).items():
            inputs[name] = ({"url": signed(Path(value["path"]))}
                            if isinstance(value, dict) and "path" in value else value)
    else:
        step = get_pipeline(environment, execution.pipeline_name).step
    for item in execution.inputs if execution.step_run is None else []:
        name = item["pipeline_input_name"]
        if item["data_type"] != "file":
            inputs[name] = item.get("value")
            continue
        path = svc.artifacts.execution_file(execution_id, "inputs", name)
        inputs[name] = {"url": signed(path)} if path.is_file() else None
    archive = svc.artifacts.step_archive(step.id)
    return ok({
        "execution_id": execution_id,
        "api_url": svc.environment_url(environment.project.name, environment.name),
        "code_dir": None,
        "code_url": signed(archive) if archive.is_file() else None,
        "function_path": step.function_path,
        "function_name": step.function_name,
        "inputs": inputs,
        "input_data_types": {d["name"]: d["data_type"] for d in step.inputs},
        "outputs": [{"name": o["name"], "data_type": o["data_type"]} for o in step.outputs],
        "environment_variables": envvars.as_dict(environment),
    })


@blp.route("/deployments/<int:deployment_id>/ticks", methods=["POST"])
@blp.arguments(TickBody)
@blp.response(200, Tick)
@blp.doc(security=DEPLOYMENT_TOKEN)
def tick(body: dict, deployment_id: int):
    """A CronWorkflow tick (`{"fire_time": "<RFC 3339>"}`, Argo's workflow.scheduledTime).
    The execution starts here, like an embedded tick, at most once per fire time; the answer
    names it (`execution_id` null when this tick had already fired)."""
    import datetime as dt

    from ..domain import deployments
    from ..domain.times import parse_iso
    from ..errors import BadRequest, Forbidden
    from ..store.db import utcnow

    deployment = deployments.by_runner_token(g.runner_token)
    if deployment.id != deployment_id:
        raise Forbidden("This token belongs to another deployment")
    raw = body["fire_time"]
    if not raw:
        raise BadRequest("'fire_time' (RFC 3339) is required", {"field": "fire_time"})
    try:
        fire_time = parse_iso(raw)
    except ValueError:
        raise BadRequest(f"Invalid 'fire_time' {raw!r}", {"field": "fire_time"}) from None
    if fire_time > utcnow() + dt.timedelta(minutes=5):
        raise BadRequest("'fire_time' is in the future", {"field": "fire_time"})
    execution = deployments.schedule_fired(services(), deployment.id, fire_time)
    return ok({"execution_id": execution.execution_id if execution else None,
               "started": execution is not None})
