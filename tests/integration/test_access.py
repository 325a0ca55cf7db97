"""Project access (issue 13, point 2) through plain HTTP on a real server.

The route table below gives every route of the app a rule; `test_every_route_has_a_rule`
reads the app's url_map, so a route added without a rule fails. The matrix tests then play
four users with different roles in two projects against every project-scoped route, through
the JSON API and the web UI:
  - no role        → 404, exactly as for a project that does not exist;
  - a lower role   → 403 naming the role needed;
  - enough role    → past the gate (whatever the route answers to the dummy input).
"""

from __future__ import annotations

import re

import pytest
import requests

from ..helpers import Api, assert_error

# Who may call each route: a project role (viewer < editor < admin), or a kind of caller
# that is not a project role (tested on its own below or elsewhere).
PUBLIC, USER, PLATFORM = "public", "user", "platform"
EXECUTION, ENDPOINT_TOKEN, SIGNED = "execution-token", "endpoint-token", "signed-url"
VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"
ROLE_ORDER = {VIEWER: 1, EDITOR: 2, ADMIN: 3}

ROUTE_RULES = {
    # Control API
    "GET api-docs.openapi_json": PUBLIC,
    "GET api-docs.openapi_swagger_ui": PUBLIC,
    "GET swagger_assets.swagger_asset": PUBLIC,
    "POST auth.refresh": PUBLIC,
    "GET health.healthz": PUBLIC,
    "GET static": PUBLIC,
    "GET auth.who_am_i": USER,
    "GET auth.get_user": USER,
    "GET projects.list_projects": USER,  # filtered: tested in test_project_lists_are_filtered
    "POST projects.create_project": PLATFORM,
    "GET users.list_users": PLATFORM,
    "POST users.create_user": PLATFORM,
    "PATCH users.update_user": PLATFORM,
    "GET projects.get_project": VIEWER,
    "PATCH projects.update_project": ADMIN,
    "DELETE projects.remove_project": ADMIN,
    "GET projects.list_environments": VIEWER,
    "POST projects.create_environment": ADMIN,
    "GET projects.list_members": VIEWER,
    "PUT projects.set_member_role": ADMIN,
    "DELETE projects.remove_member": ADMIN,
    "GET retention.get_retention": VIEWER,
    "PUT retention.set_retention": ADMIN,
    # Environment API
    "POST datastore.information": VIEWER,
    "GET datastore.list_objects": VIEWER,
    "POST datastore.download": VIEWER,
    "GET datastore.upload": EDITOR,
    "POST datastore.multipart_start": EDITOR,
    "POST datastore.multipart_part": EDITOR,
    "POST datastore.multipart_end": EDITOR,
    "DELETE datastore.delete": EDITOR,
    "GET deployments.list_deployments": VIEWER,
    "GET deployments.get_deployment": VIEWER,
    "PATCH deployments.update_deployment": EDITOR,
    "DELETE deployments.delete_deployment": EDITOR,
    "POST deployments.trigger_with_bearer": EDITOR,
    "GET deployments.latest_execution": VIEWER,
    "POST deployments.deployment_logs": VIEWER,
    "POST deployments.create_endpoint_deployment": EDITOR,
    "POST deployments.create_periodic_deployment": EDITOR,
    "POST deployments.generate_new_token": EDITOR,
    "PUT environment_variables.upsert": EDITOR,
    "GET environment_variables.list_variables": VIEWER,
    "DELETE environment_variables.delete": EDITOR,
    "GET executions.get_execution": VIEWER,
    "DELETE executions.delete_execution": EDITOR,
    "POST executions.rerun_execution": EDITOR,
    "GET executions.input_value": VIEWER,
    "POST executions.execution_logs": VIEWER,
    "GET executions.outputs": VIEWER,
    "GET executions.output_value": VIEWER,
    "GET metrics.get_list_metrics": VIEWER,
    "POST metrics.record_list": EDITOR,
    "GET metrics.get_metrics": VIEWER,
    "PUT metrics.record_single": EDITOR,
    "POST pipelines.create_pipeline": EDITOR,
    "GET pipelines.list_pipelines": VIEWER,
    "GET pipelines.get_pipeline": VIEWER,
    "DELETE pipelines.delete_pipeline": EDITOR,
    "GET pipelines.download_pipeline": VIEWER,
    "GET pipelines.list_executions": VIEWER,
    "GET pipelines.latest_execution": VIEWER,
    "POST pipelines.pipeline_logs": VIEWER,
    "POST pipelines.run_pipeline": EDITOR,
    "GET project_information.project_information": VIEWER,
    "GET resource_metrics.resource_metrics": VIEWER,
    "POST steps.create_step": EDITOR,
    "GET steps.list_steps": VIEWER,
    "GET steps.get_step": VIEWER,
    "DELETE steps.delete_step": EDITOR,
    "GET steps.download_step": VIEWER,
    "POST steps.step_logs": VIEWER,
    "POST runner.tick": EXECUTION,
    "POST runner.deployment_logs": EXECUTION,
    "POST runner.finish": EXECUTION,
    "GET runner.job": EXECUTION,
    "POST runner.logs": EXECUTION,
    "PUT runner.upload_output": EXECUTION,
    "POST endpoints.trigger": ENDPOINT_TOKEN,
    "GET endpoints.results": ENDPOINT_TOKEN,
    "GET endpoints.results_2": ENDPOINT_TOKEN,
    **{f"{m} signed.{name}": SIGNED
       for name in ("unknown", "get_artifact", "get_object", "put_part", "post_object")
       for m in ("GET", "POST", "PUT", "PATCH", "DELETE")},
    # Web UI
    "GET root": PUBLIC,  # a redirect to the UI's home
    "GET ui.login": PUBLIC,
    "POST ui.login": PUBLIC,
    "GET ui.static": PUBLIC,
    "GET ui.vendor": PUBLIC,
    "GET ui.not_found": USER,
    "GET ui.home": USER,  # filtered: tested in test_project_lists_are_filtered
    "POST ui.logout": USER,
    "GET ui.parameters": USER,
    "POST ui.change_password": USER,
    "POST ui.regenerate_token": USER,
    "GET ui.new_project": PLATFORM,
    "POST ui.new_project": PLATFORM,
    "GET ui.users": PLATFORM,
    "POST ui.users": PLATFORM,
    "POST ui.user_disabled": PLATFORM,
    "GET ui.project_home": VIEWER,
    "GET ui.project_settings": VIEWER,
    "POST ui.project_settings": ADMIN,
    "GET ui.environments": VIEWER,
    "POST ui.environments": ADMIN,
    "GET ui.members": VIEWER,
    "POST ui.members": ADMIN,
    "POST ui.remove_member": ADMIN,
    "GET ui.delete_project": ADMIN,
    "POST ui.delete_project": ADMIN,
    "GET ui.tracking_home": VIEWER,
    "GET ui.switch_environment": VIEWER,
    "GET ui.environment": VIEWER,
    "POST ui.set_variable": EDITOR,
    "POST ui.delete_variable": EDITOR,
    "GET ui.compare": VIEWER,
    "GET ui.deployments": VIEWER,
    "GET ui.deployment": VIEWER,
    "POST ui.deployment_enabled": EDITOR,
    "POST ui.deployment_token": EDITOR,
    "GET ui.tracking": VIEWER,
    "GET ui.execution_page": VIEWER,
    "POST ui.execution_rerun": EDITOR,
    "GET ui.download_logs": VIEWER,
    "GET ui.pipeline_metrics": VIEWER,
    "GET ui.resource_metrics": VIEWER,
    "GET ui.resource_metrics_csv": VIEWER,
    "GET ui.pipelines": VIEWER,
    "GET ui.pipeline": VIEWER,
    "GET ui.deploy": EDITOR,  # the deployment wizard
    "POST ui.deploy": EDITOR,
    "POST ui.deploy_create": EDITOR,
    "GET ui.schedule_preview": USER,  # the wizard's live cron reading: no project data
    "GET ui.deployment_live": VIEWER,  # polled by the deployment page
    "GET ui.execution_live": VIEWER,  # polled by a running execution's page
    "POST ui.deployment_delete": EDITOR,
    "POST ui.deployment_edit": EDITOR,
}

