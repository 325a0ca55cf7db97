"""What every handler shares: services lookup, authentication, request decoding."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, g, jsonify, request

from ..domain import access, projects
from ..domain.access import Role
from ..domain.auth import Principal
from ..errors import BadRequest, Forbidden, Unauthorized
from ..services import Services
from .smorest import BEARER, ApiBlueprint

ENV_PREFIX = "/environments/<project_name>/<environment_name>"
API_V1 = ENV_PREFIX + "/api/v1"


def services() -> Services:
    return current_app.extensions["shipyard"]


def bearer_principal() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Missing bearer token")
    return services().tokens.authenticate(token.strip())


def load_environment_names(endpoint: str | None, values: dict | None) -> None:
    if values is None:
        return
    project_name = values.pop("project_name", None)
    environment_name = values.pop("environment_name", None)
    if project_name is not None:
        g.env_names = (project_name, environment_name)


# The role a route needs follows its method (GET reads: viewer; anything else changes:
# editor) except for these, whose method says otherwise because the official client sends
# them so: reads sent as POST (data-store lookups and downloads, log windows), and the
# data-store upload, a GET handing out a URL that writes.
ROLE_BY_ENDPOINT = {
    "datastore.information": Role.VIEWER,
    "datastore.download": Role.VIEWER,
    "deployments.deployment_logs": Role.VIEWER,
    "executions.execution_logs": Role.VIEWER,
    "pipelines.pipeline_logs": Role.VIEWER,
    "steps.step_logs": Role.VIEWER,
    "datastore.upload": Role.EDITOR,
}


def needed_role(method: str, endpoint: str | None) -> Role:
    if endpoint in ROLE_BY_ENDPOINT:
        return ROLE_BY_ENDPOINT[endpoint]
    return Role.VIEWER if method in ("GET", "HEAD", "OPTIONS") else Role.EDITOR


def _authenticate() -> None:
    """The one resolver of `{env}` for bearer routes: who calls, in which environment,
    with which role (domain/access.py decides)."""
    principal = bearer_principal()
    if principal.in_execution:
        # An execution token acts inside the environment it runs in, whoever started it
        # (a deployment keeps working when its author leaves the project).
        environment = projects.get_environment(*g.env_names)
        if principal.environment_id != environment.id:
            raise Forbidden("An execution token is only valid in its own environment")
        role = Role.EDITOR
    else:
        environment, role = access.environment_for(
            principal, *g.env_names, needed_role(request.method, request.endpoint))
    g.principal = principal
    g.environment = environment
    g.role = role


def may_see_secrets() -> bool:
    """Environment-variable values and endpoint tokens: editors and admins only."""
    return g.role >= Role.EDITOR


def env_blueprint(name: str, import_name: str, path: str, description: str,
                  authenticated: bool = True) -> ApiBlueprint:
    """A blueprint under {env}/api/v1{path}; its handlers see g.environment, g.principal.
    Unauthenticated blueprints (runner callbacks) document their own schemes per route."""
    blp = ApiBlueprint(name, import_name, url_prefix=API_V1 + path, description=description,
                       security=BEARER if authenticated else None,
                       errors=(401, 403, 404) if authenticated else (404,))
    blp.url_value_preprocessor(load_environment_names)
    if authenticated:
        blp.before_request(_authenticate)
    return blp


def forbid_in_execution(what: str) -> None:
    if g.principal.in_execution:
        raise Forbidden(f"{what} is not allowed from a running execution")


def ok(payload: Any = None, status: int = 200):
    return jsonify(payload if payload is not None else {}), status


_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def part_name(name: str | None) -> str:
    """A form part's name: werkzeug gives None for a part without one it can read."""
    if not isinstance(name, str):
        raise BadRequest("A part of the form has no name, or one that cannot be read")
    return name


def unflatten(fields: dict[str, str]) -> dict:
    """Decode bracketed form fields (`a[b][0]=x`) into nested dicts and lists (contract §3.2)."""
    root: dict = {}
    for key, value in fields.items():
        head, _, rest = part_name(key).partition("[")
        parts = [head] + (_SEGMENT.findall("[" + rest) if rest else [])
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    keys = list(converted)
    # ASCII digits only: "¹".isdigit() is true, and int("¹") fails.
    if keys and all(k.isascii() and k.isdigit() for k in keys) and sorted(int(k) for k in keys) == list(
        range(len(keys))
    ):
        return [converted[str(i)] for i in range(len(keys))]
    return converted
