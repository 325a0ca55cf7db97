"""Token rules (domain/auth.py) in-process: refresh tokens, access tokens, revocation."""

from __future__ import annotations

import time

import jwt
import pytest

from .conftest import Client, assert_error

STEPS = "/environments/default/dev/api/v1/steps"


def test_refresh_gives_a_jwt_that_opens_the_api(app, admin):
    claims = jwt.decode(admin.token, options={"verify_signature": False})
    assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == app.config["SHIPYARD_SETTINGS"].access_token_lifetime_s
    assert admin.open("GET", STEPS).status_code == 200
    me = admin.open("GET", "/api/v1/users/me").get_json()
    assert me["email"] == admin.credentials["admin_email"]


@pytest.mark.parametrize("body, status", [
    ({"refresh_token": "sdk_nope"}, 401),
    ({"refresh_token": ""}, 401),
    ({"refresh_token": 5}, 400),
    ([1], 400),
    ("not json", 400),
])
def test_bad_refresh_requests(app, body, status):
    http = app.test_client()
    if isinstance(body, str):
        r = http.post("/api/v1/auth/refresh", data=body, content_type="application/json")
    else:
        r = http.post("/api/v1/auth/refresh", json=body)
    assert_error(r, status)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer garbage", "Bearer a.b.c",
                                    "Basic YWRtaW46YWRtaW4="])
def test_missing_or_malformed_bearer_is_401(app, header):
    headers = {"Authorization": header} if header else {}
    for method, path in (("GET", STEPS), ("GET", "/api/v1/projects"),
                         ("POST", "/api/v1/projects")):
        r = app.test_client().open(path, method=method, headers=headers, json={"name": "x"})
        assert_error(r, 401, "Unauthorized")


def test_forged_and_expired_tokens_are_401(app, admin):
    claims = jwt.decode(admin.token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "exp": int(time.time()) + 3600}, "not-the-key",
                        algorithm="HS256")
    body = assert_error(admin.as_user(forged).open("GET", STEPS), 401)
    assert body["message"] == "Invalid access token"
    secret = app.config["SECRET_KEY"]  # the app's own key: only the expiry is wrong
    expired = jwt.encode({**claims, "iat": 1, "exp": 2}, secret, algorithm="HS256")
    body = assert_error(admin.as_user(expired).open("GET", STEPS), 401)
    assert body["message"] == "Access token expired"
    stale = jwt.encode({**claims, "gen": claims["gen"] + 1}, secret, algorithm="HS256")
    assert assert_error(admin.as_user(stale).open("GET", STEPS), 401)["message"] == \
        "Access token revoked"


def test_a_disabled_user_loses_refresh_and_access(app, admin):
    r = admin.open("POST", "/api/v1/users", json={"name": "Temp", "email": "temp@example.com"})
    assert r.status_code == 201, r.get_data(as_text=True)
    user = r.get_json()
    assert user["is_platform_admin"] is False and user["sdk_token"]
    access = app.test_client().post("/api/v1/auth/refresh",
                                    json={"refresh_token": user["sdk_token"]}).get_json()
    temp = Client(app, access["access_token"])
    assert temp.open("GET", "/api/v1/users/me").status_code == 200
    r = admin.open("PATCH", f"/api/v1/users/{user['id']}", json={"disabled": True})
    assert r.status_code == 200 and r.get_json()["disabled"] is True
    assert_error(temp.open("GET", "/api/v1/users/me"), 401, "Unauthorized")
    r = app.test_client().post("/api/v1/auth/refresh", json={"refresh_token": user["sdk_token"]})
    assert_error(r, 401, "Unauthorized")
    assert_error(admin.open("PATCH", f"/api/v1/users/{user['id']}", json={"disabled": "yes"}),
                 400, "BadRequest")
    assert_error(admin.open("PATCH", "/api/v1/users/nobody", json={"disabled": True}), 404)


def test_user_creation_rules(admin):
    assert_error(admin.open("POST", "/api/v1/users",
                            json={"name": "Short", "email": "short@example.com",
                                  "password": "1234567"}), 400, "BadRequest")
    assert_error(admin.open("POST", "/api/v1/users", json={"name": "No email"}), 400)
    r = admin.open("POST", "/api/v1/users", json={"name": "Twice", "email": "twice@example.com"})
    assert r.status_code == 201
    assert_error(admin.open("POST", "/api/v1/users",
                            json={"name": "Twice", "email": "twice@example.com"}), 409)