# Two projects, four users; each user's role differs between the projects (None: no role).
ROLES = {
    "alpha": {"vera": VIEWER, "ed": EDITOR, "ada": ADMIN, "nina": None},
    "beta": {"vera": ADMIN, "ed": None, "ada": VIEWER, "nina": EDITOR},
}
PASSWORD = "correct-horse-battery"
# Values for the URL's variables: the project's environment, then names that exist nowhere
# (so a route that lets the caller through answers about a missing object, harmlessly).
FILLERS = {"environment_name": "dev", "email": "nobody@example.com", "user_id": "nobody",
           "deployment_id": "999999", "filename": "app.css", "rest": "x", "unknown": "x"}
EXTRA_QUERY = {"ui.switch_environment": "?environment=dev"}


def _url_map():
    """The app's routes as `METHOD endpoint` → rule, without starting anything."""
    import tempfile

    from shipyard_service.app import close_app, create_app
    from shipyard_service.config import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings.from_env(data_dir=data_dir))
        close_app(app)  # only its routes are read
        routes = {}
        for rule in app.url_map.iter_rules():
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes[f"{method} {rule.endpoint}"] = rule
        return routes


ROUTES = _url_map()


def test_every_route_has_a_rule():
    missing = sorted(set(ROUTES) - set(ROUTE_RULES))
    assert not missing, f"routes without an access rule in ROUTE_RULES: {missing}"
    stale = sorted(set(ROUTE_RULES) - set(ROUTES))
    assert not stale, f"rules for routes that no longer exist: {stale}"


