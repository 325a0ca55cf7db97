"""Pipelines (one step today), their runs and their executions."""

from __future__ import annotations

from flask import g, request

from ..domain import executions, pipelines
from ..domain.executions import UploadedFile
from ..request_limits import streamed_upload
from .common import env_blueprint, forbid_in_execution, ok, part_name, services
from .schemas import LogsQuery
from .schemas.executions import ExecutionCreated, ExecutionSummary, LatestExecution, RunBody
from .schemas.steps import (
    BuildLogLine,
    PipelineCreation,
    PipelineDeleted,
    PipelineDeleteQuery,
    PipelineSummary,
    PipelineView,
    SignedUrl,
    WaitQuery,
)
from .signed import artifact_url
from .smorest import form_alternatives
from .steps import CREATION_FORMS, archive_part, log_window
from .waiting import wait_step_settled

blp = env_blueprint("pipelines", __name__, "/pipelines", "Pipelines and their runs")


@blp.route("", methods=["POST"])
@blp.arguments(PipelineCreation, location="creation")
@blp.response(201, PipelineView)
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.doc(**CREATION_FORMS)
def create_pipeline(data: dict):
    forbid_in_execution("Creating a pipeline")
    from_form = not request.is_json
    if not from_form and "step_names" in data:
        pipeline = pipelines.create_from_step(g.environment, g.principal.user_id, data)
    else:
        pipeline = pipelines.create_from_function(services(), g.environment, g.principal.user_id,
                                                  data, archive_part())
    return ok(pipelines.pipeline_to_dict(pipeline), 201)


@blp.route("", methods=["GET"])
@blp.response(200, PipelineSummary(many=True))
def list_pipelines():
    return ok(pipelines.list_pipelines(g.environment))


@blp.route("/<pipeline_name>", methods=["GET"])
@blp.arguments(WaitQuery, location="query")
@blp.response(200, PipelineView)
def get_pipeline(args: dict, pipeline_name: str):
    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    if args["wait_for_completion"]:
        wait_step_settled(pipeline.step)
        pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    return ok(pipelines.pipeline_to_dict(pipeline))


@blp.route("/<pipeline_name>", methods=["DELETE"])
@blp.arguments(PipelineDeleteQuery, location="query")
@blp.response(200, PipelineDeleted)
@blp.alt_response(409, response="CONFLICT")
def delete_pipeline(args: dict, pipeline_name: str):
    forbid_in_execution("Deleting a pipeline")
    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    return ok(pipelines.delete_pipeline(services(), pipeline, args["force_deployments_deletion"]))


@blp.route("/<pipeline_name>/download", methods=["GET"])
@blp.response(200, SignedUrl)
def download_pipeline(pipeline_name: str):
    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    return ok({"signed_url": artifact_url(f"steps/{pipeline.step_id}/code.tgz")})


@blp.route("/<pipeline_name>/logs", methods=["POST"])
@blp.arguments(LogsQuery, required=False)
@blp.response(200, BuildLogLine(many=True))
def pipeline_logs(window: dict, pipeline_name: str):
    from ..domain import steps

    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    return ok(steps.build_logs(pipeline.step, *log_window(window)))


@blp.route("/<pipeline_name>/executions", methods=["GET"])
@blp.response(200, ExecutionSummary(many=True))
def list_executions(pipeline_name: str):
    pipelines.get_pipeline(g.environment, pipeline_name)
    return ok(executions.list_for_pipeline(g.environment, pipeline_name))


@blp.route("/<pipeline_name>/executions/latest", methods=["GET"])
@blp.response(200, LatestExecution)
def latest_execution(pipeline_name: str):
    pipelines.get_pipeline(g.environment, pipeline_name)
    latest = executions.latest_for_pipeline(g.environment, pipeline_name)
    return ok(latest if latest is not None else {})


@blp.route("/<pipeline_name>/run", methods=["POST"])
@streamed_upload
@blp.arguments(RunBody, location="run", required=False)
@blp.response(200, ExecutionCreated)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.doc(**form_alternatives("Fields json_inputs, inputs_mapping, outputs_mapping as JSON "
                             "text; each file input as a file part named after the input",
                             any_file=True))
def run_pipeline(body: dict, pipeline_name: str):
    pipeline = pipelines.get_pipeline(g.environment, pipeline_name)
    json_inputs = body.get("json_inputs", body.get("inputs"))
    files = {part_name(name): UploadedFile(f.stream, f.filename)
             for name, f in request.files.items()}
    execution = executions.run_pipeline(services(), g.environment, g.principal.user_id, pipeline,
                                        {} if json_inputs is None else json_inputs, files,
                                        body.get("inputs_mapping"), body.get("outputs_mapping"),
                                        body.get("use_cache", True))
    return ok({"execution_id": execution.execution_id}, 200)
