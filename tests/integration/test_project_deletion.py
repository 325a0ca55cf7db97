"""Deleting a project with everything in it (issue 13, point 2), through plain HTTP, our SDK
and the web UI, on a real server with real runner processes."""

from __future__ import annotations

import re
import time

import requests

from ..helpers import Api, assert_error, create_step_http, run_and_wait
from .test_low_latency import _runner_pids

ECHO = "def run(x):\n    return {'y': x * 2}\n"
ECHO_FIELDS = {"inputs[0][name]": "x", "inputs[0][data_type]": "number",
               "outputs[0][name]": "y", "outputs[0][data_type]": "number"}


def _admin_headers(api: Api) -> dict:
    return {"Authorization": f"Bearer {api.token()}"}


def _new_project(server, api: Api, name: str) -> Api:
    for path, body in (("/api/v1/projects", {"name": name}),
                       (f"/api/v1/projects/{name}/environments", {"name": "dev"})):
        r = requests.post(server.url + path, json=body, headers=_admin_headers(api), timeout=30)
        assert r.status_code == 201, r.text
    scoped = Api(server)
    scoped.env_url = f"{server.url}/environments/{name}/dev"
    return scoped


def test_delete_project_with_everything_in_it(server, api):
    doomed = _new_project(server, api, "doomed")
    kept = _new_project(server, api, "kept")
    for scoped in (doomed, kept):
        create_step_http(scoped, "echo", {"main.py": ECHO}, kind="pipelines", fields=ECHO_FIELDS)
        r = scoped.request("PUT", "/environment-variables",
                           json={"environment_variables": {"SECRET": "v"}})
        assert r.status_code == 200, r.text
        up = scoped.request("GET", "/data-store/upload", params={"path_to_object": "d/f.txt"})
        r = requests.post(up.json()["signed_url"], data=up.json()["fields"],
                          files={"file": ("f.txt", b"data")}, timeout=30)
        assert r.status_code in (200, 204), r.text
    execution_id, out = run_and_wait(doomed, "echo", {"x": 2})
    assert {o["pipeline_output_name"]: o["value"] for o in out.json()["outputs"]} == {"y": 4}
    # A multi-step pipeline too: its step list and step executions go with the project.
    create_step_http(doomed, "double", {"main.py": ECHO}, fields=ECHO_FIELDS)
    create_step_http(doomed, "again", {"main.py": "def run(y):\n    return {'z': y + 1}\n"},
                     fields={**ECHO_FIELDS, "inputs[0][name]": "y",
                                    "outputs[0][name]": "z"})
    r = doomed.request("POST", "/pipelines", json={
        "pipeline_name": "chain", "step_names": ["double", "again"],
        "connections": [{"source": "double.y", "target": "again.y"}]})
    assert r.status_code in (200, 201), r.text
    _, out = run_and_wait(doomed, "chain", {"x": 1})
    assert out.status_code == 200, out.text
    r = doomed.request("POST", "/endpoints", json={
        "pipeline_name": "echo", "name": "echo-ll", "mode": "low_latency",
        "inputs_mapping": [], "outputs_mapping": []})
    assert r.status_code == 201, r.text
    create_step_http(doomed, "tick", {"main.py": "def run(n):\n    print('tick', n)\n"},
                     kind="pipelines",
                     fields={"inputs[0][name]": "n", "inputs[0][data_type]": "number"})
    r = doomed.request("POST", "/periodic-deployment", json={
        "pipeline_name": "tick", "name": "tick-cron", "schedule": "* * * * *",
        "inputs_mapping": [{"pipeline_input_name": "n", "constant_value": 1}]})
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 120
    while not _runner_pids("echo-ll", server.data_dir) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _runner_pids("echo-ll", server.data_dir), "the resident runner never started"

    url = server.url + "/api/v1/projects/doomed"
    # No confirmation, a wrong one, a role too low: nothing is deleted.
    assert_error(requests.delete(url, headers=_admin_headers(api), timeout=30), 400, "BadRequest")
    assert_error(requests.delete(url, params={"confirm": "kept"}, headers=_admin_headers(api),
                                 timeout=30), 400, "BadRequest")
    editor = requests.post(server.url + "/api/v1/users", headers=_admin_headers(api), timeout=30,
                           json={"name": "Ed", "email": "ed-doomed@example.com"}).json()
    requests.put(url + "/members/ed-doomed@example.com", json={"role": "editor"},
                 headers=_admin_headers(api), timeout=30).raise_for_status()
    ed = Api(server, sdk_token=editor["sdk_token"])
    assert_error(requests.delete(url, params={"confirm": "doomed"}, timeout=30,
                                 headers={"Authorization": f"Bearer {ed.token()}"}), 403)
    assert doomed.request("GET", "/pipelines/echo").status_code == 200

    r = requests.delete(url, params={"confirm": "doomed"}, headers=_admin_headers(api),
                        timeout=60)
    assert r.status_code == 200, r.text
    deleted = r.json()["deleted"]
    assert deleted["deployments"] == 2 and deleted["pipelines"] == 3
    assert deleted["executions"] >= 2 and deleted["environments"] == 1
    assert deleted["environment_variables"] == 1 and deleted["data_store_objects"] == 1

    assert_error(requests.get(url, headers=_admin_headers(api), timeout=30), 404, "NotFound")
    assert_error(doomed.request("GET", "/steps"), 404, "NotFound")
    deadline = time.monotonic() + 30  # the resident runner is stopped
    while _runner_pids("echo-ll", server.data_dir) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not _runner_pids("echo-ll", server.data_dir)
    # A project of the same name starts empty: no row nor object of the old one shows.
    doomed = _new_project(server, api, "doomed")
    assert doomed.request("GET", "/pipelines").json() == []
    assert doomed.request("GET", "/deployments").json() == []
    assert doomed.request("GET", "/environment-variables").json() == []
    assert doomed.request("GET", "/data-store/list").json()["items"] == []
    assert_error(doomed.request("GET", f"/executions/{execution_id}"), 404)
    assert not list((server.data_dir / "datastore").glob("doomed/dev/**/*.txt"))
    # The other project is untouched.
    assert kept.request("GET", "/pipelines/echo").status_code == 200
    assert kept.request("GET", "/environment-variables").json() == [{"name": "SECRET",
                                                                     "value": "v"}]
    assert len(kept.request("GET", "/data-store/list").json()["items"]) == 1


def test_delete_project_from_the_web_ui(server, api):
    _new_project(server, api, "ui-doomed")
    session = requests.Session()
    page = session.get(server.url + "/ui/login", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    creds = server.credentials
    r = session.post(server.url + "/ui/login", allow_redirects=False, timeout=30,
                     data={"email": creds["admin_email"], "password": creds["admin_password"],
                           "csrf_token": csrf})
    assert r.status_code == 302
    confirm = session.get(server.url + "/ui/projects/ui-doomed/delete", timeout=30)
    assert confirm.status_code == 200 and 'id="confirm-delete"' in confirm.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', confirm.text).group(1)
    wrong = session.post(server.url + "/ui/projects/ui-doomed/delete", timeout=30,
                         data={"csrf_token": csrf, "confirm": "nope"})
    assert wrong.status_code == 400 and "confirm=ui-doomed" in wrong.text
    done = session.post(server.url + "/ui/projects/ui-doomed/delete", timeout=30,
                        allow_redirects=False, data={"csrf_token": csrf, "confirm": "ui-doomed"})
    assert done.status_code == 302
    assert session.get(server.url + "/ui/projects/ui-doomed/", timeout=30).status_code == 404