def _path(key: str, project: str) -> str:
    rule = ROUTES[key].rule
    endpoint = key.split(" ", 1)[1]

    def fill(match: re.Match) -> str:
        name = match.group(1).split(":")[-1]
        if name == "project_name":
            return project
        return FILLERS.get(name, "nothing-here")

    return re.sub(r"<([^>]+)>", fill, rule) + EXTRA_QUERY.get(endpoint, "")


@pytest.fixture(scope="module")
def people(server, api):
    """The four users (created by the platform admin over HTTP) and their roles."""
    admin = {"Authorization": f"Bearer {api.token()}"}
    for project in ROLES:
        r = requests.post(server.url + "/api/v1/projects", json={"name": project}, headers=admin,
                          timeout=30)
        assert r.status_code == 201, r.text
        r = requests.post(server.url + f"/api/v1/projects/{project}/environments",
                          json={"name": "dev"}, headers=admin, timeout=30)
        assert r.status_code == 201, r.text
    tokens = {}
    for name in ROLES["alpha"]:
        r = requests.post(server.url + "/api/v1/users", headers=admin, timeout=30,
                          json={"name": name.title(), "email": f"{name}@example.com",
                                "password": PASSWORD})
        assert r.status_code == 201, r.text
        tokens[name] = r.json()["sdk_token"]
    for project, roles in ROLES.items():
        for name, role in roles.items():
            if role:
                r = requests.put(server.url + f"/api/v1/projects/{project}/members/"
                                 f"{name}@example.com", json={"role": role}, headers=admin,
                                 timeout=30)
                assert r.status_code == 200 and r.json()["role"] == role, r.text
    return {name: Api(server, sdk_token=token) for name, token in tokens.items()}


def _hidden_message(project: str, key: str) -> str:
    if "<environment_name>" in ROUTES[key].rule or key.split(" ", 1)[1] in EXTRA_QUERY:
        return f"Environment '{project}/dev' not found"
    return f"Project '{project}' not found"


