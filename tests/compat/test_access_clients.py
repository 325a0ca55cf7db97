"""Project access through both clients (issue 13, point 2): our SDK (its admin functions
and the role answers) and the unmodified official client `craft-ai-sdk==0.60.0` used by a
non-member, a viewer and an editor of the same environment."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ..helpers import ROOT, ServerProcess

OFFICIAL = '''
import io, json, sys
from craft_ai_sdk import CraftAiSdk

out_path, users = sys.argv[1], json.loads(sys.argv[2])
sdk = CraftAiSdk()
seen = {}

def attempt(name, call):
    try:
        seen[name] = ["ok", call()]
    except Exception as exc:  # the client's SdkException carries the status
        seen[name] = ["error", getattr(exc, "status_code", None), str(exc)]

attempt("list_steps", sdk.list_steps)
attempt("list_pipelines", sdk.list_pipelines)
attempt("list_variables", sdk.list_environment_variables)
attempt("set_variable", lambda: sdk.create_or_update_environment_variable("FROM_CLIENT", "1"))
attempt("list_objects", sdk.list_data_store_objects)
attempt("upload", lambda: sdk.upload_data_store_object(io.BytesIO(b"x"), "client/x.txt"))
attempt("download", lambda: (lambda buf: (sdk.download_data_store_object("shared/a.txt", buf),
                                          buf.getvalue().decode())[1])(io.BytesIO()))
# get_user is how the client names a `created_by`: the admin, or a fellow member.
for who, user_id in users.items():
    attempt("get_user_" + who, lambda user_id=user_id: sdk.get_user(user_id))
json.dump(seen, open(out_path, "w"))
'''


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A server with project `default` holding a variable and an object, and three plain
    users: a viewer, an editor and one with no role there."""
    from shipyard import CraftAiSdk

    server = ServerProcess(tmp_path_factory.mktemp("access-clients")).start()
    creds = server.credentials
    admin = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                       control_url=creds["control_url"])
    admin.create_or_update_environment_variable("SECRET", "s3cret")
    admin.upload_data_store_object(__import__("io").BytesIO(b"shared data"), "shared/a.txt")
    tokens = {}
    for name, role in (("viewer", "viewer"), ("editor", "editor"), ("outsider", None)):
        user = admin.create_user(name.title(), f"{name}@example.com")
        assert user["is_platform_admin"] is False and user["sdk_token"]
        tokens[name] = user["sdk_token"]
        if role:
            member = admin.set_project_member_role(f"{name}@example.com", role)
            assert member["role"] == role
    yield server, admin, tokens
    server.stop()


def _ours(server, token: str):
    from shipyard import CraftAiSdk

    creds = server.credentials
    return CraftAiSdk(sdk_token=token, environment_url=creds["environment_url"],
                      control_url=creds["control_url"])


