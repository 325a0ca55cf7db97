"""Pipelines (one step today), their runs and their executions."""

from __future__ import annotations

import json

from flask import g, request

from ..domain import executions, pipelines
from ..domain.executions import UploadedFile
from ..domain.times import from_ms
from ..errors import BadRequest
from ..request_limits import streamed_upload
from .common import env_blueprint, flag, forbid_in_execution, json_body, ok, services
from .forms import creation_body
from .signed import artifact_url
from .steps import limit_of
from .waiting import wait_step_settled

blp = env_blueprint("pipelines", __name__, "/pipelines", "Pipelines and their runs")


@blp.route("", methods=["POST"])
def create_pipeline():
    forbid_in_execution("Creating a pipeline")
    data, archive, from_form = creation_body()
    svc = services()
    if not from_form and "step_names" in data:
        pipeline = pipelines.create_from_step(g.environment, g.principal.user_id, data)
    else:
        pipeline = pipelines.create_from_function(svc, g.environment, g.principal.user_id, data,
                                                  archive)
    return ok(pipelines.pipeline_to_dict(pipeline), 201)


@blp.route("", methods=["GET"])
def list_pipelines():
    return ok(pipelines.list_pipelines(g.environment))


@blp.route("/<pipeline_name>", methods=["GET"])
def get_pipeline(pipeline_name: str):
    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    if flag("wait_for_completion"):
        wait_step_settled(pipeline.step)
        pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    return ok(pipelines.pipeline_to_dict(pipeline))


@blp.route("/<pipeline_name>", methods=["DELETE"])
def delete_pipeline(pipeline_name: str):
    forbid_in_execution("Deleting a pipeline")
    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    return ok(pipelines.delete_pipeline(services(), pipeline, flag("force_deployments_deletion")))


@blp.route("/<pipeline_name>/download", methods=["GET"])
def download_pipeline(pipeline_name: str):
    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    return ok({"signed_url": artifact_url(f"steps/{pipeline.step_id}/code.tgz")})


@blp.route("/<pipeline_name>/logs", methods=["POST"])
def pipeline_logs(pipeline_name: str):
    from ..domain import steps

    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    body = json_body(required=False)
    return ok(steps.build_logs(pipeline.step, from_ms(body.get("from"), "from"),
                               from_ms(body.get("to"), "to"), limit_of(body)))


@blp.route("/<pipeline_name>/executions", methods=["GET"])
def list_executions(pipeline_name: str):
    pipelines.get_pipeline(g.environment, pipeline_name)
    return ok(executions.list_for_pipeline(g.environment, pipeline_name))


@blp.route("/<pipeline_name>/executions/latest", methods=["GET"])
def latest_execution(pipeline_name: str):
    pipelines.get_pipeline(g.environment, pipeline_name)
    latest = executions.latest_for_pipeline(g.environment, pipeline_name)
    return ok(latest if latest is not None else {})


def _json_field(name: str, default):
    raw = request.form.get(name)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"'{name}' must be JSON text", {"field": name}) from exc


@blp.route("/<pipeline_name>/run", methods=["POST"])
@streamed_upload
def run_pipeline(pipeline_name: str):
    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    if request.is_json:
        body = json_body()
        json_inputs = body.get("json_inputs", body.get("inputs", {}))
        inputs_mapping, outputs_mapping = body.get("inputs_mapping"), body.get("outputs_mapping")
    else:
        json_inputs = _json_field("json_inputs", {})
        inputs_mapping = _json_field("inputs_mapping", None)
        outputs_mapping = _json_field("outputs_mapping", None)
    files = {name: UploadedFile(f.stream, f.filename) for name, f in request.files.items()}
    execution = executions.run_pipeline(services(), g.environment, g.principal.user_id, pipeline,
                                        json_inputs, files, inputs_mapping, outputs_mapping)
    return ok({"execution_id": execution.execution_id}, 200)