def _check_json(response: requests.Response, role: str | None, needed: str, project: str,
                key: str) -> None:
    where = f"{key} in {project} as {role}"
    if role is None:
        body = assert_error(response, 404, "NotFound")
        assert body["message"] == _hidden_message(project, key), where
    elif ROLE_ORDER[role] < ROLE_ORDER[needed]:
        body = assert_error(response, 403, "Forbidden")
        assert body["additional_data"]["needed"] == needed, where
    else:
        assert response.status_code not in (401, 500), (where, response.text[:300])
        if response.status_code in (403, 404) and response.headers.get(
                "Content-Type", "").startswith("application/json"):
            body = response.json()
            assert body["message"] != _hidden_message(project, key), where
            assert "needed" not in (body.get("additional_data") or {}), where


API_ROUTES = sorted(k for k, r in ROUTE_RULES.items()
                    if r in ROLE_ORDER and not k.split(" ", 1)[1].startswith("ui."))
UI_ROUTES = sorted(k for k, r in ROUTE_RULES.items()
                   if r in ROLE_ORDER and k.split(" ", 1)[1].startswith("ui."))


@pytest.mark.parametrize("project", sorted(ROLES))
def test_api_matrix(server, people, project):
    assert len(API_ROUTES) > 50
    for key in API_ROUTES:
        method = key.split(" ", 1)[0]
        for name, role in ROLES[project].items():
            api = people[name]
            r = api.session.request(method, server.url + _path(key, project), json={},
                                    headers={"Authorization": f"Bearer {api.token()}"},
                                    timeout=60, allow_redirects=False)
            _check_json(r, role, ROUTE_RULES[key], project, key)


