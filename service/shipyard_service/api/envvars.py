"""Environment variables of the environment."""

from __future__ import annotations

from flask import g

from ..domain import envvars
from .common import env_blueprint, forbid_in_execution, json_body, ok

blp = env_blueprint("environment_variables", __name__, "/environment-variables",
                    "Environment variables")


@blp.route("", methods=["PUT"])
def upsert():
    forbid_in_execution("Changing environment variables")
    body = json_body()
    return ok(envvars.upsert(g.environment, body.get("environment_variables")))


@blp.route("", methods=["GET"])
def list_variables():
    return ok(envvars.list_variables(g.environment))


@blp.route("/<name>", methods=["DELETE"])
def delete(name: str):
    forbid_in_execution("Deleting environment variables")
    return ok(envvars.delete(g.environment, name))
