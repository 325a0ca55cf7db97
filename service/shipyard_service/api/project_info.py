"""Project information: the step defaults the client needs to build an archive."""

from __future__ import annotations

from flask import g

from ..domain import projects
from .common import env_blueprint, ok
from .schemas.projects import ProjectInformation

blp = env_blueprint("project_information", __name__, "/project-information", "Project step defaults")


@blp.route("", methods=["GET"])
@blp.response(200, ProjectInformation)
def project_information():
    return ok(projects.project_information(g.environment.project))
