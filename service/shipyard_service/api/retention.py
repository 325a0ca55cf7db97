"""Control API: an environment's retention policy (off by default).

    GET  {server}/api/v1/projects/<p>/environments/<e>/retention
    PUT  {server}/api/v1/projects/<p>/environments/<e>/retention
         {"keep_days": int|null, "keep_last_per_deployment": int|null}

Reading needs a viewer of the project, changing it a project admin (domain/access.py), like
the project's other settings. The server's retention sweeper applies it in the background
(domain/retention.py)."""

from __future__ import annotations

from flask import g, request

from ..domain import access, retention
from ..domain.access import Role
from ..errors import Forbidden
from .common import bearer_principal, ok
from .schemas.retention import RetentionIn, RetentionView
from .smorest import BEARER, ApiBlueprint

blp = ApiBlueprint("retention", __name__, url_prefix="/api/v1/projects",
                   description="Retention of executions per environment", security=BEARER,
                   errors=(401, 403, 404))

_PATH = "/<project_name>/environments/<environment_name>/retention"


@blp.before_request
def _resolve() -> None:
    """Roles are checked before the body is read: a non-member gets 404, a lower role 403."""
    principal = bearer_principal()
    changing = request.method not in ("GET", "HEAD", "OPTIONS")
    if changing and principal.in_execution:
        raise Forbidden("Changing a retention policy is not allowed from a running execution")
    args = request.view_args or {}
    if "project_name" in args and "environment_name" in args:
        g.environment, _ = access.environment_for(principal, args["project_name"],
                                                  args["environment_name"],
                                                  Role.ADMIN if changing else Role.VIEWER)


@blp.route(_PATH, methods=["GET"])
@blp.response(200, RetentionView)
def get_retention(project_name: str, environment_name: str):
    return ok(retention.policy_view(g.environment))


@blp.route(_PATH, methods=["PUT"])
@blp.arguments(RetentionIn)
@blp.response(200, RetentionView)
def set_retention(body: dict, project_name: str, environment_name: str):
    return ok(retention.set_policy(g.environment, body))
