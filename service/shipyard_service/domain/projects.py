"""Projects, their step defaults (settings), and their environments.

A project's name is immutable (lowercase, digits and '-'). Its settings are the defaults a
step's container_config falls back to, key by key; editing them affects steps created
afterwards only, because a step stores the configuration it was resolved with.
The deploy key is kept sealed (see crypto.py) and never leaves this module in a view."""

from __future__ import annotations

import re

import peewee

from .. import crypto
from ..errors import BadRequest, Conflict, NotFound
from ..store.db import database, utcnow
from ..store.models import Deployment, Environment, EnvironmentVariable, Project
from .names import check_resource_name
from .repositories import (
    check_deploy_key,
    check_packages,
    check_ref_name,
    check_relative_path,
    check_repository_url,
)
from .times import iso

DEFAULT_PYTHON = "python:3.11-slim"
LANGUAGE = re.compile(r"^python(-cuda)?:3\.\d{1,2}(-slim|-[\d.]+)?$")

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
SECRET_KEY = "repository_deploy_key"


def check_language(value: object, field: str = "language") -> str:
    if not isinstance(value, str) or not LANGUAGE.fullmatch(value):
        raise BadRequest(
            f"Invalid language {value!r}: use 'python:3.X-slim' or 'python-cuda:3.X-Y.Z'",
            {"field": field},
        )
    return value


def create_project(name: str, settings: dict | None = None) -> Project:
    check_resource_name(name, "project name")
    cleaned = clean_settings(settings or {})
    if Project.select().where(Project.name == name).exists():
        raise Conflict(f"Project '{name}' already exists", {"project_name": name})
    merged = dict(DEFAULT_SETTINGS)
    merged.update(cleaned)
    return Project.create(name=name, settings=merged)


def update_project_settings(project: Project, changes: dict) -> Project:
    """Edit step defaults; the name is immutable. Applies to steps created afterwards."""
    if not isinstance(changes, dict):
        raise BadRequest("The settings must be an object", {"field": "settings"})
    if "name" in changes and changes["name"] != project.name:
        raise BadRequest("A project's name cannot be changed", {"field": "name"})
    changes = {k: v for k, v in changes.items() if k != "name"}
    merged = dict(project.settings)
    merged.update(clean_settings(changes))
    project.settings = merged
    project.updated_at = utcnow()
    project.save()
    return project


def clean_settings(settings: dict) -> dict:
    """Checked settings, the deploy key sealed. null (or "") resets a key, except the
    mandatory `language` and `included_folders`."""
    if not isinstance(settings, dict):
        raise BadRequest("The settings must be an object", {"field": "settings"})
    unknown = set(settings) - set(SETTING_KEYS)
    if unknown:
        raise BadRequest(f"Unknown project settings: {sorted(unknown)}", {"fields": sorted(unknown)})
    cleaned: dict = {}
    for key, value in settings.items():
        if value == "":  # as in a step's container_config: an empty value is null
            value = None
        if value is None:
            if key in ("language", "included_folders"):
                raise BadRequest(f"'{key}' is mandatory", {"field": key})
            cleaned[key] = [] if key == "system_dependencies" else None
            continue
        if key == "language":
            cleaned[key] = check_language(value)
        elif key == "repository_url":
            cleaned[key] = check_repository_url(value)
        elif key == "repository_branch":
            cleaned[key] = check_ref_name(value)
        elif key == SECRET_KEY:
            cleaned[key] = crypto.seal(check_deploy_key(value))
        elif key == "included_folders":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise BadRequest("'included_folders' must be a non-empty list of paths ('/' = all)",
                                 {"field": key})
            cleaned[key] = [check_relative_path(v, key) for v in value]
        elif key == "system_dependencies":
            cleaned[key] = check_packages(value)
        else:  # requirements_path, dockerfile_path
            cleaned[key] = check_relative_path(value, key)
    return cleaned


def step_defaults(project: Project) -> dict:
    """The settings a step falls back to, with the deploy key opened (server-side use only)."""
    settings = dict(DEFAULT_SETTINGS)
    settings.update(project.settings)
    if settings.get(SECRET_KEY):
        settings[SECRET_KEY] = crypto.open_sealed(settings[SECRET_KEY])
    return settings


def get_project(name: str) -> Project:
    project = Project.get_or_none(Project.name == name)
    if project is None:
        raise NotFound(f"Project '{name}' not found", {"project_name": name})
    return project


def list_projects() -> list[Project]:
    return list(Project.select().order_by(Project.name))


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


def public_settings(project: Project) -> dict:
    """Settings as shown to users: the deploy key is replaced by whether one is set."""
    settings = dict(DEFAULT_SETTINGS)
    settings.update(project.settings)
    has_key = bool(settings.pop(SECRET_KEY, None))
    settings["has_repository_deploy_key"] = has_key
    return settings


def project_information(project: Project) -> dict:
    """Step defaults as the client reads them (`included_folders`, `requirements_path`...)."""
    info = public_settings(project)
    info["project_name"] = project.name
    info["created_at"] = iso(project.created_at)
    info["updated_at"] = iso(project.updated_at)
    return info


def environment_view(environment: Environment, server_url: str) -> dict:
    return {
        "name": environment.name,
        "environment_url": server_url + environment_path(environment),
        "created_at": iso(environment.created_at),
    }


def project_view(project: Project, server_url: str) -> dict:
    environments = Environment.select().where(Environment.project == project).order_by(
        Environment.name
    )
    return {
        "name": project.name,
        "settings": public_settings(project),
        "environments": [environment_view(e, server_url) for e in environments],
        "created_at": iso(project.created_at),
        "updated_at": iso(project.updated_at),
    }


def seal_stored_secrets() -> int:
    """Seal secrets stored in clear by versions before encryption at rest (run at start)."""
    legacy_projects = [p for p in Project.select()
                       if p.settings.get(SECRET_KEY) and not crypto.is_sealed(p.settings[SECRET_KEY])]
    legacy_values = [r for r in EnvironmentVariable.select() if not crypto.is_sealed(r.value)]
    legacy_tokens = [d for d in Deployment.select(Deployment.id, Deployment.endpoint_token)
                     .where(Deployment.endpoint_token.is_null(False))
                     if not crypto.is_sealed(d.endpoint_token)]
    if not legacy_projects and not legacy_values and not legacy_tokens:
        return 0
    sqlite = isinstance(database.obj, peewee.SqliteDatabase)
    if sqlite:
        # Overwrite the clear text in the pages instead of leaving it in free space.
        database.execute_sql("PRAGMA secure_delete = ON")
    try:
        with database.atomic():
            count = _seal(legacy_projects, legacy_values, legacy_tokens)
    finally:
        if sqlite:
            database.execute_sql("PRAGMA secure_delete = OFF")
            # Drop the WAL frames that still hold the old pages.
            database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return count


def _seal(legacy_projects: list[Project], legacy_values: list[EnvironmentVariable],
          legacy_tokens: list[Deployment]) -> int:
    count = 0
    for deployment in legacy_tokens:  # endpoint tokens, in clear before issue 13
        Deployment.update(endpoint_token=crypto.seal(deployment.endpoint_token)).where(
            Deployment.id == deployment.id).execute()
        count += 1
    for project in legacy_projects:
        project.settings = {**project.settings, SECRET_KEY: crypto.seal(project.settings[SECRET_KEY])}
        project.save()
        count += 1
    for row in legacy_values:
        EnvironmentVariable.update(value=crypto.seal(row.value)).where(
            EnvironmentVariable.id == row.id
        ).execute()
        count += 1
    return count
