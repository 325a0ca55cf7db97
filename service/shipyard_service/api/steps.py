"""Steps: created from a local folder archive, built into an environment."""

from __future__ import annotations

from flask import g

from ..domain import steps
from ..domain.times import from_ms
from .common import env_blueprint, flag, forbid_in_execution, json_body, ok, services
from .forms import creation_body
from .signed import artifact_url
from .waiting import wait_step_settled

blp = env_blueprint("steps", __name__, "/steps", "Steps")


@blp.route("", methods=["POST"])
def create_step():
    forbid_in_execution("Creating a step")
    data, archive, from_form = creation_body()
    step = steps.create_step(services(), g.environment, g.principal.user_id, data, archive,
                             from_form)
    return ok({"step_name": step.name, "status": step.status}, 201)


@blp.route("", methods=["GET"])
def list_steps():
    return ok(steps.list_steps(g.environment))


@blp.route("/<step_name>", methods=["GET"])
def get_step(step_name: str):
    step = steps.get_step(g.environment, step_name)
    if flag("wait_for_completion"):
        step = wait_step_settled(step)
    return ok(steps.step_to_dict(step))


@blp.route("/<step_name>", methods=["DELETE"])
def delete_step(step_name: str):
    forbid_in_execution("Deleting a step")
    step = steps.get_step(g.environment, step_name)
    return ok(steps.delete_step(services(), step, flag("force_dependents_deletion")))


@blp.route("/<step_name>/download", methods=["GET"])
def download_step(step_name: str):
    step = steps.get_step(g.environment, step_name)
    return ok({"signed_url": artifact_url(f"steps/{step.id}/code.tgz")})


@blp.route("/<step_name>/logs", methods=["POST"])
def step_logs(step_name: str):
    step = steps.get_step(g.environment, step_name)
    body = json_body(required=False)
    return ok(steps.build_logs(step, from_ms(body.get("from"), "from"),
                               from_ms(body.get("to"), "to"), limit_of(body)))


def limit_of(body: dict):
    from ..errors import BadRequest

    limit = body.get("limit")
    # SQLite and PostgreSQL take 64-bit integers: a larger one ended in a 500.
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or not 0 <= limit < 2 ** 63):
        raise BadRequest("'limit' must be a positive integer (64 bits)", {"field": "limit"})
    return limit


