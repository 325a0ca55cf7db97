"""Environment variables of the environment."""

from __future__ import annotations

from flask import g

from ..domain import envvars
from .common import env_blueprint, forbid_in_execution, may_see_secrets, ok, services
from .schemas import Name
from .schemas.envvars import UpsertBody, Variable

blp = env_blueprint("environment_variables", __name__, "/environment-variables",
                    "Environment variables")


@blp.route("", methods=["PUT"])
@blp.arguments(UpsertBody)
@blp.response(200, Name(many=True), description="The names written")
def upsert(body: dict):
    forbid_in_execution("Changing environment variables")
    return ok(envvars.upsert(services(), g.environment, body["environment_variables"]))


@blp.route("", methods=["GET"])
@blp.response(200, Variable(many=True))
def list_variables():
    """Viewers get the names; the values (null for them) are for editors and admins."""
    return ok(envvars.list_variables(g.environment, with_values=may_see_secrets()))


@blp.route("/<name>", methods=["DELETE"])
@blp.response(200, Variable, description="The deleted variable")
def delete(name: str):
    forbid_in_execution("Deleting environment variables")
    return ok(envvars.delete(services(), g.environment, name))
