"""In-process apps: `create_app` on a tmp data folder, driven through `app.test_client()`.

Each app owns its store and key (service/shipyard_service/appstate.py), so many live side by
side in the test process; none starts runners, schedules or samplers (no
`start_background_work`), and each is closed (`close_app`) at the end of its scope."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from shipyard_service.app import close_app, create_app
from shipyard_service.config import Settings


class Client:
    """The test client with a signed-in user's bearer token, and the URL prefixes."""

    def __init__(self, app: Flask, token: str | None = None) -> None:
        self.app = app
        self.http: FlaskClient = app.test_client()
        self.token = token
        self.env = "/environments/default/dev/api/v1"

    @property
    def credentials(self) -> dict:
        return credentials(self.app)

    def as_user(self, token: str | None) -> Client:
        return Client(self.app, token)

    def open(self, method: str, path: str, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.http.open(path, method=method, headers=headers, **kwargs)

    def env_call(self, method: str, path: str, project: str = "default",
                 environment: str = "dev", **kwargs):
        """A call to the environment API: /environments/{project}/{env}/api/v1{path}."""
        prefix = f"/environments/{project}/{environment}/api/v1"
        return self.open(method, prefix + path, **kwargs)


def credentials(app: Flask) -> dict:
    settings: Settings = app.config["SHIPYARD_SETTINGS"]
    return json.loads((settings.data_dir / "credentials.json").read_text())


def access_token(app: Flask, sdk_token: str) -> str:
    r = app.test_client().post("/api/v1/auth/refresh", json={"refresh_token": sdk_token})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["access_token"]


def assert_error(response, status: int, name: str | None = None) -> dict:
    """The documented error shape, with the expected status (and name)."""
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert set(body) >= {"message", "name", "request_id", "additional_data"}, body
    assert isinstance(body["message"], str) and body["message"]
    if name is not None:
        assert body["name"] == name, body
    return body


@pytest.fixture(scope="module")
def make_app(tmp_path_factory) -> Iterator[Callable[..., Flask]]:
    """Apps on fresh data folders; Settings fields as keyword arguments."""
    apps: list[Flask] = []

    def make(**overrides) -> Flask:
        data_dir: Path = tmp_path_factory.mktemp("app")
        app = create_app(Settings(data_dir=data_dir, port=8000, **overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_app(app)


@pytest.fixture(scope="session")
def app(tmp_path_factory) -> Iterator[Flask]:
    """One app for the rule tests (each module uses names of its own): an app costs about
    0.5 s to build (the first start's admin password hash, the routes' compilation)."""
    shared = create_app(Settings(data_dir=tmp_path_factory.mktemp("app"), port=8000))
    yield shared
    close_app(shared)


@pytest.fixture(scope="session")
def admin(app) -> Client:
    """The platform admin of `app` (the first start's user), signed in."""
    return Client(app, access_token(app, credentials(app)["sdk_token"]))


def ui_session(app: Flask) -> FlaskClient:
    """A test client logged in to the web UI as the platform admin."""
    import re

    http = app.test_client()
    page = http.get("/ui/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    creds = credentials(app)
    http.post("/ui/login", data={"csrf_token": csrf, "email": creds["admin_email"],
                                 "password": creds["admin_password"], "next": ""})
    return http


def add_step(app: Flask, name: str, inputs: list[dict], outputs: list[dict],
             project: str = "default", environment: str = "dev") -> None:
    """A built step in the app's store (its declarations checked as the API checks them),
    without building an environment: the rules under test are the graph's and the
    deployments', which read only the declarations."""
    from shipyard_service.domain.io_types import parse_declarations
    from shipyard_service.domain.projects import get_environment
    from shipyard_service.store.models import Step

    with app.app_context():
        Step.create(environment=get_environment(project, environment), name=name,
                    function_path="steps.py", function_name=name.replace("-", "_"),
                    inputs=parse_declarations(inputs, "inputs", False),
                    outputs=parse_declarations(outputs, "outputs", False), status="ready")
