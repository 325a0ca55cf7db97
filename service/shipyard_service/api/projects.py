"""Control API: projects, their settings (step defaults), environments and members.

Shipyard's own routes (the official client has none for projects):

    GET    {server}/api/v1/projects                      the caller's projects
    POST   {server}/api/v1/projects                      {"name", "settings"?}  platform admin
    GET    {server}/api/v1/projects/<name>
    PATCH  {server}/api/v1/projects/<name>               {"settings": {...}}     project admin
    DELETE {server}/api/v1/projects/<name>?confirm=<name>                         project admin
    GET    {server}/api/v1/projects/<name>/environments
    POST   {server}/api/v1/projects/<name>/environments  {"name"}                project admin
    GET    {server}/api/v1/projects/<name>/members
    PUT    {server}/api/v1/projects/<name>/members/<email>  {"role"}              project admin
    DELETE {server}/api/v1/projects/<name>/members/<email>                        project admin

Roles are decided by domain/access.py, before the body is read: a non-member gets 404 (as
for a project that does not exist), a lower role 403. Execution-scoped tokens may read but
get 403 for changes. The deploy key is write-only.
"""

from __future__ import annotations

from flask import g, request

from ..domain import access, auth, projects
from ..domain.access import Role
from ..domain.project_deletion import check_confirmation, delete_project
from ..errors import BadRequest, Forbidden
from .common import bearer_principal, ok, services
from .schemas.projects import (
    DeleteQuery,
    EnvironmentCreate,
    EnvironmentView,
    Member,
    MemberRemoved,
    ProjectCreate,
    ProjectDeleted,
    ProjectUpdate,
    ProjectView,
    RoleBody,
)
from .smorest import BEARER, ApiBlueprint

blp = ApiBlueprint("projects", __name__, url_prefix="/api/v1/projects",
                   description="Projects, their settings, environments and members",
                   security=BEARER, errors=(401, 403, 404))


@blp.before_request
def _resolve() -> None:
    """The one resolver of `<project_name>` on these routes: reads need a viewer, changes
    a project admin; creating a project, a platform admin."""
    principal = bearer_principal()
    changing = request.method not in ("GET", "HEAD", "OPTIONS")
    if changing and principal.in_execution:
        raise Forbidden("Changing projects is not allowed from a running execution")
    g.principal = principal
    project_name = (request.view_args or {}).get("project_name")
    if project_name is not None:
        g.project, g.role = access.project_for(principal, project_name,
                                               Role.ADMIN if changing else Role.VIEWER)
    elif changing:
        access.require_platform_admin(principal, "Creating projects")


def _view(project) -> dict:
    return projects.project_view(project, services().settings.public_url)


@blp.route("", methods=["GET"])
@blp.response(200, ProjectView(many=True))
def list_projects():
    return ok([_view(p) for p in access.visible_projects(g.principal)])


@blp.route("", methods=["POST"])
@blp.arguments(ProjectCreate)
@blp.response(201, ProjectView)
@blp.alt_response(409, response="CONFLICT")
def create_project(body: dict):
    settings = body.get("settings")
    project = projects.create_project(body.get("name"), {} if settings is None else settings)
    return ok(_view(project), 201)


@blp.route("/<project_name>", methods=["GET"])
@blp.response(200, ProjectView)
def get_project(project_name: str):
    return ok(_view(g.project))


@blp.route("/<project_name>", methods=["PATCH"])
@blp.arguments(ProjectUpdate)
@blp.response(200, ProjectView)
def update_project(body: dict, project_name: str):
    if "name" in body and body["name"] != g.project.name:
        raise BadRequest("A project's name cannot be changed", {"field": "name"})
    return ok(_view(projects.update_project_settings(g.project, body["settings"])))


@blp.route("/<project_name>", methods=["DELETE"])
@blp.arguments(DeleteQuery, location="query")
@blp.response(200, ProjectDeleted)
@blp.alt_response(400, response="BAD_REQUEST")
def remove_project(query: dict, project_name: str):
    """Deletes the project with everything in it; `confirm` must repeat the project's name."""
    check_confirmation(g.project, query.get("confirm"))
    return ok(delete_project(services(), g.project))


@blp.route("/<project_name>/environments", methods=["GET"])
@blp.response(200, EnvironmentView(many=True))
def list_environments(project_name: str):
    return ok(_view(g.project)["environments"])


@blp.route("/<project_name>/environments", methods=["POST"])
@blp.arguments(EnvironmentCreate)
@blp.response(201, EnvironmentView)
@blp.alt_response(409, response="CONFLICT")
def create_environment(body: dict, project_name: str):
    environment = projects.create_environment(g.project, body.get("name"))
    return ok(projects.environment_view(environment, services().settings.public_url), 201)


@blp.route("/<project_name>/members", methods=["GET"])
@blp.response(200, Member(many=True))
def list_members(project_name: str):
    return ok(access.members(g.project))


@blp.route("/<project_name>/members/<email>", methods=["PUT"])
@blp.arguments(RoleBody)
@blp.response(200, Member)
@blp.alt_response(409, response="CONFLICT")
def set_member_role(body: dict, project_name: str, email: str):
    """Adds the user with this role, or changes its role."""
    role = access.parse_role(body["role"])
    return ok(access.set_role(g.project, auth.find_user(email), role))


@blp.route("/<project_name>/members/<email>", methods=["DELETE"])
@blp.response(200, MemberRemoved)
@blp.alt_response(409, response="CONFLICT")
def remove_member(project_name: str, email: str):
    return ok(access.remove_member(g.project, auth.find_user(email)))