def _ui_session(server, name: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(server.url + "/ui/login", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = session.post(server.url + "/ui/login", timeout=30, allow_redirects=False,
                     data={"email": f"{name}@example.com", "password": PASSWORD,
                           "csrf_token": csrf})
    assert r.status_code == 302, r.text[:300]
    # Logging in starts a new session: the form token comes from a page seen afterwards.
    page = session.get(server.url + "/ui/parameters", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return session, csrf


@pytest.mark.parametrize("project", sorted(ROLES))
def test_ui_matrix(server, people, project):
    assert len(UI_ROUTES) > 25
    sessions = {name: _ui_session(server, name) for name in ROLES[project]}
    for key in UI_ROUTES:
        method = key.split(" ", 1)[0]
        needed = ROUTE_RULES[key]
        for name, role in ROLES[project].items():
            session, csrf = sessions[name]
            r = session.request(method, server.url + _path(key, project), timeout=60,
                                data={"csrf_token": csrf} if method == "POST" else None,
                                allow_redirects=False)
            where = f"{key} in {project} as {role}: {r.status_code}"
            hidden = _hidden_message(project, key).replace("'", "&#39;")
            if role is None:
                assert r.status_code == 404 and hidden in r.text, where
            elif ROLE_ORDER[role] < ROLE_ORDER[needed]:
                assert r.status_code == 403 and f"needs the {needed} role" in r.text, where
            else:
                assert r.status_code not in (401, 403, 500), where
                assert hidden not in r.text, where
                assert not re.search(r"needs the (viewer|editor|admin) role", r.text), where
                if r.status_code == 302:
                    assert "/ui/login" not in r.headers["Location"], where


def test_project_lists_are_filtered(server, api, people):
    def names(who: Api) -> set[str]:
        r = requests.get(server.url + "/api/v1/projects", timeout=30,
                         headers={"Authorization": f"Bearer {who.token()}"})
        assert r.status_code == 200
        return {p["name"] for p in r.json()}

    assert names(people["ed"]) == {"alpha"}
    assert names(people["nina"]) == {"beta"}
    assert names(people["vera"]) == {"alpha", "beta"}
    assert {"alpha", "beta", "default"} <= names(api)  # the platform admin sees all
    session, _ = _ui_session(server, "ed")
    home = session.get(server.url + "/ui/", timeout=30).text
    assert 'data-project="alpha"' in home and 'data-project="beta"' not in home
    assert 'id="new-project"' not in home  # only platform admins create projects


def test_platform_routes_need_a_platform_admin(server, people):
    for name, who in people.items():
        headers = {"Authorization": f"Bearer {who.token()}"}
        for method, path, body in (("GET", "/api/v1/users", None),
                                   ("POST", "/api/v1/users", {"name": "X", "email": "x@x.io"}),
                                   ("PATCH", "/api/v1/users/nobody", {"disabled": True}),
                                   ("POST", "/api/v1/projects", {"name": "gamma"})):
            r = requests.request(method, server.url + path, json=body, headers=headers,
                                 timeout=30)
            assert_error(r, 403, "Forbidden")
        session, csrf = _ui_session(server, name)
        assert session.get(server.url + "/ui/users", timeout=30).status_code == 403
        assert session.get(server.url + "/ui/projects/new", timeout=30).status_code == 403


def test_variable_values_and_endpoint_tokens_for_editors_only(server, people):
    editor, viewer = people["ed"], people["vera"]
    alpha = server.url + "/environments/alpha/dev/api/v1"

    def call(who: Api, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, alpha + path, timeout=30, **kwargs,
                                headers={"Authorization": f"Bearer {who.token()}"})

    r = call(editor, "PUT", "/environment-variables",
             json={"environment_variables": {"API_KEY": "s3cret-value"}})
    assert r.status_code == 200, r.text
    assert call(editor, "GET", "/environment-variables").json() == [
        {"name": "API_KEY", "value": "s3cret-value"}]
    seen = call(viewer, "GET", "/environment-variables")
    assert seen.status_code == 200 and seen.json() == [{"name": "API_KEY", "value": None}]
    assert "s3cret-value" not in seen.text
    assert_error(call(viewer, "PUT", "/environment-variables",
                      json={"environment_variables": {"API_KEY": "x"}}), 403, "Forbidden")
    # The web UI: the value is in the editor's page only.
    page = "/ui/projects/alpha/environments/dev/"
    assert "s3cret-value" in _ui_session(server, "ed")[0].get(server.url + page, timeout=30).text
    viewer_page = _ui_session(server, "vera")[0].get(server.url + page, timeout=30)
    assert viewer_page.status_code == 200 and "API_KEY" in viewer_page.text
    assert "s3cret-value" not in viewer_page.text


def test_data_store_signed_urls_stay_in_their_project(server, people):
    """A non-member cannot get a signed URL; one minted for alpha cannot be turned into one
    for beta (the key is inside the signature)."""
    editor = people["ed"]  # editor of alpha, nothing in beta
    headers = {"Authorization": f"Bearer {editor.token()}"}
    alpha = server.url + "/environments/alpha/dev/api/v1/data-store"
    beta = server.url + "/environments/beta/dev/api/v1/data-store"
    up = requests.get(alpha + "/upload", params={"path_to_object": "a.txt"}, headers=headers,
                      timeout=30)
    assert up.status_code == 200, up.text
    body = up.json()
    r = requests.post(body["signed_url"], data=body["fields"],
                      files={"file": ("a.txt", b"alpha data")}, timeout=30)
    assert r.status_code in (200, 204), r.text
    for method, path, kwargs in (("GET", "/upload", {"params": {"path_to_object": "a.txt"}}),
                                 ("POST", "/download", {"data": {"path_to_object": "a.txt"}}),
                                 ("GET", "/list", {})):
        r = requests.request(method, beta + path, headers=headers, timeout=30, **kwargs)
        assert_error(r, 404, "NotFound")
    down = requests.post(alpha + "/download", data={"path_to_object": "a.txt"}, headers=headers,
                         timeout=30)
    url = down.json()["signed_url"]
    assert requests.get(url, timeout=30).content == b"alpha data"
    if "token=" in url:  # our signed URL: the key is inside the signed token
        token = url.split("token=", 1)[1]
        tampered = url.replace(token, token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"))
        assert requests.get(tampered, timeout=30).status_code == 403
    else:  # an S3 presigned URL: the key is in the path the store's signature covers (the
        # test store, moto, answers 404 for the missing key rather than checking it)
        assert "alpha/dev/a.txt" in url, url
        tampered = url.replace("alpha/dev/a.txt", "beta/dev/a.txt")
        assert requests.get(tampered, timeout=30).status_code in (403, 404)


def test_users_are_read_by_themselves_admins_and_who_shares_a_project(server, api, people):
    """GET /users/<id>: yourself, anyone for a platform admin, else only a user sharing a
    project with you (what the official client's get_user reads from `created_by`); anyone
    else gets the very 404 of an unknown id, so ids cannot be probed."""
    def get(who: Api, user_id: str) -> requests.Response:
        return requests.get(server.url + f"/api/v1/users/{user_id}", timeout=30,
                            headers={"Authorization": f"Bearer {who.token()}"})

    ids = {name: get(who, "me").json()["id"] for name, who in people.items()}
    admin_id = get(api, "me").json()["id"]
    for name, who in people.items():
        for other, other_id in ids.items():
            shared = any(ROLES[p][name] and ROLES[p][other] for p in ROLES)
            r = get(who, other_id)
            if name == other or shared:
                assert r.status_code == 200, (name, other, r.text)
                assert r.json() == {"id": other_id, "name": other.title(),
                                    "email": f"{other}@example.com"}
            else:
                body = assert_error(r, 404, "NotFound")
                assert body["message"] == f"User '{other_id}' not found", (name, other)
        # The platform admin acts in every project the caller is in (created_by names it).
        assert get(who, admin_id).status_code == 200
        unknown = assert_error(get(who, "no-such-user"), 404, "NotFound")
        assert unknown["message"] == "User 'no-such-user' not found"
    assert not ROLES["alpha"]["nina"] and not ROLES["beta"]["ed"]  # the pair never shares
    for other_id in ids.values():
        assert get(api, other_id).status_code == 200


def test_users_me_allows_exactly_its_methods(server, api):
    """/users/me is not also /users/<user_id>: OPTIONS and a 405 list GET only."""
    headers = {"Authorization": f"Bearer {api.token()}"}
    r = requests.options(server.url + "/api/v1/users/me", headers=headers, timeout=30)
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
    r = requests.patch(server.url + "/api/v1/users/me", json={"disabled": True},
                       headers=headers, timeout=30)
    assert_error(r, 405)
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
    r = requests.options(server.url + "/api/v1/users/some-id", headers=headers, timeout=30)
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {
        "GET", "PATCH", "HEAD", "OPTIONS"}


def test_disabled_user_loses_tokens_and_ui(server, api):
    admin = {"Authorization": f"Bearer {api.token()}"}
    r = requests.post(server.url + "/api/v1/users", headers=admin, timeout=30,
                      json={"name": "Temp", "email": "temp@example.com", "password": PASSWORD})
    user = r.json()
    assert r.status_code == 201 and user["is_platform_admin"] is False
    requests.put(server.url + "/api/v1/projects/default/members/temp@example.com",
                 json={"role": "viewer"}, headers=admin, timeout=30).raise_for_status()
    temp = Api(server, sdk_token=user["sdk_token"])
    assert temp.request("GET", "/steps").status_code == 200
    session, _ = _ui_session(server, "temp")
    r = requests.patch(server.url + f"/api/v1/users/{user['id']}", json={"disabled": True},
                       headers=admin, timeout=30)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert_error(temp.request("GET", "/steps"), 401, "Unauthorized")
    r = requests.post(server.url + "/api/v1/auth/refresh",
                      json={"refresh_token": user["sdk_token"]}, timeout=30)
    assert_error(r, 401, "Unauthorized")
    bounced = session.get(server.url + "/ui/", timeout=30, allow_redirects=False)
    assert bounced.status_code == 302 and "/ui/login" in bounced.headers["Location"]
    with pytest.raises(AssertionError):
        _ui_session(server, "temp")
    r = requests.patch(server.url + f"/api/v1/users/{user['id']}", json={"disabled": "yes"},
                       headers=admin, timeout=30)
    assert_error(r, 400, "BadRequest")


def test_member_routes_reject_bad_input(server, api, people):
    admin = {"Authorization": f"Bearer {api.token()}"}
    base = server.url + "/api/v1/projects/alpha/members"
    assert_error(requests.put(base + "/ed@example.com", json={"role": "owner"}, headers=admin,
                              timeout=30), 400, "BadRequest")
    assert_error(requests.put(base + "/ed@example.com", json=["editor"], headers=admin,
                              timeout=30), 400, "BadRequest")
    assert_error(requests.put(base + "/ghost@example.com", json={"role": "viewer"},
                              headers=admin, timeout=30), 404, "NotFound")
    assert_error(requests.delete(base + "/ghost@example.com", headers=admin, timeout=30), 404)
    members = requests.get(base, headers={"Authorization": f"Bearer {people['vera'].token()}"},
                           timeout=30).json()
    assert {m["email"]: m["role"] for m in members} == {
        "vera@example.com": "viewer", "ed@example.com": "editor", "ada@example.com": "admin"}


def test_admin_cli_manages_roles_and_users(server):
    import json
    import subprocess
    import sys

    from ..helpers import ROOT

    def admin(*args: str, code: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "shipyard_service.cli", "admin",
                               "--data-dir", str(server.data_dir), *args],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        return done

    boss = json.loads(admin("create-user", "--name", "Boss", "--email", "boss@example.com",
                            "--platform-admin").stdout)
    plain = json.loads(admin("create-user", "--name", "Pat", "--email", "pat@example.com")
                       .stdout)
    assert boss["is_platform_admin"] is True and plain["is_platform_admin"] is False
    # The password rule holds on every way in (it was the API's and the UI form's only).
    short = admin("create-user", "--name", "Sam", "--email", "sam@example.com",
                  "--password", "1234567", code=1)
    assert "at least 8 characters" in short.stderr, short.stderr
    boss_api, pat = Api(server, sdk_token=boss["sdk_token"]), Api(server, plain["sdk_token"])
    assert boss_api.request("GET", "/steps").status_code == 200  # admin of every project
    assert_error(pat.request("GET", "/steps"), 404, "NotFound")

    out = json.loads(admin("set-role", "default", "pat@example.com", "viewer").stdout)
    assert out["role"] == "viewer" and out["project"] == "default"
    assert pat.request("GET", "/steps").status_code == 200
    assert_error(pat.request("PUT", "/environment-variables",
                             json={"environment_variables": {"A": "1"}}), 403, "Forbidden")
    admin("set-role", "default", "pat@example.com", "editor")
    assert pat.request("PUT", "/environment-variables",
                       json={"environment_variables": {"A": "1"}}).status_code == 200
    admin("remove-member", "default", "pat@example.com")
    assert_error(pat.request("GET", "/steps"), 404, "NotFound")

    # Bad input: argparse refuses an unknown role; unknown names are clear errors.
    assert "invalid choice" in admin("set-role", "default", "pat@example.com", "owner",
                                     code=2).stderr
    assert "not found" in admin("set-role", "nope", "pat@example.com", "viewer",
                                code=1).stderr
    assert "No user" in admin("remove-member", "default", "ghost@example.com", code=1).stderr
    assert "not a member" in admin("remove-member", "default", "pat@example.com",
                                   code=1).stderr

    out = json.loads(admin("disable-user", "pat@example.com").stdout)
    assert out["disabled"] is True
    r = requests.post(server.url + "/api/v1/auth/refresh",
                      json={"refresh_token": plain["sdk_token"]}, timeout=30)
    assert_error(r, 401, "Unauthorized")
