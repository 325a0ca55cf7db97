"""What every project page needs: the project, the chosen environment, the others, and the
logged-in user's role there (domain/access.py decides; this is the UI's one resolver)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request

from ..domain import access, browse
from ..domain.access import Role
from ..domain.auth import Principal, principal_of
from ..store.models import Environment, Project
from .services import services
from .session import current_user


@dataclass
class Place:
    project: Project
    environment: Environment | None
    environments: list[Environment]
    role: Role

    @property
    def env_url(self) -> str | None:
        if self.environment is None:
            return None
        return services().environment_url(self.project.name, self.environment.name)

    @property
    def may_see_secrets(self) -> bool:
        return self.role >= Role.EDITOR

    def template_args(self, nav: str) -> dict:
        return {"project": self.project, "environment": self.environment,
                "environments": self.environments, "env_url": self.env_url, "nav": nav,
                "role": self.role.label, "can_edit": self.role >= Role.EDITOR,
                "can_manage": self.role >= Role.ADMIN}


def caller() -> Principal:
    return principal_of(current_user())


def place(project_name: str, environment_name: str | None = None,
          needed: Role | None = None) -> Place:
    """NotFound (the UI's 404 page) for unknown names and for projects the user is not a
    member of; Forbidden (403) when the role is too low. Pages read (viewer) and forms
    change (editor) unless the view asks for more."""
    if needed is None:
        needed = Role.VIEWER if request.method in ("GET", "HEAD") else Role.EDITOR
    who = caller()
    if environment_name is None:
        project, role = access.project_for(who, project_name, needed)
        environment = None
    else:
        environment, role = access.environment_for(who, project_name, environment_name, needed)
        project = environment.project
    return Place(project=project, environment=environment,
                 environments=browse.list_environments(project), role=role)
