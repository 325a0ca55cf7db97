"""Projects, their settings (step defaults) and environments (Shipyard's control API)."""

from __future__ import annotations

from marshmallow import fields

from ...domain.access import ROLE_NAMES
from . import Out, Strict, matching, resource_name


class SettingsIn(Strict):
    """Step defaults; `repository_deploy_key` is write-only."""

    language = fields.String(allow_none=True)
    repository_url = fields.String(allow_none=True)
    repository_branch = fields.String(allow_none=True)
    repository_deploy_key = fields.String(allow_none=True)
    included_folders = fields.List(fields.String(), allow_none=True)
    requirements_path = fields.String(allow_none=True)
    system_dependencies = fields.List(fields.String(), allow_none=True)
    dockerfile_path = fields.String(allow_none=True)


class ProjectCreate(Strict):
    name = resource_name(required=True)
    settings = fields.Nested(SettingsIn, allow_none=True)


class ProjectUpdate(Strict):
    name = fields.String(metadata={"description": "Must equal the current name"})
    settings = fields.Nested(SettingsIn, required=True)


class EnvironmentCreate(Strict):
    name = resource_name(required=True)


class Settings(Out):
    language = fields.String(required=True, allow_none=True)
    repository_url = fields.String(required=True, allow_none=True)
    repository_branch = fields.String(required=True, allow_none=True)
    has_repository_deploy_key = fields.Boolean(required=True)
    included_folders = fields.List(fields.String(), required=True, allow_none=True)
    requirements_path = fields.String(required=True, allow_none=True)
    system_dependencies = fields.List(fields.String(), required=True, allow_none=True)
    dockerfile_path = fields.String(required=True, allow_none=True)


class ProjectInformation(Settings):
    project_name = fields.String(required=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class EnvironmentView(Out):
    name = fields.String(required=True)
    environment_url = fields.String(required=True)
    created_at = fields.String(required=True)


class ProjectView(Out):
    name = fields.String(required=True)
    settings = fields.Nested(Settings, required=True)
    environments = fields.List(fields.Nested(EnvironmentView), required=True)


class DeleteQuery(Strict):
    confirm = fields.String(required=True,
                            metadata={"description": "The project's name, repeated"})


class DeletedCounts(Out):
    deployments = fields.Integer()
    executions = fields.Integer()
    pipelines = fields.Integer()
    steps = fields.Integer()
    environment_variables = fields.Integer()
    environments = fields.Integer()
    data_store_objects = fields.Integer()


class ProjectDeleted(Out):
    name = fields.String(required=True)
    deleted = fields.Nested(DeletedCounts, required=True)


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


class RoleBody(Strict):
    # The domain strips the role and ignores its case (access.parse_role): so does the pattern.
    role = matching(rf"^\s*(?:{'|'.join(_any_case(r) for r in ROLE_NAMES)})\s*$",
                    f"Use one of {', '.join(ROLE_NAMES)}.", required=True,
                    metadata={"description": "viewer, editor or admin"})


class Member(Out):
    user_id = fields.String(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    is_platform_admin = fields.Boolean(required=True)
    disabled = fields.Boolean(required=True)


class MemberRemoved(Out):
    email = fields.String(required=True)
    project_name = fields.String(required=True)
