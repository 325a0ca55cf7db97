"""Executions: state, results (long-polled), input/output values, logs."""

from __future__ import annotations

from flask import g, jsonify, request, send_file

from ..domain import executions
from .common import env_blueprint, forbid_in_execution, ok, services
from .openapi import ErrorSchema
from .schemas.executions import (
    ExecutionCreated,
    ExecutionDeleted,
    ExecutionLogLine,
    ExecutionLogsQuery,
    ExecutionView,
    IoQuery,
    Outputs,
    OutputsQuery,
    RerunBody,
    StillRunning,
)
from .steps import log_window

blp = env_blueprint("executions", __name__, "/executions", "Executions")

_FAILED = {"description": "ExecutionFailed: the user function failed (error body)",
           "schema": ErrorSchema}
_FILE = {"type": "string", "format": "binary"}


@blp.route("/<execution_id>", methods=["GET"])
@blp.arguments(IoQuery, location="query")
@blp.response(200, ExecutionView)
def get_execution(args: dict, execution_id: str):
    execution = executions.get_execution(g.environment, execution_id)
    return ok(executions.execution_to_dict(execution, args["include_io_values"]))


@blp.route("/<execution_id>", methods=["DELETE"])
@blp.response(200, ExecutionDeleted)
def delete_execution(execution_id: str):
    forbid_in_execution("Deleting an execution")
    execution = executions.get_execution(g.environment, execution_id)
    return ok(executions.delete_execution(services(), execution))


@blp.route("/<execution_id>/rerun", methods=["POST"])
@blp.arguments(RerunBody, required=False)
@blp.response(200, ExecutionCreated)
@blp.alt_response(409, response="CONFLICT")
def rerun_execution(body: dict, execution_id: str):
    """A new execution of the same pipeline, inputs and mappings that reuses the results of
    the steps not downstream of `from_step` (domain/reruns.py)."""
    from ..domain import reruns

    origin = executions.get_execution(g.environment, execution_id)
    execution = reruns.rerun(services(), g.environment, g.principal.user_id, origin,
                             body.get("from_step"))
    return ok({"execution_id": execution.execution_id}, 200)


@blp.route("/<execution_id>/outputs", methods=["GET"])
@blp.arguments(OutputsQuery, location="query")
@blp.response(200, Outputs)
@blp.alt_response(307, schema=StillRunning, description="Still running: ask again",
                  headers={"Location": {"schema": {"type": "string"}}})
@blp.alt_response(500, **_FAILED)
def outputs(args: dict, execution_id: str):
    """With wait_for_completion=true: hold, then 307 (ask again) while it still runs."""
    execution = executions.get_execution(g.environment, execution_id)
    if args["wait_for_completion"] and execution.status not in executions.FINAL:
        svc = services()
        execution = executions.wait_finished(svc, execution_id, svc.settings.long_poll_s)
        execution = executions.get_execution(g.environment, execution_id)
        if execution.status not in executions.FINAL:
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


def io_value_doc(func):
    """The value as JSON (null while not produced), or a file's bytes."""
    func = blp.response(200, {}, description="The value as JSON; null while not produced")(func)
    return blp.alt_response(200, schema=_FILE, content_type="application/octet-stream",
                            description="A file's bytes", success=True)(func)


@blp.route("/<execution_id>/outputs/<name>", methods=["GET"])
@io_value_doc
def output_value(execution_id: str, name: str):
    return _io_value(execution_id, "outputs", name)


@blp.route("/<execution_id>/inputs/<name>", methods=["GET"])
@io_value_doc
def input_value(execution_id: str, name: str):
    return _io_value(execution_id, "inputs", name)


@blp.route("/<execution_id>/logs", methods=["POST"])
@blp.arguments(ExecutionLogsQuery, required=False)
@blp.response(200, {"type": "array", "items": {"type": "array", "items": ExecutionLogLine}},
              description="One list of lines per step")
def execution_logs(window: dict, execution_id: str):
    execution = executions.get_execution(g.environment, execution_id)
    return ok([executions.logs(execution, *log_window(window),
                               step_name=window.get("step_name"))])
