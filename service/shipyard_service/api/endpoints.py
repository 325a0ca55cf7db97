"""Public endpoint routes: `{env}/endpoints/{path}`, authenticated by the endpoint token."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, jsonify, request, send_file

from ..domain import deployments, executions, lifecycle, projects
from ..errors import NotFound
from ..request_limits import streamed_upload
from .common import ENV_PREFIX, load_environment_names, ok, services
from .deployments import endpoint_inputs
from .openapi import ErrorSchema
from .schemas.deployments import ENDPOINT_INPUTS, EndpointOutputs
from .schemas.executions import ExecutionCreated, StillRunning
from .smorest import ENDPOINT_TOKEN, ApiBlueprint

blp = ApiBlueprint("endpoints", __name__, url_prefix=ENV_PREFIX + "/endpoints",
                   description="Deployed endpoints (EndpointToken auth)", security=ENDPOINT_TOKEN,
                   errors=(401, 403, 404))
blp.url_value_preprocessor(load_environment_names)

_FAILED = {"schema": ErrorSchema,
           "description": "ExecutionFailed: the user function failed (error body)"}
_FILE = {"schema": {"type": "string", "format": "binary"},
         "content_type": "application/octet-stream",
         "description": "A file output's bytes (Content-Disposition names it)"}

RESULT_HOLD_S = 60.0


def _deployment(url_path: str, token: str | None):
    from flask import g

    svc = services()
    # Environments are never renamed: a short cache spares a query on every call.
    environment = svc.endpoints.environment(g.env_names,
                                            lambda: projects.get_environment(*g.env_names))
    return environment, deployments.endpoint_deployment(svc, environment, url_path, token)


def _header_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme == "EndpointToken" and token.strip() else None


@blp.route("/<url_path>", methods=["POST"])
@streamed_upload
@blp.response(303, ExecutionCreated, description="Started: the results URL is in Location "
              "and the id in Craft-Ai-Execution-Id")
@blp.alt_response(200, schema=EndpointOutputs, success=True,
                  description="Finished within the hold (callers without craft-ai-client)")
@blp.alt_response(200, success=True, **_FILE)
@blp.alt_response(500, **_FAILED)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.doc(**ENDPOINT_INPUTS)
def trigger(url_path: str):
    _, deployment = _deployment(url_path, _header_token())
    given, files = endpoint_inputs()
    svc = services()
    # Plain HTTP callers (curl, requests, axios) get the outputs in the answer, as the
    # documentation shows, when the execution ends within the hold; SDKs, which send
    # `craft-ai-client`, get their answer at once and fetch results themselves.
    hold = 0.0 if request.headers.get("craft-ai-client") else svc.settings.long_poll_s
    execution = deployments.trigger(svc, deployment, given, files, wait_s=hold)
    if hold and execution.status in lifecycle.FINAL:
        response = _finished_body(execution)
        response.headers["Craft-Ai-Execution-Id"] = execution.execution_id
        return response
    # 303 to the results URL: callers that follow redirects (`curl -L`, `requests.post`)
    # end up with the outputs; the official client does not follow it and reads the body
    # and the header instead (contract §6.6.2).
    response = jsonify({"execution_id": execution.execution_id})
    response.status_code = 303
    response.headers["Craft-Ai-Execution-Id"] = execution.execution_id
    response.headers["Location"] = (
        f"{request.base_url}/executions/{execution.execution_id}?"
        + urlencode({"token": deployments.endpoint_token(deployment)}))
    return response


@blp.route("/<url_path>/executions/<execution_id>", methods=["GET"])
@blp.route("/v1/<url_path>/executions/<execution_id>", methods=["GET"])
@blp.response(200, EndpointOutputs)
@blp.alt_response(200, success=True, **_FILE)
@blp.alt_response(307, schema=StillRunning, description="Still running: ask again")
@blp.alt_response(500, **_FAILED)
def results(url_path: str, execution_id: str):
    environment, deployment = _deployment(url_path, request.args.get("token") or _header_token())
    execution = executions.get_execution(environment, execution_id)
    if execution.deployment_name != deployment.name:
        raise NotFound(f"Execution '{execution_id}' not found", {"execution_id": execution_id})
    if execution.status not in lifecycle.FINAL:
        hold = min(RESULT_HOLD_S, services().settings.long_poll_s * 2.4)
        execution = executions.wait_finished(services(), execution_id, hold)
        if execution is None or execution.status not in lifecycle.FINAL:
            response = jsonify({"execution_id": execution_id,
                                "status": lifecycle.ExecutionStatus.RUNNING.value})
            response.status_code = 307
            response.headers["Location"] = request.full_path
            return response
    return _finished_body(execution)


def _finished_body(execution) -> Response:
    executions.raise_if_failed(execution)
    return _result_body(execution)


def _result_body(execution) -> Response:
    outputs = {}
    for item in execution.outputs:
        if item["mapping_type"] != "endpoint":
            continue
        name = item["mapping_value"]["endpoint_output_name"]
        if item["data_type"] == "file":
            path = services().artifacts.execution_file(execution.execution_id, "outputs",
                                                       item["pipeline_output_name"])
            response = send_file(path, mimetype="application/octet-stream")
            # Hand-written on purpose: the client splits on `_<execution_id>_` (contract §6.6.2).
            response.headers["Content-Disposition"] = (
                f"attachment; filename=result_{execution.execution_id}_{name}")
            return response
        outputs[name] = item.get("value")
    return ok({"outputs": outputs, "execution_id": execution.execution_id})[0]