def test_our_sdk_roles_and_admin_functions(platform):
    from shipyard.exceptions import SdkException

    server, admin, tokens = platform
    members = {m["email"]: m["role"] for m in admin.list_project_members()}
    assert members == {"viewer@example.com": "viewer", "editor@example.com": "editor"}
    assert {u["email"] for u in admin.list_users()} >= {"viewer@example.com",
                                                        "outsider@example.com"}
    outsider, viewer, editor = (_ours(server, tokens[n]) for n in ("outsider", "viewer",
                                                                    "editor"))
    for call in (outsider.list_steps, outsider.list_environment_variables,
                 outsider.list_data_store_objects, outsider.get_project):
        with pytest.raises(SdkException) as caught:
            call()
        assert caught.value.status_code == 404 and caught.value.name == "NotFound"
    assert outsider.list_projects() == []
    # Users: only who shares a project (or oneself) can be read; else 404 as if unknown.
    ids = {who.who_am_i()["email"]: who.who_am_i()["id"] for who in (outsider, viewer, editor)}
    assert viewer.get_user(ids["editor@example.com"])["email"] == "editor@example.com"
    assert outsider.get_user(ids["outsider@example.com"])["email"] == "outsider@example.com"
    with pytest.raises(SdkException) as caught:
        outsider.get_user(ids["viewer@example.com"])
    assert caught.value.status_code == 404 and caught.value.name == "NotFound"

    assert viewer.list_steps() == []
    assert viewer.list_environment_variables() == [{"name": "SECRET", "value": None}]
    with pytest.raises(SdkException) as caught:
        viewer.create_or_update_environment_variable("X", "1")
    assert caught.value.status_code == 403 and caught.value.additional_data["needed"] == "editor"
    with pytest.raises(SdkException) as caught:
        viewer.set_project_member_role("outsider@example.com", "admin")
    assert caught.value.status_code == 403

    assert editor.list_environment_variables() == [{"name": "SECRET", "value": "s3cret"}]
    editor.create_or_update_environment_variable("X", "1")
    with pytest.raises(SdkException) as caught:
        editor.delete_project("default", confirm="default")
    assert caught.value.status_code == 403 and caught.value.additional_data["needed"] == "admin"
    with pytest.raises(SdkException) as caught:
        editor.create_user("Y", "y@example.com")
    assert caught.value.status_code == 403

    # Membership changes apply at the next call.
    admin.set_project_member_role("outsider@example.com", "viewer")
    assert [v["name"] for v in outsider.list_environment_variables()] == ["SECRET", "X"]
    admin.remove_project_member("outsider@example.com")
    with pytest.raises(SdkException):
        outsider.list_steps()
    # A project with no content can be deleted through the SDK, with its confirmation.
    admin.create_project("scratch")
    with pytest.raises(SdkException) as caught:
        admin.delete_project("scratch", confirm="nope")
    assert caught.value.status_code == 400
    assert admin.delete_project("scratch", confirm="scratch")["name"] == "scratch"
    assert "scratch" not in {p["name"] for p in admin.list_projects()}


@pytest.mark.compat
def test_official_client_sees_the_roles(platform, client_python, tmp_path):
    server, admin, tokens = platform
    creds = server.credentials
    users = {"admin": admin.who_am_i()["id"],
             "editor": _ours(server, tokens["editor"]).who_am_i()["id"]}
    script = tmp_path / "client.py"
    script.write_text(OFFICIAL)
    seen = {}
    for name in ("outsider", "viewer", "editor"):
        env = {k: v for k, v in os.environ.items()
               if k not in ("CRAFT_AI_EXECUTION_ID", "SHIPYARD_EXECUTION_ID")}
        env.update(CRAFT_AI_ENVIRONMENT_URL=creds["environment_url"],
                   CRAFT_AI_SDK_TOKEN=tokens[name], CRAFT_AI_CONTROL_URL=creds["control_url"])
        out = tmp_path / f"{name}.json"
        proc = subprocess.run([str(client_python), str(script), str(out), json.dumps(users)],
                              env=env,
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        seen[name] = json.loads(out.read_text())

    outsider = seen["outsider"]
    for call, result in outsider.items():
        assert result[0] == "error" and result[1] == 404, (call, result)
    viewer = seen["viewer"]
    assert viewer["list_steps"] == ["ok", []] and viewer["list_pipelines"] == ["ok", []]
    assert viewer["list_variables"][0] == "ok"
    assert {v["name"]: v["value"] for v in viewer["list_variables"][1]}["SECRET"] is None
    assert viewer["set_variable"][:2] == ["error", 403]
    assert viewer["upload"][:2] == ["error", 403]
    assert viewer["list_objects"][0] == "ok"
    assert viewer["download"] == ["ok", "shared data"]
    editor = seen["editor"]
    assert {v["name"]: v["value"] for v in editor["list_variables"][1]}["SECRET"] == "s3cret"
    assert editor["set_variable"][0] == "ok" and editor["upload"][0] == "ok", editor
    # Users: a member reads the platform admin and a fellow member (their `created_by`); an
    # outsider, sharing no project, reads neither (404 above, as for an unknown id).
    for name in ("viewer", "editor"):
        for who in ("admin", "editor"):
            assert seen[name][f"get_user_{who}"][0] == "ok", (name, who, seen[name])
            assert seen[name][f"get_user_{who}"][1]["id"] == users[who]
