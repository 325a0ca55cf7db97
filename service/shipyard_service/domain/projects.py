"""Projects, their step defaults, and their environments."""

from __future__ import annotations

from ..errors import BadRequest, Conflict, NotFound
from ..store.db import utcnow
from ..store.models import Environment, Project
from .names import check_resource_name
from .times import iso

DEFAULT_PYTHON = "python:3.11-slim"

# Step defaults a project holds; a step's container_config falls back to them key by key.
DEFAULT_SETTINGS = {
    "language": DEFAULT_PYTHON,
    "repository_url": None,
    "repository_branch": None,
    "repository_deploy_key": None,
    "included_folders": ["/"],
    # None, not "requirements.txt": clients add the default to the archive and fail when
    # the folder has no such file (the official client does too).
    "requirements_path": None,
    "system_dependencies": [],
    "dockerfile_path": None,
}
SETTING_KEYS = tuple(DEFAULT_SETTINGS)


def create_project(name: str, settings: dict | None = None) -> Project:
    check_resource_name(name, "project name")
    if Project.select().where(Project.name == name).exists():
        raise Conflict(f"Project '{name}' already exists", {"project_name": name})
    merged = dict(DEFAULT_SETTINGS)
    merged.update(_clean_settings(settings or {}))
    return Project.create(name=name, settings=merged)


def update_project_settings(project: Project, changes: dict) -> Project:
    """Edit step defaults; the name is immutable. Applies to steps created afterwards."""
    if "name" in changes and changes["name"] != project.name:
        raise BadRequest("A project's name cannot be changed", {"field": "name"})
    changes = {k: v for k, v in changes.items() if k != "name"}
    merged = dict(project.settings)
    merged.update(_clean_settings(changes))
    project.settings = merged
    project.updated_at = utcnow()
    project.save()
    return project


def _clean_settings(settings: dict) -> dict:
    unknown = set(settings) - set(SETTING_KEYS)
    if unknown:
        raise BadRequest(f"Unknown project settings: {sorted(unknown)}", {"fields": sorted(unknown)})
    for key in ("included_folders", "system_dependencies"):
        value = settings.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise BadRequest(f"'{key}' must be a list of strings", {"field": key})
    for key in ("language", "repository_url", "repository_branch", "requirements_path",
                "dockerfile_path", "repository_deploy_key"):
        value = settings.get(key)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"'{key}' must be a string", {"field": key})
    return settings


def get_project(name: str) -> Project:
    project = Project.get_or_none(Project.name == name)
    if project is None:
        raise NotFound(f"Project '{name}' not found", {"project_name": name})
    return project


def create_environment(project: Project, name: str) -> Environment:
    check_resource_name(name, "environment name")
    if Environment.select().where(
        (Environment.project == project) & (Environment.name == name)
    ).exists():
        raise Conflict(f"Environment '{name}' already exists", {"environment_name": name})
    return Environment.create(project=project, name=name)


def get_environment(project_name: str, environment_name: str) -> Environment:
    environment = (
        Environment.select(Environment, Project)
        .join(Project)
        .where((Project.name == project_name) & (Environment.name == environment_name))
        .first()
    )
    if environment is None:
        raise NotFound(
            f"Environment '{project_name}/{environment_name}' not found",
            {"project_name": project_name, "environment_name": environment_name},
        )
    return environment


def environment_path(environment: Environment) -> str:
    return f"/environments/{environment.project.name}/{environment.name}"


def project_information(project: Project) -> dict:
    """Step defaults as the client reads them (`included_folders`, `requirements_path`...)."""
    info = {k: v for k, v in project.settings.items() if k != "repository_deploy_key"}
    info["project_name"] = project.name
    info["created_at"] = iso(project.created_at)
    info["updated_at"] = iso(project.updated_at)
    return info
