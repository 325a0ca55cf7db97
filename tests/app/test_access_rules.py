"""Project roles (domain/access.py) in-process: a viewer reads, an editor writes, a project
admin manages; a non-member is told the project does not exist; platform routes need a
platform admin."""

from __future__ import annotations

import pytest

from .conftest import Client, access_token, assert_error

ROLES = {"vera": "viewer", "ed": "editor", "ada": "admin", "nina": None}


@pytest.fixture(scope="module")
def people(app, admin) -> dict[str, Client]:
    """Project `alpha` (environment `dev`) and four users, one per role (nina: none)."""
    assert admin.open("POST", "/api/v1/projects", json={"name": "alpha"}).status_code == 201
    r = admin.open("POST", "/api/v1/projects/alpha/environments", json={"name": "dev"})
    assert r.status_code == 201, r.get_data(as_text=True)
    clients = {}
    for name, role in ROLES.items():
        r = admin.open("POST", "/api/v1/users",
                       json={"name": name.title(), "email": f"{name}@example.com"})
        assert r.status_code == 201, r.get_data(as_text=True)
        clients[name] = Client(app, access_token(app, r.get_json()["sdk_token"]))
        if role:
            r = admin.open("PUT", f"/api/v1/projects/alpha/members/{name}@example.com",
                           json={"role": role})
            assert r.status_code == 200 and r.get_json()["role"] == role
    return clients


def alpha(who: Client, method: str, path: str, **kwargs):
    return who.env_call(method, path, project="alpha", **kwargs)


def test_every_role_reads(people):
    for name in ("vera", "ed", "ada"):
        assert alpha(people[name], "GET", "/steps").status_code == 200, name
        assert alpha(people[name], "GET", "/pipelines").status_code == 200, name


def test_a_viewer_cannot_write(people):
    vera = people["vera"]
    for method, path, body in (("PUT", "/environment-variables",
                                {"environment_variables": {"A": "1"}}),
                               ("DELETE", "/environment-variables/A", None),
                               ("POST", "/pipelines", {"pipeline_name": "p", "step_names": ["s"]}),
                               ("POST", "/endpoints", {"pipeline_name": "p", "name": "e"})):
        body_ = assert_error(alpha(vera, method, path, json=body), 403, "Forbidden")
        assert body_["additional_data"]["needed"] == "editor", (method, path)


def test_a_non_member_is_told_nothing_exists(people):
    nina = people["nina"]
    for method, path in (("GET", "/steps"), ("PUT", "/environment-variables"),
                         ("GET", "/deployments")):
        body = assert_error(alpha(nina, method, path, json={}), 404, "NotFound")
        assert body["message"] == "Environment 'alpha/dev' not found"
    body = assert_error(nina.open("GET", "/api/v1/projects/alpha"), 404, "NotFound")
    assert body["message"] == "Project 'alpha' not found"


def test_variable_values_for_editors_only(people):
    r = alpha(people["ed"], "PUT", "/environment-variables",
              json={"environment_variables": {"API_KEY": "s3cret-value"}})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert alpha(people["ed"], "GET", "/environment-variables").get_json() == [
        {"name": "API_KEY", "value": "s3cret-value"}]
    seen = alpha(people["vera"], "GET", "/environment-variables")
    assert seen.get_json() == [{"name": "API_KEY", "value": None}]
    assert b"s3cret-value" not in seen.data


def test_retention_is_read_by_viewers_and_set_by_admins(people):
    path = "/api/v1/projects/alpha/environments/dev/retention"
    assert people["vera"].open("GET", path).get_json() == {
        "keep_days": None, "keep_last_per_deployment": None, "enabled": False}
    for name in ("vera", "ed"):
        body = assert_error(people[name].open("PUT", path, json={"keep_days": 3}), 403)
        assert body["additional_data"]["needed"] == "admin"
    assert_error(people["nina"].open("GET", path), 404)
    r = people["ada"].open("PUT", path, json={"keep_days": 3})
    assert r.status_code == 200 and r.get_json()["enabled"] is True


def test_project_lists_are_filtered(people, admin):
    def names(who: Client) -> set[str]:
        return {p["name"] for p in who.open("GET", "/api/v1/projects").get_json()}

    assert names(people["ed"]) == {"alpha"}
    assert names(people["nina"]) == set()
    assert {"alpha", "default"} <= names(admin)


def test_platform_routes_need_a_platform_admin(people):
    for who in people.values():
        for method, path, body in (("GET", "/api/v1/users", None),
                                   ("POST", "/api/v1/users", {"name": "X", "email": "x@x.io"}),
                                   ("PATCH", "/api/v1/users/nobody", {"disabled": True}),
                                   ("POST", "/api/v1/projects", {"name": "gamma"})):
            assert_error(who.open(method, path, json=body), 403, "Forbidden")


def test_member_rules(people, admin):
    base = "/api/v1/projects/alpha/members"
    assert_error(admin.open("PUT", base + "/ed@example.com", json={"role": "owner"}), 400)
    assert_error(admin.open("PUT", base + "/ed@example.com", json=["editor"]), 400)
    assert_error(admin.open("PUT", base + "/ghost@example.com", json={"role": "viewer"}), 404)
    assert_error(admin.open("DELETE", base + "/ghost@example.com"), 404)
    # a role change holds at once, with the tokens already given
    retention = "/api/v1/projects/alpha/environments/dev/retention"
    assert admin.open("PUT", base + "/ada@example.com", json={"role": "viewer"}).status_code == 200
    assert_error(people["ada"].open("PUT", retention, json={"keep_days": 4}), 403)
    assert admin.open("PUT", base + "/ada@example.com", json={"role": "admin"}).status_code == 200
    assert people["ada"].open("PUT", retention, json={"keep_days": 4}).status_code == 200
    members = people["vera"].open("GET", base).get_json()
    assert {m["email"]: m["role"] for m in members} == {
        "vera@example.com": "viewer", "ed@example.com": "editor", "ada@example.com": "admin"}
