"""A store created before project roles keeps every existing user's access to every existing
project: the store is made by the code of the last commit before roles (taken from git and
run as it was), then the current server starts on it and migrates."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import requests

from ..helpers import ROOT, Api, ServerProcess, assert_error

# The last commit of main before project roles and memberships.
BEFORE_ROLES = "a6920d1d660091544ff0090d8a9be5e8ba350240"


def _old_code(tmp_path) -> str:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", BEFORE_ROLES,
                              "service/shipyard_service"], capture_output=True, timeout=120)
    assert archive.returncode == 0, archive.stderr.decode()
    target = tmp_path / "old"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return str(target / "service")


def test_store_from_before_roles_keeps_everyones_access(tmp_path):
    old_path = _old_code(tmp_path)
    server = ServerProcess(tmp_path / "data")  # its backend env, before any start

    def old_admin(*args: str) -> dict:
        env = dict(os.environ, **server.env, PYTHONPATH=old_path)
        done = subprocess.run([sys.executable, "-c",
                               "import shipyard_service, sys; "
                               f"assert shipyard_service.__file__.startswith({old_path!r}); "
                               "from shipyard_service.cli import main; sys.exit(main())",
                               "admin", "--data-dir", str(server.data_dir), *args],
                              capture_output=True, text=True, timeout=120, env=env,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    server.data_dir.mkdir(parents=True)
    ada = old_admin("create-user", "--name", "Ada", "--email", "ada@example.com")
    bob = old_admin("create-user", "--name", "Bob", "--email", "bob@example.com")
    old_admin("create-project", "legacy", "--environment", "prod")
    old_admin("create-project", "second")
    server.start()
    try:
        newcomer = requests.post(
            server.url + "/api/v1/users", json={"name": "New", "email": "new@example.com"},
            headers={"Authorization": f"Bearer {Api(server).token()}"}, timeout=30).json()
        for token in (ada["sdk_token"], bob["sdk_token"]):
            who = Api(server, sdk_token=token)
            headers = {"Authorization": f"Bearer {who.token()}"}
            projects = requests.get(server.url + "/api/v1/projects", headers=headers,
                                    timeout=30).json()
            assert {p["name"] for p in projects} == {"legacy", "second"}
            for env_path in ("/environments/legacy/prod", "/environments/second/dev"):
                r = requests.get(server.url + env_path + "/api/v1/steps", headers=headers,
                                 timeout=30)
                assert r.status_code == 200 and r.json() == [], r.text
            # As before roles, they may still change the settings: the admin role.
            r = requests.patch(server.url + "/api/v1/projects/legacy", headers=headers,
                               json={"settings": {"requirements_path": "req.txt"}}, timeout=30)
            assert r.status_code == 200, r.text
        members = requests.get(server.url + "/api/v1/projects/second/members", timeout=30,
                               headers={"Authorization": f"Bearer {Api(server).token()}"})
        assert {m["email"]: m["role"] for m in members.json()} == {
            "ada@example.com": "admin", "bob@example.com": "admin"}
        # A user created after the migration starts with no project.
        late = Api(server, sdk_token=newcomer["sdk_token"])
        late.env_url = server.url + "/environments/legacy/prod"
        assert_error(late.request("GET", "/steps"), 404, "NotFound")
        # The bootstrap admin (created by this start) is a platform admin: default works.
        assert Api(server).request("GET", "/steps").status_code == 200
    finally:
        server.stop()
    # A second start does not run the migration again (a removed member stays removed).
    server.start()
    try:
        admin_headers = {"Authorization": f"Bearer {Api(server).token()}"}
        requests.delete(server.url + "/api/v1/projects/second/members/bob@example.com",
                        headers=admin_headers, timeout=30).raise_for_status()
        server.stop()
        server.start()
        bob_api = Api(server, sdk_token=bob["sdk_token"])
        bob_api.env_url = server.url + "/environments/second/dev"
        assert_error(bob_api.request("GET", "/steps"), 404, "NotFound")
    finally:
        server.stop()
