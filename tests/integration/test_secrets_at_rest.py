"""Deploy keys and environment-variable values: sealed in the store, absent from API
responses (except the two documented environment-variable routes that return values),
absent from logs and from every file under the data dir; legacy clear values are sealed at
start; a wrong server key gives a clear error; keys can be rotated."""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from ..gitserver import GitServer, Unavailable
from ..helpers import Api, ServerProcess, assert_error, run_and_wait

# These tests read the SQLite file itself; the PostgreSQL + S3 run has none to read.
pytestmark = pytest.mark.skipif(
    os.environ.get("SHIPYARD_TEST_BACKEND") == "postgres-s3",
    reason="reads the SQLite file; covered by the default run")

CODE = '''
import hashlib, os

def run():
    value = os.environ.get("API_TOKEN", "")
    return {"digest": hashlib.sha256(value.encode()).hexdigest()}
'''


@pytest.fixture(scope="module")
def git(tmp_path_factory):
    try:
        server = GitServer(tmp_path_factory.mktemp("gitserver-secrets")).start()
    except Unavailable as exc:
        pytest.skip(f"no sshd for the Git tests: {exc}")
    yield server
    server.stop()


def ctl(api: Api, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, api.server.url + "/api/v1" + path, timeout=60,
                            headers={"Authorization": f"Bearer {api.token()}"}, **kwargs)


def secret_fragments(key: str) -> list[bytes]:
    return [line.encode() for line in key.splitlines() if len(line) >= 40]


def files_holding(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(str(path.relative_to(root)))
    return found


def test_secrets_never_stored_or_shown_in_clear(git, tmp_path):
    import hashlib

    project_key = git.new_deploy_key("project")
    step_key = git.new_deploy_key("step")
    wrong_key = git.new_deploy_key("unauthorised", authorise=False)
    url = git.create_repo("vault-app", {"main": {"main.py": CODE, "requirements.txt": ""}})
    value = "env-secret-" + secrets.token_hex(16)
    needles = [value.encode(), *secret_fragments(project_key), *secret_fragments(step_key),
               *secret_fragments(wrong_key)]

    server = ServerProcess(tmp_path / "data").start()
    try:
        api = Api(server)
        responses: list[requests.Response] = []
        responses.append(ctl(api, "POST", "/projects", json={"name": "vault", "settings": {
            "repository_url": url, "repository_deploy_key": project_key,
            "repository_branch": "main"}}))
        responses.append(ctl(api, "POST", "/projects/vault/environments", json={"name": "dev"}))
        env = Api(server)
        env.env_url = responses[-1].json()["environment_url"]
        responses.append(env.request("PUT", "/environment-variables",
                                     json={"environment_variables": {"API_TOKEN": value}}))
        common = {"function_path": "main.py", "function_name": "run",
                  "outputs[0][name]": "digest", "outputs[0][data_type]": "string"}
        # One step with the project's key, one with its own key, one refused key.
        responses.append(env.request("POST", "/pipelines", data={"pipeline_name": "p1", **common}))
        responses.append(env.request("POST", "/pipelines", data={
            "pipeline_name": "p2", **common,
            "container_config[repository_deploy_key]": step_key}))
        refused = env.request("POST", "/steps", data={
            "step_name": "refused", **common, "container_config[repository_deploy_key]": wrong_key})
        assert_error(refused, 400, "GitAuthenticationFailed")
        responses.append(refused)
        for name in ("p1", "p2"):
            got = env.request("GET", f"/pipelines/{name}?wait_for_completion=true")
            assert got.json()["creation_info"]["status"] == "ready", got.text
            execution_id, out = run_and_wait(env, name)
            # The value reached the execution (opened for it), yet only its digest came back.
            assert out.json()["outputs"][0]["value"] == hashlib.sha256(value.encode()).hexdigest()
            responses += [got, out, env.request("GET", f"/executions/{execution_id}"),
                          env.request("POST", f"/executions/{execution_id}/logs", json={}),
                          env.request("POST", f"/pipelines/{name}/logs", json={})]
        responses += [ctl(api, "GET", "/projects"), ctl(api, "GET", "/projects/vault"),
                      env.request("GET", "/project-information"), env.request("GET", "/steps"),
                      env.request("GET", "/pipelines"),
                      ctl(api, "PATCH", "/projects/vault", json={"settings": {"repository_branch": "main"}})]
        for response in responses:
            assert not [n for n in needles if n in response.content], response.request.url
        # The documented routes that do return values (contract §6.8).
        listed = env.request("GET", "/environment-variables").json()
        assert listed == [{"name": "API_TOKEN", "value": value}]
    finally:
        server.stop()

    data_dir = tmp_path / "data"
    # Not in the SQLite file (nor its WAL), not in server.log, not in any other file.
    assert files_holding(data_dir, needles) == []
    assert not (data_dir / "tmp").exists() or not any((data_dir / "tmp").iterdir())
    with sqlite3.connect(data_dir / "shipyard.db") as db:
        stored = db.execute("SELECT value FROM environmentvariable").fetchall()
        settings = db.execute("SELECT settings FROM project WHERE name = 'vault'").fetchone()[0]
    assert [v.startswith("fernet:") for (v,) in stored] == [True]
    assert '"repository_deploy_key": "fernet:' in settings
    assert (data_dir / "encryption.key").stat().st_mode & 0o777 == 0o600


def test_legacy_values_sealed_wrong_key_reported_rotation(tmp_path):
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir).start()
    server.stop()
    # A variable stored in clear, as versions before encryption at rest did.
    with sqlite3.connect(data_dir / "shipyard.db") as db:
        (env_id,) = db.execute("SELECT id FROM environment").fetchone()
        db.execute("INSERT INTO environmentvariable (environment_id, name, value, updated_at) "
                   "VALUES (?, 'OLD', 'legacy-clear-value', '2024-01-01 00:00:00')", (env_id,))
    server = ServerProcess(data_dir).start()
    try:
        api = Api(server)
        assert api.request("GET", "/environment-variables").json() == [
            {"name": "OLD", "value": "legacy-clear-value"}]
    finally:
        server.stop()
    with sqlite3.connect(data_dir / "shipyard.db") as db:
        (stored,) = db.execute("SELECT value FROM environmentvariable").fetchone()
    assert stored.startswith("fernet:")
    assert files_holding(data_dir, [b"legacy-clear-value"]) == []

    # Another key than the one that sealed: a clear error, not a crash.
    other = Fernet.generate_key().decode()
    server = ServerProcess(data_dir, env={"SHIPYARD_ENCRYPTION_KEY": other}).start()
    try:
        api = Api(server)
        err = assert_error(api.request("GET", "/environment-variables"), 500, "SecretsUnavailable")
        assert "SHIPYARD_ENCRYPTION_KEY" in err["message"]
        assert api.request("GET", "/steps").status_code == 200
    finally:
        server.stop()

    # Rotation: new key first (encrypts), old key after (still decrypts).
    old = (data_dir / "encryption.key").read_text().strip()
    server = ServerProcess(data_dir, env={"SHIPYARD_ENCRYPTION_KEY": f"{other},{old}"}).start()
    try:
        api = Api(server)
        assert api.request("GET", "/environment-variables").json()[0]["value"] == "legacy-clear-value"
        api.request("PUT", "/environment-variables", json={"environment_variables": {"NEW": "v2"}})
    finally:
        server.stop()
    server = ServerProcess(data_dir, env={"SHIPYARD_ENCRYPTION_KEY": other}).start()
    try:
        api = Api(server)
        err = assert_error(api.request("GET", "/environment-variables"), 500)  # OLD needs `old`
        deleted = api.request("DELETE", "/environment-variables/NEW")
        assert deleted.json() == {"name": "NEW", "value": "v2"}  # sealed with the new key
    finally:
        server.stop()


