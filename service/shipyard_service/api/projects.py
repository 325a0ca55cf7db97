"""Control API: projects, their settings (step defaults) and their environments.

Shipyard's own routes (the official client has none for projects):

    GET    {server}/api/v1/projects
    POST   {server}/api/v1/projects                      {"name", "settings"?}
    GET    {server}/api/v1/projects/<name>
    PATCH  {server}/api/v1/projects/<name>               {"settings": {...}}
    GET    {server}/api/v1/projects/<name>/environments
    POST   {server}/api/v1/projects/<name>/environments  {"name"}

Any user may read and change projects (the documentation's "no access rights at first");
execution-scoped tokens may read but get 403 for changes. The deploy key is write-only.
"""

from __future__ import annotations

from flask_smorest import Blueprint

from ..domain import projects
from ..domain.auth import Principal
from ..errors import BadRequest, Forbidden
from .common import bearer_principal, json_body, ok, services

blp = Blueprint("projects", __name__, url_prefix="/api/v1/projects",
                description="Projects, their settings and environments")


def _caller(changing: bool) -> Principal:
    principal = bearer_principal()
    if changing and principal.in_execution:
        raise Forbidden("Changing projects is not allowed from a running execution")
    return principal


def _view(project) -> dict:
    return projects.project_view(project, services().settings.public_url)


def _only(body: dict, allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"Unknown fields: {sorted(unknown)}", {"fields": sorted(unknown)})


@blp.route("", methods=["GET"])
def list_projects():
    _caller(changing=False)
    return ok([_view(p) for p in projects.list_projects()])


@blp.route("", methods=["POST"])
def create_project():
    _caller(changing=True)
    body = json_body()
    _only(body, {"name", "settings"})
    settings = body.get("settings")
    project = projects.create_project(body.get("name"), {} if settings is None else settings)
    return ok(_view(project), 201)


@blp.route("/<project_name>", methods=["GET"])
def get_project(project_name: str):
    _caller(changing=False)
    return ok(_view(projects.get_project(project_name)))


@blp.route("/<project_name>", methods=["PATCH"])
def update_project(project_name: str):
    _caller(changing=True)
    body = json_body()
    _only(body, {"name", "settings"})
    project = projects.get_project(project_name)
    if "name" in body and body["name"] != project.name:
        raise BadRequest("A project's name cannot be changed", {"field": "name"})
    if "settings" not in body:
        raise BadRequest("Give the settings to change as {\"settings\": {...}}",
                         {"field": "settings"})
    return ok(_view(projects.update_project_settings(project, body["settings"])))


@blp.route("/<project_name>/environments", methods=["GET"])
def list_environments(project_name: str):
    _caller(changing=False)
    return ok(_view(projects.get_project(project_name))["environments"])


@blp.route("/<project_name>/environments", methods=["POST"])
def create_environment(project_name: str):
    _caller(changing=True)
    body = json_body()
    _only(body, {"name"})
    project = projects.get_project(project_name)
    environment = projects.create_environment(project, body.get("name"))
    return ok(projects.environment_view(environment, services().settings.public_url), 201)
