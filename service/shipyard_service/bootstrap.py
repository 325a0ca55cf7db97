"""First start: an admin user, project `default`, environment `dev`, and credentials.json."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from .config import Settings
from .domain import auth, projects
from .store import database
from .store.models import Environment, Project, User

ADMIN_EMAIL = "admin@shipyard.local"


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / "credentials.json"


def write_credentials(settings: Settings, values: dict) -> None:
    path = credentials_path(settings)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f, indent=2)
    os.replace(tmp, path)


def read_credentials(settings: Settings) -> dict:
    path = credentials_path(settings)
    return json.loads(path.read_text()) if path.exists() else {}


def ensure_defaults(settings: Settings) -> dict:
    """Idempotent: later starts reuse what the first one made, refreshing the URLs."""
    with database.connection_context():
        with database.atomic():
            creds = read_credentials(settings)
            admin = User.get_or_none(User.email == creds.get("admin_email", ADMIN_EMAIL))
            if admin is None:
                password = secrets.token_urlsafe(12)
                admin, token = auth.create_user("Admin", ADMIN_EMAIL, password, is_admin=True)
                creds.update(sdk_token=token, admin_email=admin.email, admin_password=password,
                             password_shown=False)
            project = Project.get_or_none(Project.name == "default") or projects.create_project("default")
            if not Environment.select().where(Environment.project == project).exists():
                projects.create_environment(project, "dev")
    env_url = f"{settings.public_url}/environments/default/dev"
    creds.update(
        environment_url=creds.get("environment_url") if _same_base(creds, settings) else env_url,
        control_url=settings.public_url,
        ui_url=f"{settings.public_url}/ui/",
    )
    creds.setdefault("environment_url", env_url)
    write_credentials(settings, creds)
    return creds


def _same_base(creds: dict, settings: Settings) -> bool:
    return str(creds.get("environment_url", "")).startswith(settings.public_url + "/")
