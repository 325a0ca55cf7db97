"""Callbacks from runners, authenticated by the execution's own token."""

from __future__ import annotations

from flask import request

from ..domain import executions
from ..domain.auth import TokenService
from ..errors import Unauthorized
from ..store.models import Execution
from .common import env_blueprint as _env_blueprint
from .common import ok, services

blp = _env_blueprint("runner", __name__, "/runner", "Runner callbacks (internal)",
                     authenticated=False)


def _execution(execution_id: str) -> Execution:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "ExecutionToken" or not token:
        raise Unauthorized("Runner calls need 'Authorization: ExecutionToken <token>'")
    return TokenService.runner_principal(execution_id, token.strip())


@blp.route("/executions/<execution_id>/logs", methods=["POST"])
def logs(execution_id: str):
    execution = _execution(execution_id)
    body = request.get_json(silent=True) or {}
    return ok({"received": executions.record_logs(execution, body.get("logs"))})


@blp.route("/executions/<execution_id>/outputs/<name>", methods=["PUT"])
def upload_output(execution_id: str, name: str):
    execution = _execution(execution_id)
    declared = {o["pipeline_output_name"]: o for o in execution.outputs}
    if declared.get(name, {}).get("data_type") != "file":
        from ..errors import BadRequest

        raise BadRequest(f"'{name}' is not a file output of this execution")
    services().artifacts.save_execution_file(execution_id, "outputs", name, request.stream)
    return ok({"name": name})


@blp.route("/executions/<execution_id>/finish", methods=["POST"])
def finish(execution_id: str):
    execution = _execution(execution_id)
    body = request.get_json(silent=True) or {}
    finished = executions.finish(services(), execution, body)
    return ok({"execution_id": finished.execution_id, "status": finished.status})




@blp.route("/deployments/logs", methods=["POST"])
def deployment_logs():
    """Lines a resident runner printed outside executions (module import, preloading)."""
    from ..domain import deployments
    from ..domain.times import parse_iso
    from ..errors import BadRequest

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "DeploymentToken" or not token:
        raise Unauthorized("Resident runners authenticate with 'DeploymentToken <token>'")
    deployment = deployments.by_runner_token(token.strip())
    body = request.get_json(silent=True) or {}
    entries = body.get("logs")
    if not isinstance(entries, list):
        raise BadRequest("'logs' must be a list")
    for entry in entries[:10000]:
        if not isinstance(entry, dict) or not isinstance(entry.get("message"), str):
            raise BadRequest("Each log needs a 'message' string")
        try:
            stamp = parse_iso(entry["timestamp"]) if entry.get("timestamp") else None
        except (TypeError, ValueError) as exc:
            raise BadRequest("Invalid log timestamp") from exc
        deployments.record_log(deployment.id, entry.get("stream", "stdout"), entry["message"],
                               pod_id=entry.get("pod_id") or body.get("pod_id"), timestamp=stamp)
    return ok({"received": len(entries)})
