"""Limits every request meets (request_limits.py) and the rules of environment variables
and retention policies, in-process, on an app with small limits of its own."""

from __future__ import annotations

import pytest

from .conftest import Client, access_token, assert_error, credentials, ui_session

LIMIT = 4096
DEPTH = 8


@pytest.fixture(scope="module")
def small(make_app) -> Client:
    app = make_app(max_request_bytes=LIMIT, max_json_depth=DEPTH)
    return Client(app, access_token(app, credentials(app)["sdk_token"]))


def _nested(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = {"k": value}
    return value


def test_deep_json_is_a_400_even_unauthenticated(admin, small):
    deep = "[" * 100_000 + "]" * 100_000  # past the parser's recursion: still a 400
    body = assert_error(admin.http.post("/api/v1/auth/refresh", data=deep,
                                        content_type="application/json"), 400, "BadRequest")
    assert body["additional_data"] == {"max_depth": 64}
    r = small.http.post("/api/v1/auth/refresh", json={"refresh_token": _nested(DEPTH)})
    body = assert_error(r, 400, "BadRequest")
    assert body["additional_data"] == {"max_depth": DEPTH}
    assert_error(r, 400, "BadRequest")
    r = small.env_call("PUT", "/environment-variables",
                       json={"environment_variables": {"A": _nested(DEPTH)}})
    assert_error(r, 400, "BadRequest")


def test_json_within_the_depth_reaches_the_route(small):
    # DEPTH - 1 levels under the outer object: the route answers in its own words (401)
    r = small.http.post("/api/v1/auth/refresh", json={"refresh_token": _nested(DEPTH - 2)})
    assert_error(r, 400)  # a refresh token must be a string: the schema's 400
    assert "max_depth" not in str(r.get_json()["additional_data"])


def test_bodies_over_the_limit_are_413(small):
    big = "x" * (LIMIT + 1)
    body = assert_error(small.http.post("/api/v1/auth/refresh", data=big,
                                        content_type="application/json"), 413)
    assert body["additional_data"] == {"size": LIMIT + 1, "limit": LIMIT}
    r = small.env_call("PUT", "/environment-variables",
                       json={"environment_variables": {"A": big}})
    assert_error(r, 413)
    r = small.env_call("PUT", "/environment-variables",
                       json={"environment_variables": {"A": "x" * 100}})
    assert r.status_code == 200, r.get_data(as_text=True)


@pytest.mark.parametrize("variables, status, words", [
    ({}, 400, "environment_variables"),
    ({"1BAD": "x"}, 400, "1BAD"),
    ({"HAS SPACE": "x"}, 400, "HAS SPACE"),
    ({"A": ["x"]}, 400, "A"),
    ({"A": {"b": 1}}, 400, "A"),
    ({"A": True}, 400, "A"),
    ({"A\n": "x"}, 400, "A\n"),  # `$` alone let a final newline by
])
def test_bad_environment_variables_are_400s(admin, variables, status, words):
    r = admin.env_call("PUT", "/environment-variables", json={"environment_variables": variables})
    body = assert_error(r, status, "BadRequest")
    assert words in body["message"] + str(body["additional_data"]), body
    assert admin.env_call("GET", "/environment-variables").get_json() == []


def test_names_with_a_final_newline_are_400s(admin):
    """The name rules are whole-text matches: Python's `$` alone also matched before a final
    newline, so "abc\n" was a valid project or environment name."""
    for path in ("/api/v1/projects", "/api/v1/projects/default/environments"):
        body = assert_error(admin.open("POST", path, json={"name": "abc\n"}), 400, "BadRequest")
        assert "abc\n" in body["message"], body
    assert "abc\n" not in [p["name"] for p in admin.open("GET", "/api/v1/projects").get_json()]


def test_environment_variable_values(admin):
    r = admin.env_call("PUT", "/environment-variables",
                       json={"environment_variables": {"NUM": 6, "TEXT": "six"}})
    assert r.status_code == 200 and r.get_json() == [{"name": "NUM"}, {"name": "TEXT"}]
    assert admin.env_call("GET", "/environment-variables").get_json() == [
        {"name": "NUM", "value": "6"}, {"name": "TEXT", "value": "six"}]  # a number as text
    too_long = "x" * 60_001
    assert_error(admin.env_call("PUT", "/environment-variables",
                                json={"environment_variables": {"BIG": too_long}}), 400)
    assert admin.env_call("DELETE", "/environment-variables/TEXT").get_json() == {
        "name": "TEXT", "value": "six"}
    assert_error(admin.env_call("DELETE", "/environment-variables/TEXT"), 404, "NotFound")
    admin.env_call("DELETE", "/environment-variables/NUM")


RETENTION = "/api/v1/projects/default/environments/dev/retention"


@pytest.mark.parametrize("body", [
    {"keep_days": 0}, {"keep_days": -1}, {"keep_days": True}, {"keep_days": "5"},
    {"keep_days": 1.5}, {"keep_days": 10 ** 9}, {"keep_last_per_deployment": 0},
    {"keep_forever": True}, [1],
])
def test_bad_retention_policies_are_400s(admin, body):
    assert_error(admin.open("PUT", RETENTION, json=body), 400, "BadRequest")
    assert admin.open("GET", RETENTION).get_json()["enabled"] is False


def test_retention_policy_is_set_and_turned_off(admin):
    r = admin.open("PUT", RETENTION, json={"keep_days": 30, "keep_last_per_deployment": 5})
    assert r.get_json() == {"keep_days": 30, "keep_last_per_deployment": 5, "enabled": True}
    r = admin.open("PUT", RETENTION, json={"keep_days": None})  # one rule off, one kept
    assert r.get_json() == {"keep_days": None, "keep_last_per_deployment": 5, "enabled": True}
    r = admin.open("PUT", RETENTION, json={"keep_last_per_deployment": None})
    assert r.get_json()["enabled"] is False
    assert_error(admin.open("GET", "/api/v1/projects/default/environments/nope/retention"), 404)


def test_cookie_sessions_belong_to_the_ui_only(admin):
    """The UI signs in with its session cookie; API requests authenticate by token and
    never open a cookie session, even with the UI's cookie sent along."""
    import re

    from flask import session

    app = admin.app
    http = app.test_client()
    page = http.get("/ui/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    creds = credentials(app)
    r = http.post("/ui/login", data={"csrf_token": csrf, "email": creds["admin_email"],
                                     "password": creds["admin_password"], "next": ""})
    assert r.status_code == 302 and "session=" in r.headers["Set-Cookie"]
    assert http.get("/ui/").status_code == 200  # the cookie signs the UI in
    r = http.get("/environments/default/dev/api/v1/pipelines")  # the cookie alone
    assert_error(r, 401)
    assert "Set-Cookie" not in r.headers
    for path, null in (("/environments/default/dev/api/v1/pipelines", True),
                       ("/environments/default/dev/endpoints/x", True), ("/ui/", False)):
        with app.test_request_context(path):
            assert app.session_interface.is_null_session(session) is null, path


def test_ui_page_numbers_past_the_stores_integers_are_a_clear_400(admin):
    """The tracking page's offset, (page - 1) * per_page, once reached the store unbounded:
    a page past 2**63 / per_page was a 500 (OverflowError). It is a 400 now, on both UI
    listings; a page merely past the last one is an empty page (200)."""
    http = ui_session(admin.app)
    env = "/ui/projects/default/environments/dev"
    for view in ("/executions", "/compare"):
        for page_number in ("9223372036854775807", "92233720368547758070", "1000000001"):
            r = http.get(f"{env}{view}?per_page=100&page={page_number}")
            assert r.status_code == 400, (view, page_number, r.status_code)
        for query in ("per_page=100&page=500", "per_page=200&page=1000000000"):
            assert http.get(f"{env}{view}?{query}").status_code == 200, (view, query)


def test_ui_page_cursors_that_are_not_ours_are_a_clear_400(admin):
    """The comparison's Next links carry a keyset cursor (`after`): anything else there is
    a 400, and a well-formed one on an empty store a 200."""
    http = ui_session(admin.app)
    compare = "/ui/projects/default/environments/dev/compare"
    for after in ("x", "[]", '["t"]', '["z","2026-01-01 00:00:00","a"]',
                  '["t","not a date","a"]', '["t","2026-01-01 00:00:00",5]',
                  '["v","2026-01-01 00:00:00","a"]', '["v","2026-01-01 00:00:00","a",[1]]',
                  '["v","2026-01-01 00:00:00","a",null]', '["t","2026-01-01","a",1]',
                  '{"a":1}', "[" * 5000, '["v","2026-01-01 00:00:00","a",1e999]'):
        r = http.get(compare, query_string={"after": after})
        assert r.status_code == 400, (after, r.status_code)
    ok = '["t","2026-01-01 00:00:00","a"]'
    assert http.get(compare, query_string={"after": ok}).status_code == 200
    assert http.get(compare, query_string={"after": '["v","2026-01-01 00:00:00","a",0.5]',
                                           "sort": "m:x"}).status_code == 200
