"""Project information: the step defaults the client needs to build an archive."""

from __future__ import annotations

from flask import g

from ..domain import projects
from .common import env_blueprint, ok

blp = env_blueprint("project_information", __name__, "/project-information", "Project step defaults")


@blp.route("", methods=["GET"])
def project_information():
    return ok(projects.project_information(g.environment.project))
