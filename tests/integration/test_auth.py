"""F1 through HTTP: SDK token -> JWT access tokens, users, revocation."""

from __future__ import annotations

import subprocess
import sys

import jwt
import requests

from ..helpers import ROOT, Api, ServerProcess, assert_error


def test_refresh_gives_a_jwt_with_numeric_exp_and_iat(server):
    r = requests.post(server.url + "/api/v1/auth/refresh",
                      json={"refresh_token": server.credentials["sdk_token"]}, timeout=10)
    assert r.status_code == 200
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] >= 300


def test_bad_tokens_are_401_in_the_error_shape(server, api):
    r = requests.post(server.url + "/api/v1/auth/refresh", json={"refresh_token": "sdk_nope"},
                      timeout=10)
    assert_error(r, 401, "Unauthorized")
    assert_error(requests.post(server.url + "/api/v1/auth/refresh", data="x", timeout=10), 400)
    assert_error(requests.post(server.url + "/api/v1/auth/refresh", json=[1], timeout=10), 400)
    url = api.env_url + "/api/v1/steps"
    assert_error(requests.get(url, timeout=10), 401)
    assert_error(requests.get(url, headers={"Authorization": "Bearer abc.def.ghi"}, timeout=10), 401)
    forged = jwt.encode({"sub": "x", "exp": 9999999999, "iat": 1, "gen": 1}, "wrong-key",
                        algorithm="HS256")
    assert_error(requests.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=10), 401)


def test_users(server, api):
    me = requests.get(server.url + "/api/v1/users/me",
                      headers={"Authorization": f"Bearer {api.token()}"}, timeout=10)
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == server.credentials["admin_email"] and body["id"]
    other = requests.get(server.url + f"/api/v1/users/{body['id']}",
                         headers={"Authorization": f"Bearer {api.token()}"}, timeout=10)
    assert other.json() == body
    missing = requests.get(server.url + "/api/v1/users/nobody",
                           headers={"Authorization": f"Bearer {api.token()}"}, timeout=10)
    assert_error(missing, 404, "NotFound")


def test_unknown_environment_is_404(server, api):
    r = requests.get(server.url + "/environments/nope/dev/api/v1/steps",
                     headers={"Authorization": f"Bearer {api.token()}"}, timeout=10)
    assert_error(r, 404)


def test_admin_cli_and_regenerated_token(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        def admin(*args: str) -> str:
            out = subprocess.run(
                [sys.executable, "-m", "shipyard_service.cli", "admin", "--data-dir",
                 str(server.data_dir), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
            assert out.returncode == 0, out.stderr
            return out.stdout

        import json

        user = json.loads(admin("create-user", "--name", "Ada", "--email", "ada@example.com"))
        old = Api(server, sdk_token=user["sdk_token"])
        assert_error(old.request("GET", "/steps"), 404)  # a plain user, in no project yet
        admin("set-role", "default", "ada@example.com", "editor")
        assert old.request("GET", "/steps").status_code == 200
        duplicate = subprocess.run(
            [sys.executable, "-m", "shipyard_service.cli", "admin", "--data-dir",
             str(server.data_dir), "create-user", "--name", "A", "--email", "ada@example.com"],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
        new_token = json.loads(admin("regenerate-sdk-token", "--email", "ada@example.com"))["sdk_token"]
        # The old SDK token and the access token minted from it both stop working at once.
        assert_error(old.request("GET", "/steps"), 401)
        r = requests.post(server.url + "/api/v1/auth/refresh", json={"refresh_token": user["sdk_token"]},
                          timeout=10)
        assert_error(r, 401)
        assert Api(server, sdk_token=new_token).request("GET", "/steps").status_code == 200
        admin("create-project", "vision", "--environment", "prod")
        admin("set-role", "vision", "ada@example.com", "viewer")
        r = requests.get(server.url + "/environments/vision/prod/api/v1/steps",
                         headers={"Authorization": f"Bearer {Api(server, new_token).token()}"}, timeout=10)
        assert r.status_code == 200 and r.json() == []
    finally:
        server.stop()
