"""F2: projects and their settings (step defaults) through the control API, our SDK and
`shipyard admin`; environments under them; bad input; execution tokens."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from ..gitserver import generate_key
from ..helpers import ROOT, Api, assert_error, create_step_http, run_and_wait


def ctl(api: Api, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or api.token()}"}
    return requests.request(method, api.server.url + "/api/v1" + path, headers=headers,
                            timeout=60, **kwargs)


@pytest.fixture(scope="module")
def deploy_key(tmp_path_factory) -> str:
    return generate_key(tmp_path_factory.mktemp("keys") / "deploy")[0]


def test_create_read_edit_project(api, deploy_key):
    r = ctl(api, "POST", "/projects", json={"name": "vision", "settings": {
        "language": "python:3.10-slim", "repository_url": "git@github.com:acme/vision.git",
        "repository_deploy_key": deploy_key, "repository_branch": "main",
        "included_folders": ["src", "assets/labels.csv"], "requirements_path": "req.txt",
        "system_dependencies": ["python3-opencv", "ffmpeg"]}})
    assert r.status_code == 201, r.text
    project = r.json()
    assert project["name"] == "vision" and project["environments"] == []
    settings = project["settings"]
    assert settings == {
        "language": "python:3.10-slim", "repository_url": "git@github.com:acme/vision.git",
        "repository_branch": "main", "has_repository_deploy_key": True,
        "included_folders": ["src", "assets/labels.csv"], "requirements_path": "req.txt",
        "system_dependencies": ["python3-opencv", "ffmpeg"], "dockerfile_path": None,
    }
    assert "BEGIN" not in r.text

    # Defaults: python 3.11, '/' as included folders, no requirements file.
    plain = ctl(api, "POST", "/projects", json={"name": "plain"}).json()["settings"]
    assert plain["included_folders"] == ["/"] and plain["requirements_path"] is None
    assert plain["language"] == "python:3.11-slim"
    assert plain["has_repository_deploy_key"] is False

    r = ctl(api, "PATCH", "/projects/vision", json={"settings": {
        "repository_branch": "release", "system_dependencies": [], "repository_deploy_key": None,
        "dockerfile_path": ""}})
    assert r.status_code == 200, r.text
    settings = r.json()["settings"]
    assert settings["repository_branch"] == "release" and settings["system_dependencies"] == []
    assert settings["dockerfile_path"] is None  # "" is null, as in a step's container_config
    assert settings["has_repository_deploy_key"] is False
    assert settings["language"] == "python:3.10-slim"  # untouched keys are kept
    assert ctl(api, "GET", "/projects/vision").json() == r.json()
    assert "vision" in [p["name"] for p in ctl(api, "GET", "/projects").json()]

    r = ctl(api, "POST", "/projects/vision/environments", json={"name": "prod"})
    assert r.status_code == 201, r.text
    env_url = r.json()["environment_url"]
    assert env_url == f"{api.server.url}/environments/vision/prod"
    assert [e["name"] for e in ctl(api, "GET", "/projects/vision/environments").json()] == ["prod"]
    # The environment serves the project's step defaults (contract §6.1), never the key.
    info = requests.get(env_url + "/api/v1/project-information",
                        headers={"Authorization": f"Bearer {api.token()}"}, timeout=30).json()
    assert info["requirements_path"] == "req.txt" and info["repository_branch"] == "release"
    assert "repository_deploy_key" not in info


@pytest.mark.parametrize("body", [
    {"name": "Bad_Name"}, {"name": ""}, {}, {"name": 3}, {"name": "x", "extra": 1},
    {"name": "x", "settings": "python"}, {"name": "x", "settings": {"unknown": 1}},
    {"name": "x", "settings": {"language": "java:17"}},
    {"name": "x", "settings": {"language": None}},
    {"name": "x", "settings": {"included_folders": "src"}},
    {"name": "x", "settings": {"included_folders": []}},
    {"name": "x", "settings": {"included_folders": ["../etc"]}},
    {"name": "x", "settings": {"requirements_path": "../../etc/passwd"}},
    {"name": "x", "settings": {"system_dependencies": ["ok", "-o Dpkg::Options=x"]}},
    {"name": "x", "settings": {"system_dependencies": "ffmpeg"}},
    {"name": "x", "settings": {"repository_url": "https://github.com/acme/x.git"}},
    {"name": "x", "settings": {"repository_url": "-oProxyCommand=sh@h:x"}},
    {"name": "x", "settings": {"repository_branch": "--upload-pack=sh"}},
    {"name": "x", "settings": {"repository_deploy_key": "hello"}},
    {"name": "x", "settings": {"repository_deploy_key": 42}},
])
def test_bad_project_creations_are_refused(api, body):
    assert_error(ctl(api, "POST", "/projects", json=body), 400)
    assert_error(ctl(api, "GET", "/projects/x"), 404, "NotFound")


def test_bad_edits_change_nothing(api, deploy_key):
    ctl(api, "POST", "/projects", json={"name": "stable", "settings": {
        "repository_deploy_key": deploy_key, "requirements_path": "r.txt"}})
    before = ctl(api, "GET", "/projects/stable").json()
    for body in ({"name": "renamed", "settings": {}}, {"settings": {"language": "ruby"}},
                 {"settings": {"requirements_path": "ok.txt", "bogus": 1}}, {"requirements_path": "x"},
                 {"settings": None}, {"settings": {"repository_deploy_key": "garbage"}}):
        assert_error(ctl(api, "PATCH", "/projects/stable", json=body), 400)
    assert_error(ctl(api, "PATCH", "/projects/stable", data="not json"), 400)
    assert ctl(api, "GET", "/projects/stable").json() == before
    assert before["settings"]["has_repository_deploy_key"] is True
    assert_error(ctl(api, "PATCH", "/projects/absent", json={"settings": {}}), 404)
    assert_error(ctl(api, "POST", "/projects", json={"name": "stable"}), 409, "Conflict")
    assert_error(ctl(api, "POST", "/projects/stable/environments", json={"name": "Bad Env"}), 400)
    assert_error(ctl(api, "POST", "/projects/absent/environments", json={"name": "dev"}), 404)
    ctl(api, "POST", "/projects/stable/environments", json={"name": "dev"})
    assert_error(ctl(api, "POST", "/projects/stable/environments", json={"name": "dev"}), 409)


def test_tokens(api):
    for token in ("", "garbage", "a.b.c"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = requests.get(api.server.url + "/api/v1/projects", headers=headers, timeout=30)
        assert_error(r, 401, "Unauthorized")
        r = requests.post(api.server.url + "/api/v1/projects", json={"name": "nope"},
                          headers=headers, timeout=30)
        assert_error(r, 401)
    assert_error(ctl(api, "GET", "/projects/nope"), 404)


FROM_STEP = '''
import os, requests

def run():
    ctl = os.environ["CRAFT_AI_CONTROL_URL"] + "/api/v1"
    token = requests.post(ctl + "/auth/refresh",
                          json={"refresh_token": os.environ["CRAFT_AI_SDK_TOKEN"]}).json()["access_token"]
    headers = {"Authorization": "Bearer " + token}
    codes = [
        requests.get(ctl + "/projects/guarded", headers=headers).status_code,
        requests.patch(ctl + "/projects/guarded", headers=headers,
                       json={"settings": {"requirements_path": "changed.txt"}}).status_code,
        requests.post(ctl + "/projects", headers=headers, json={"name": "from-step"}).status_code,
        requests.post(ctl + "/projects/guarded/environments", headers=headers,
                      json={"name": "from-step"}).status_code,
    ]
    return {"codes": codes}
'''


def test_execution_tokens_cannot_change_projects(api):
    ctl(api, "POST", "/projects", json={"name": "guarded", "settings": {"requirements_path": "r.txt"}})
    body = create_step_http(api, "project-prober", {"main.py": FROM_STEP}, kind="pipelines",
                            fields={"outputs[0][name]": "codes", "outputs[0][data_type]": "array",
                                    "container_config[requirements_path]": ""})
    assert body["creation_info"]["status"] == "ready", body
    _, out = run_and_wait(api, "project-prober")
    assert out.json()["outputs"][0]["value"] == [200, 403, 403, 403]
    guarded = ctl(api, "GET", "/projects/guarded").json()
    assert guarded["settings"]["requirements_path"] == "r.txt" and guarded["environments"] == []
    assert_error(ctl(api, "GET", "/projects/from-step"), 404)


def test_sdk_project_functions(sdk, deploy_key):
    from shipyard import STEP_PARAMETER
    from shipyard.exceptions import SdkException

    created = sdk.create_project("sdk-made", repository_url="git@gitlab.com:team/repo.git",
                                 repository_deploy_key=deploy_key, system_dependencies=["ffmpeg"])
    assert created["settings"]["has_repository_deploy_key"] is True
    env = sdk.create_environment("staging", project_name="sdk-made")
    assert env["environment_url"].endswith("/environments/sdk-made/staging")
    assert [e["name"] for e in sdk.list_environments("sdk-made")] == ["staging"]
    updated = sdk.update_project_settings("sdk-made", requirements_path=STEP_PARAMETER.NULL,
                                          repository_branch="main",
                                          language=STEP_PARAMETER.FALLBACK_PROJECT)
    assert updated["settings"]["requirements_path"] is None
    assert updated["settings"]["repository_branch"] == "main"
    assert sdk.get_project_settings("sdk-made") == updated["settings"]
    # Without a name: the project of the SDK's environment URL (default/dev here).
    assert sdk.get_project()["name"] == "default"
    assert "sdk-made" in [p["name"] for p in sdk.list_projects()]
    with pytest.raises(SdkException) as error:
        sdk.update_project_settings("sdk-made", language="cobol")
    assert error.value.status_code == 400
    with pytest.raises(SdkException) as error:
        sdk.create_project("sdk-made")
    assert error.value.status_code == 409


def _admin(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shipyard_service.cli", "admin", "--data-dir",
                           str(server.data_dir), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_admin_project_settings_command(api, server, deploy_key, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(deploy_key)
    made = _admin(server, "create-project", "cli-made", "--environment", "prod",
                  "--set", "language=python:3.12-slim")
    assert made.returncode == 0, made.stderr
    done = _admin(server, "project-settings", "cli-made", "--set", "repository_url=git@h.io:a/b.git",
                  "--set", "system_dependencies=ffmpeg,libgomp1", "--set", "included_folders=[\"src\"]",
                  "--unset", "requirements_path", "--deploy-key-file", str(key_file))
    assert done.returncode == 0, done.stderr
    assert "PRIVATE KEY" not in done.stdout
    settings = json.loads(done.stdout)["settings"]
    assert settings["system_dependencies"] == ["ffmpeg", "libgomp1"]
    # The running server sees what the command wrote (same store, same encryption key).
    seen = ctl(api, "GET", "/projects/cli-made").json()
    assert seen["settings"] == settings and seen["settings"]["has_repository_deploy_key"] is True
    assert seen["settings"]["language"] == "python:3.12-slim"
    assert [e["name"] for e in seen["environments"]] == ["prod"]
    shown = _admin(server, "project-settings", "cli-made")
    assert shown.returncode == 0 and json.loads(shown.stdout)["settings"] == settings
    bad = _admin(server, "project-settings", "cli-made", "--set", "language=java")
    assert bad.returncode != 0 and "language" in bad.stderr
    bad = _admin(server, "project-settings", "cli-made", "--set", "nokeyvalue")
    assert bad.returncode != 0
    assert _admin(server, "project-settings", "absent").returncode != 0
    assert ctl(api, "GET", "/projects/cli-made").json()["settings"] == settings
