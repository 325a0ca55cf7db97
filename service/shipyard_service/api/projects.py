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

from ..domain import projects
from ..domain.auth import Principal
from ..errors import BadRequest, Forbidden
from .common import bearer_principal, ok, services
from .schemas.projects import (
    EnvironmentCreate,
    EnvironmentView,
    ProjectCreate,
    ProjectUpdate,
    ProjectView,
)
from .smorest import BEARER, ApiBlueprint

blp = ApiBlueprint("projects", __name__, url_prefix="/api/v1/projects",
                   description="Projects, their settings and environments", security=BEARER,
                   errors=(401, 403))


def _caller(changing: bool) -> Principal:
    principal = bearer_principal()
    if changing and principal.in_execution:
        raise Forbidden("Changing projects is not allowed from a running execution")
    return principal


def _view(project) -> dict:
    return projects.project_view(project, services().settings.public_url)


@blp.route("", methods=["GET"])
@blp.response(200, ProjectView(many=True))
def list_projects():
    _caller(changing=False)
    return ok([_view(p) for p in projects.list_projects()])


@blp.route("", methods=["POST"])
@blp.arguments(ProjectCreate)
@blp.response(201, ProjectView)
@blp.alt_response(409, response="CONFLICT")
def create_project(body: dict):
    _caller(changing=True)
    settings = body.get("settings")
    project = projects.create_project(body.get("name"), {} if settings is None else settings)
    return ok(_view(project), 201)


@blp.route("/<project_name>", methods=["GET"])
@blp.response(200, ProjectView)
@blp.alt_response(404, response="NOT_FOUND")
def get_project(project_name: str):
    _caller(changing=False)
    return ok(_view(projects.get_project(project_name)))


@blp.route("/<project_name>", methods=["PATCH"])
@blp.arguments(ProjectUpdate)
@blp.response(200, ProjectView)
@blp.alt_response(404, response="NOT_FOUND")
def update_project(body: dict, project_name: str):
    _caller(changing=True)
    project = projects.get_project(project_name)
    if "name" in body and body["name"] != project.name:
        raise BadRequest("A project's name cannot be changed", {"field": "name"})
    return ok(_view(projects.update_project_settings(project, body["settings"])))


@blp.route("/<project_name>/environments", methods=["GET"])
@blp.response(200, EnvironmentView(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_environments(project_name: str):
    _caller(changing=False)
    return ok(_view(projects.get_project(project_name))["environments"])


@blp.route("/<project_name>/environments", methods=["POST"])
@blp.arguments(EnvironmentCreate)
@blp.response(201, EnvironmentView)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def create_environment(body: dict, project_name: str):
    _caller(changing=True)
    project = projects.get_project(project_name)
    environment = projects.create_environment(project, body.get("name"))
    return ok(projects.environment_view(environment, services().settings.public_url), 201)
