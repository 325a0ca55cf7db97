"""Projects, their settings (the step defaults) and their environments.

Shipyard's own functions (the official client has none): they call the control API
``{control}/api/v1/projects``. ``project_name`` defaults to the project of the SDK's
environment URL (``{server}/environments/<project>/<environment>``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .._logging import logged
from ..constants import CREATION_PARAMETER_VALUE
from .base import SdkBase

_ENVIRONMENT_PATH = re.compile(r"/environments/(?P<project>[^/]+)/(?P<environment>[^/]+)/?$")


def _settings_to_send(settings: dict[str, Any]) -> dict[str, Any]:
    """``STEP_PARAMETER.NULL`` (or None) resets a setting; ``FALLBACK_PROJECT`` leaves it."""
    sent: dict[str, Any] = {}
    for key, value in settings.items():
        if value is CREATION_PARAMETER_VALUE.FALLBACK_PROJECT:
            continue
        sent[key] = None if value is CREATION_PARAMETER_VALUE.NULL else value
    return sent


class ProjectsMixin(SdkBase):
    def _project_name(self, project_name: str | None) -> str:
        if project_name:
            return project_name
        match = _ENVIRONMENT_PATH.search(urlsplit(self.base_environment_url).path)
        if match is None:
            raise ValueError(
                "'project_name' is needed: the environment URL does not name a project"
            )
        return match.group("project")

    def list_projects(self) -> list[dict[str, Any]]:
        """List the projects (``name``, ``settings``, ``environments``, dates)."""
        return self._get(self._ctl("projects"))

    def get_project(self, project_name: str | None = None) -> dict[str, Any]:
        """Get a project: its ``settings`` (step defaults; the deploy key is never returned,
        ``has_repository_deploy_key`` tells whether one is set) and its ``environments``."""
        return self._get(self._ctl(f"projects/{self._project_name(project_name)}"))

    def get_project_settings(self, project_name: str | None = None) -> dict[str, Any]:
        """The step defaults of a project: ``language``, ``repository_url``,
        ``repository_branch``, ``has_repository_deploy_key``, ``included_folders``,
        ``requirements_path``, ``system_dependencies``, ``dockerfile_path``."""
        return self.get_project(project_name)["settings"]

    @logged("Project creation")
    def create_project(self, project_name: str, **settings: Any) -> dict[str, Any]:
        """Create a project (name: lowercase letters, digits and ``-``; it cannot change).

        Keyword arguments are its settings, e.g. ``language="python:3.10-slim"``,
        ``repository_url="git@github.com:me/repo.git"``, ``repository_deploy_key=KEY``,
        ``repository_branch="main"``, ``included_folders=["src"]``,
        ``requirements_path="requirements.txt"``, ``system_dependencies=["ffmpeg"]``.
        """
        return self._post(
            self._ctl("projects"),
            json={"name": project_name, "settings": _settings_to_send(settings)},
        )

    @logged("Project settings update")
    def update_project_settings(
        self, project_name: str | None = None, **settings: Any
    ) -> dict[str, Any]:
        """Change some settings of a project (the others are kept). They apply to steps
        created afterwards. ``STEP_PARAMETER.NULL`` or None resets a setting."""
        return self._patch(
            self._ctl(f"projects/{self._project_name(project_name)}"),
            json={"settings": _settings_to_send(settings)},
        )

    def list_environments(self, project_name: str | None = None) -> list[dict[str, Any]]:
        """The environments of a project (``name``, ``environment_url``, ``created_at``)."""
        return self._get(self._ctl(f"projects/{self._project_name(project_name)}/environments"))

    @logged("Environment creation")
    def create_environment(
        self, environment_name: str, project_name: str | None = None
    ) -> dict[str, Any]:
        """Create an environment in a project; returns its ``environment_url``."""
        return self._post(
            self._ctl(f"projects/{self._project_name(project_name)}/environments"),
            json={"name": environment_name},
        )

    @logged("Project deletion")
    def delete_project(self, project_name: str, confirm: str) -> dict[str, Any]:
        """Delete a project with everything in it (environments, steps, pipelines,
        deployments, executions, data-store files, environment variables). ``confirm`` must
        repeat the project's name. Needs the project's admin role."""
        return self._delete(self._ctl(f"projects/{project_name}"), params={"confirm": confirm})

    def list_project_members(self, project_name: str | None = None) -> list[dict[str, Any]]:
        """The members of a project: ``email``, ``name``, ``role`` (viewer, editor, admin)."""
        return self._get(self._ctl(f"projects/{self._project_name(project_name)}/members"))

    @logged("Project role change")
    def set_project_member_role(
        self, email: str, role: str, project_name: str | None = None
    ) -> dict[str, Any]:
        """Give a user a role in a project (``viewer``, ``editor`` or ``admin``), adding it
        to the members if needed. Needs the project's admin role."""
        return self._put(
            self._ctl(f"projects/{self._project_name(project_name)}/members/{email}"),
            json={"role": role},
        )

    @logged("Project member removal")
    def remove_project_member(self, email: str, project_name: str | None = None) -> dict[str, Any]:
        """Take a user out of a project. Needs the project's admin role."""
        return self._delete(
            self._ctl(f"projects/{self._project_name(project_name)}/members/{email}")
        )
