"""Steps: created from a local folder archive, built into an environment."""

from __future__ import annotations

from flask import g, request

from ..domain import steps
from ..domain.times import from_ms
from .common import env_blueprint, forbid_in_execution, ok, services
from .schemas import LogsQuery
from .schemas.steps import (
    BuildLogLine,
    SignedUrl,
    StepCreated,
    StepCreation,
    StepDeleted,
    StepDeleteQuery,
    StepSummary,
    StepView,
    WaitQuery,
)
from .signed import artifact_url
from .smorest import form_alternatives
from .waiting import wait_step_settled

blp = env_blueprint("steps", __name__, "/steps", "Steps")

CREATION_FORMS = form_alternatives(
    "Bracketed fields (`inputs[0][name]`, contract §3.2) decoded to the JSON body's object",
    files={"step_file": "The code folder as a gzip tar archive"})


def archive_part() -> bytes | None:
    upload = request.files.get("step_file")
    return upload.read() if upload is not None else None


@blp.route("", methods=["POST"])
@blp.arguments(StepCreation, location="creation")
@blp.response(201, StepCreated)
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.doc(**CREATION_FORMS)
def create_step(data: dict):
    forbid_in_execution("Creating a step")
    step = steps.create_step(services(), g.environment, g.principal.user_id, data, archive_part(),
                             not request.is_json)
    return ok({"step_name": step.name, "status": step.status}, 201)


@blp.route("", methods=["GET"])
@blp.response(200, StepSummary(many=True))
def list_steps():
    return ok(steps.list_steps(g.environment))


@blp.route("/<step_name>", methods=["GET"])
@blp.arguments(WaitQuery, location="query")
@blp.response(200, StepView)
def get_step(args: dict, step_name: str):
    step = steps.get_step(g.environment, step_name)
    if args["wait_for_completion"]:
        step = wait_step_settled(step)
    return ok(steps.step_to_dict(step))


@blp.route("/<step_name>", methods=["DELETE"])
@blp.arguments(StepDeleteQuery, location="query")
@blp.response(200, StepDeleted)
@blp.alt_response(409, response="CONFLICT")
def delete_step(args: dict, step_name: str):
    forbid_in_execution("Deleting a step")
    step = steps.get_step(g.environment, step_name)
    return ok(steps.delete_step(services(), step, args["force_dependents_deletion"]))


@blp.route("/<step_name>/download", methods=["GET"])
@blp.response(200, SignedUrl)
def download_step(step_name: str):
    step = steps.get_step(g.environment, step_name)
    return ok({"signed_url": artifact_url(f"steps/{step.id}/code.tgz")})


@blp.route("/<step_name>/logs", methods=["POST"])
@blp.arguments(LogsQuery, required=False)
@blp.response(200, BuildLogLine(many=True))
def step_logs(window: dict, step_name: str):
    step = steps.get_step(g.environment, step_name)
    return ok(steps.build_logs(step, *log_window(window)))


def log_window(window: dict) -> tuple:
    """(start, end, limit) of a LogsQuery body."""
    return from_ms(window["start"], "from"), from_ms(window["end"], "to"), window["limit"]
