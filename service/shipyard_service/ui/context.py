"""What every project page needs: the project, the chosen environment, the others."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain import browse, projects
from ..store.models import Environment, Project
from .services import services


@dataclass
class Place:
    project: Project
    environment: Environment | None
    environments: list[Environment]

    @property
    def env_url(self) -> str | None:
        if self.environment is None:
            return None
        return services().environment_url(self.project.name, self.environment.name)

    def template_args(self, nav: str) -> dict:
        return {"project": self.project, "environment": self.environment,
                "environments": self.environments, "env_url": self.env_url, "nav": nav}


def place(project_name: str, environment_name: str | None = None) -> Place:
    """Raises NotFound (rendered as the UI's 404 page) for unknown names."""
    project = projects.get_project(project_name)
    environments = browse.list_environments(project)
    environment = None
    if environment_name is not None:
        environment = projects.get_environment(project_name, environment_name)
    return Place(project=project, environment=environment, environments=environments)