def test_bad_encryption_key_setting_stops_the_server(tmp_path):
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_ENCRYPTION_KEY": "too-short"})
    with pytest.raises(RuntimeError) as error:
        server.start(timeout_s=20)
    assert "SHIPYARD_ENCRYPTION_KEY" in str(error.value)
    assert not (tmp_path / "data" / "encryption.key").exists()


def test_endpoint_tokens_sealed_at_rest_and_legacy_ones_sealed_at_start(tmp_path):
    """Issue 13: endpoint tokens are sealed in the store like other secrets; a store from
    before (clear tokens) has them sealed at the next start, and they keep working."""
    from ..helpers import create_step_http

    server = ServerProcess(tmp_path / "data").start()
    db = tmp_path / "data" / "shipyard.db"
    token = "endpoint-secret-" + secrets.token_hex(16)
    legacy = "legacy-endpoint-" + secrets.token_hex(16)
    try:
        api = Api(server)
        create_step_http(api, "echo", {"main.py": "def run():\n    return {}\n"},
                         kind="pipelines")
        for name, chosen in (("sealed-ep", token), ("legacy-ep", None)):
            body = {"pipeline_name": "echo", "name": name}
            if chosen:
                body["endpoint_token"] = chosen
            assert api.request("POST", "/endpoints", json=body).status_code == 201
        assert api.request("GET", "/deployments/sealed-ep").json()["endpoint_token"] == token
        assert _trigger(api, "sealed-ep", token) == 200
        assert _trigger(api, "sealed-ep", "wrong-" + token) == 403
        stored = dict(sqlite3.connect(db).execute("SELECT name, endpoint_token FROM deployment"))
        assert stored["sealed-ep"].startswith("fernet:") and token not in stored["sealed-ep"]
        assert server.stop() == 0
        assert files_holding(tmp_path / "data", [token.encode()]) == []
        # A store written before this change: the token in clear.
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE deployment SET endpoint_token = ? WHERE name = 'legacy-ep'",
                         (legacy,))
        server.start()
        stored = dict(sqlite3.connect(db).execute("SELECT name, endpoint_token FROM deployment"))
        assert stored["legacy-ep"].startswith("fernet:") and legacy not in stored["legacy-ep"]
        assert _trigger(api, "legacy-ep", legacy) == 200
        assert api.request("GET", "/deployments/legacy-ep").json()["endpoint_token"] == legacy
    finally:
        server.stop()


def _trigger(api: Api, url_path: str, token: str) -> int:
    return requests.post(f"{api.env_url}/endpoints/{url_path}", json={}, timeout=60,
                         headers={"Authorization": f"EndpointToken {token}"}).status_code
