"""Executions: state, results (long-polled), input/output values, logs."""

from __future__ import annotations

from flask import g, jsonify, request, send_file

from ..domain import executions, lifecycle
from ..domain.times import from_ms
from .common import env_blueprint, flag, forbid_in_execution, json_body, ok, services
from .steps import limit_of

blp = env_blueprint("executions", __name__, "/executions", "Executions")


@blp.route("/<execution_id>", methods=["GET"])
def get_execution(execution_id: str):
    execution = executions.get_execution(g.environment, execution_id)
    return ok(executions.execution_to_dict(execution, flag("include_io_values", True)))


@blp.route("/<execution_id>", methods=["DELETE"])
def delete_execution(execution_id: str):
    forbid_in_execution("Deleting an execution")
    execution = executions.get_execution(g.environment, execution_id)
    return ok(executions.delete_execution(services(), execution))


@blp.route("/<execution_id>/outputs", methods=["GET"])
def outputs(execution_id: str):
    """With wait_for_completion=true: hold, then 307 (ask again) while it still runs."""
    execution = executions.get_execution(g.environment, execution_id)
    if flag("wait_for_completion") and execution.status not in lifecycle.FINAL:
        svc = services()
        execution = executions.wait_finished(svc, execution_id, svc.settings.long_poll_s)
        execution = executions.get_execution(g.environment, execution_id)
        if execution.status not in lifecycle.FINAL:
            response = jsonify({"execution_id": execution_id, "status": execution.status})
            response.status_code = 307
            response.headers["Location"] = request.full_path
            return response
    executions.raise_if_failed(execution)
    return ok({"outputs": executions.outputs_summary(execution)})


def _io_value(execution_id: str, kind: str, name: str):
    execution = executions.get_execution(g.environment, execution_id)
    what, value = executions.io_value(services(), execution, kind, name)
    if what == "file":
        return send_file(value, mimetype="application/octet-stream", as_attachment=False)
    return ok(value) if value is not None else (jsonify(None), 200)


@blp.route("/<execution_id>/outputs/<name>", methods=["GET"])
def output_value(execution_id: str, name: str):
    return _io_value(execution_id, "outputs", name)


@blp.route("/<execution_id>/inputs/<name>", methods=["GET"])
def input_value(execution_id: str, name: str):
    return _io_value(execution_id, "inputs", name)


@blp.route("/<execution_id>/logs", methods=["POST"])
def execution_logs(execution_id: str):
    execution = executions.get_execution(g.environment, execution_id)
    body = json_body(required=False)
    entries = executions.logs(execution, from_ms(body.get("from"), "from"),
                              from_ms(body.get("to"), "to"), limit_of(body),
                              step_name=body.get("step_name"))
    return ok([entries])
