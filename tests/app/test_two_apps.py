"""Two apps in one process each own their store and key (issue 17, point 5)."""

from __future__ import annotations

import threading

import pytest
from shipyard_service import crypto
from shipyard_service.store import database
from shipyard_service.store.models import EnvironmentVariable, Project

from .conftest import Client, access_token, add_step, assert_error, credentials


@pytest.fixture(scope="module")
def pair(make_app) -> tuple[Client, Client]:
    a, b = make_app(), make_app()
    return (Client(a, access_token(a, credentials(a)["sdk_token"])),
            Client(b, access_token(b, credentials(b)["sdk_token"])))


def test_a_project_made_in_one_app_is_not_in_the_other(pair):
    a, b = pair
    assert a.open("POST", "/api/v1/projects", json={"name": "only-in-a"}).status_code == 201
    assert b.open("POST", "/api/v1/projects", json={"name": "only-in-b"}).status_code == 201
    names_a = {p["name"] for p in a.open("GET", "/api/v1/projects").get_json()}
    names_b = {p["name"] for p in b.open("GET", "/api/v1/projects").get_json()}
    assert "only-in-a" in names_a and "only-in-a" not in names_b
    assert "only-in-b" in names_b and "only-in-b" not in names_a
    assert_error(b.open("GET", "/api/v1/projects/only-in-a"), 404)
    # outside requests too: an app context binds that app's store
    with a.app.app_context():
        assert Project.get_or_none(Project.name == "only-in-a") is not None
        with b.app.app_context():  # nested: the inner app's, then back
            assert Project.get_or_none(Project.name == "only-in-a") is None
        assert Project.get_or_none(Project.name == "only-in-a") is not None


def test_each_app_has_its_own_tokens_and_users(pair):
    a, b = pair
    assert a.credentials["sdk_token"] != b.credentials["sdk_token"]
    r = b.http.post("/api/v1/auth/refresh", json={"refresh_token": a.credentials["sdk_token"]})
    assert_error(r, 401, "Unauthorized")
    # A's access token is signed with A's secret: B refuses it
    assert_error(b.as_user(a.token).open("GET", "/api/v1/users/me"), 401)


def test_a_secret_sealed_by_one_app_is_not_readable_with_the_others_key(pair):
    a, b = pair
    r = a.env_call("PUT", "/environment-variables",
                   json={"environment_variables": {"TOKEN": "s3cret"}})
    assert r.status_code == 200, r.get_data(as_text=True)
    with a.app.app_context():
        stored = EnvironmentVariable.get(EnvironmentVariable.name == "TOKEN").value
        assert crypto.is_sealed(stored) and "s3cret" not in stored
        assert crypto.open_sealed(stored) == "s3cret"
    with b.app.app_context():
        with pytest.raises(crypto.SecretsUnavailable):
            crypto.open_sealed(stored)
        assert EnvironmentVariable.get_or_none(EnvironmentVariable.name == "TOKEN") is None
    assert a.env_call("GET", "/environment-variables").get_json() == [
        {"name": "TOKEN", "value": "s3cret"}]
    assert b.env_call("GET", "/environment-variables").get_json() == []


def test_concurrent_requests_of_two_apps_stay_apart(pair):
    """Requests of both apps at once, on threads: each sees its own store every time."""
    a, b = pair
    seen: dict[str, set] = {"a": set(), "b": set()}
    errors: list[BaseException] = []

    def hammer(name: str, client: Client) -> None:
        try:
            for _ in range(20):
                r = client.open("GET", "/api/v1/projects")
                seen[name] |= {p["name"] for p in r.get_json()}
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n, c)) for n, c in
               (("a", a), ("b", b), ("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert "only-in-a" in seen["a"] and "only-in-a" not in seen["b"]
    assert "only-in-b" in seen["b"] and "only-in-b" not in seen["a"]


def _process_defaults() -> tuple:
    try:
        secret_box = crypto.box()
    except RuntimeError:  # no default key in this process
        secret_box = None
    return database.obj, secret_box


def test_an_app_binds_its_state_only_within_its_contexts(make_app):
    """Making an app leaves the process defaults (what code outside every app context
    reaches) as they were; its contexts bind its own store and key, then unbind them."""
    before = _process_defaults()
    app = make_app()
    assert _process_defaults() == before
    with app.app_context():
        assert database.obj is app.shipyard_state.db
        assert crypto.box() is app.shipyard_state.box
    assert _process_defaults() == before


def test_endpoint_lookups_are_cached_per_app(make_app):
    """Same project, environment and endpoint path in two apps, different tokens: each
    app checks its own token, however recently the other looked its endpoint up."""
    tokens = {}
    apps = {}
    for name in ("a", "b"):
        app = make_app()
        admin = Client(app, access_token(app, credentials(app)["sdk_token"]))
        add_step(app, "twin-step", [], [])
        r = admin.env_call("POST", "/pipelines", json={"pipeline_name": "twin",
                                                       "step_names": ["twin-step"]})
        assert r.status_code == 201, r.get_data(as_text=True)
        tokens[name] = f"twin-token-of-app-{name}-0123456789"
        r = admin.env_call("POST", "/endpoints", json={"pipeline_name": "twin", "name": "twin",
                                                       "endpoint_token": tokens[name]})
        assert r.status_code == 201, r.get_data(as_text=True)
        apps[name] = app
    url = "/environments/default/dev/endpoints/twin"
    for caller, other in (("b", "a"), ("a", "b"), ("b", "a")):
        r = apps[caller].test_client().post(
            url, json={}, headers={"Authorization": f"EndpointToken {tokens[other]}"})
        assert_error(r, 403, "Forbidden")
