"""The web UI in a browser: login (session cookie, CSRF, logout), projects, project
settings, environments and their variables, the Parameters page and the SDK token."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from .conftest import login, shot


def test_login_logout_and_protection(page, ui_server):
    base = ui_server.url
    page.goto(base + "/ui/projects/default/environments")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    shot(page, "01-login")
    page.fill("input[name=email]", ui_server.credentials["admin_email"])
    page.fill("input[name=password]", "wrong-password")
    page.click("form button[type=submit]")
    expect(page.locator(".flash-error")).to_contain_text("Wrong email or password")
    # The right password lands on the page first asked for.
    page.fill("input[name=password]", ui_server.credentials["admin_password"])
    page.click("form button[type=submit]")
    expect(page).to_have_url(base + "/ui/projects/default/environments")
    expect(page.locator("h1")).to_have_text("Environments")
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    page.goto(base + "/ui/parameters")
    expect(page).to_have_url(re.compile(r"/ui/login"))


def test_forms_need_the_csrf_token_and_redirects_stay_local(page, ui_server):
    login(page, ui_server, "/ui/login?next=//evil.example/x")
    expect(page).to_have_url(ui_server.url + "/ui/")
    # A form posted without its token (another site's form) is refused and changes nothing.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    r = requests.post(ui_server.url + "/ui/projects/new", data={
        "name": "forged", "language": "python:3.11-slim", "included_folders": "/"},
        cookies=cookies, timeout=10, allow_redirects=False)
    assert r.status_code == 400 and "CSRF" in r.text
    r = requests.post(ui_server.url + "/ui/logout", timeout=10, allow_redirects=False)
    assert r.status_code == 400
    page.goto(ui_server.url + "/ui/")
    expect(page.locator("[data-project=forged]")).to_have_count(0)
    # Unknown pages and projects answer the UI's own 404 page.
    page.goto(ui_server.url + "/ui/projects/no-such-project/environments")
    expect(page.locator("h1")).to_contain_text("404")
    page.goto(ui_server.url + "/ui/nothing/here")
    expect(page.locator("h1")).to_contain_text("404")


def test_create_project_environment_and_variables(page, ui_server, ui_api):
    login(page, ui_server)
    shot(page, "02-home")
    page.click("#new-project")
    shot(page, "03-new-project")
    page.fill("input[name=name]", "Bad Name")
    page.click("#project-form button[type=submit]")
    # The browser's own pattern check stops the bad name; the server checks it too.
    expect(page).to_have_url(ui_server.url + "/ui/projects/new")
    page.evaluate("document.querySelector('input[name=name]').removeAttribute('pattern')")
    page.click("#project-form button[type=submit]")
    expect(page.locator(".flash-error")).to_contain_text("Invalid project name")
    page.fill("input[name=name]", "vision-lab")
    page.fill("textarea[name=system_dependencies]", "libgl1")
    page.click("#project-form button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("Project 'vision-lab' created")
    page.fill("#new-environment input[name=name]", "staging")
    page.click("#new-environment button[type=submit]")
    expect(page.locator("tr[data-environment=staging]")).to_be_visible()
    url = page.locator("tr[data-environment=staging] .env-url").inner_text()
    assert url == f"{ui_server.url}/environments/vision-lab/staging"
    shot(page, "04-environments")
    page.click("tr[data-environment=staging] a >> nth=0")
    expect(page.locator("#environment-url")).to_have_text(url)
    expect(page.locator("text=worker-1")).to_be_visible()
    page.fill("#new-variable input[name=name]", "MODEL_NAME")
    page.fill("#new-variable input[name=value]", "resnet")
    page.click("#new-variable button[type=submit]")
    expect(page.locator("tr[data-variable=MODEL_NAME] input[name=value]")).to_have_value("resnet")
    page.fill("tr[data-variable=MODEL_NAME] input[name=value]", "resnet-50")
    page.click("tr[data-variable=MODEL_NAME] button:has-text('Save')")
    expect(page.locator("tr[data-variable=MODEL_NAME] input[name=value]")).to_have_value("resnet-50")
    page.evaluate("document.querySelector('#new-variable input[name=name]').removeAttribute('pattern')")
    page.fill("#new-variable input[name=name]", "1BAD")
    page.click("#new-variable button[type=submit]")
    expect(page.locator(".flash-error")).to_contain_text("Invalid environment variable name")
    shot(page, "05-environment")
    # The API sees what the UI set: the same service layer.
    token = ui_api.token()
    listed = requests.get(url + "/api/v1/environment-variables",
                          headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert listed == [{"name": "MODEL_NAME", "value": "resnet-50"}]
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("tr[data-variable=MODEL_NAME] button:has-text('Delete')")
    expect(page.locator("tr[data-variable=MODEL_NAME]")).to_have_count(0)
    listed = requests.get(url + "/api/v1/environment-variables",
                          headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert listed == []


def test_project_settings_edit_but_not_rename(page, ui_server, ui_api):
    login(page, ui_server, "/ui/projects/default/settings")
    expect(page.locator("input[disabled]")).to_have_value("default")
    page.fill("input[name=requirements_path]", "requirements/prod.txt")
    page.fill("textarea[name=included_folders]", "src\nconfig")
    page.click("#project-form button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("Settings saved")
    expect(page.locator("input[name=requirements_path]")).to_have_value("requirements/prod.txt")
    shot(page, "06-project-settings")
    info = ui_api.request("GET", "/project-information").json()
    assert info["requirements_path"] == "requirements/prod.txt"
    assert info["included_folders"] == ["src", "config"] and info["project_name"] == "default"
    page.fill("textarea[name=included_folders]", "")
    page.evaluate("document.querySelector('textarea[name=included_folders]').removeAttribute('required')")
    page.click("#project-form button[type=submit]")
    expect(page.locator(".flash-error")).to_contain_text("at least one folder")
    assert ui_api.request("GET", "/project-information").json()["included_folders"] == ["src", "config"]
    page.fill("textarea[name=included_folders]", "/")
    page.fill("input[name=requirements_path]", "requirements.txt")
    page.click("#project-form button[type=submit]")
    expect(page.locator(".flash-success")).to_be_visible()


def test_parameters_regenerate_sdk_token(page, ui_server):
    old = ui_server.credentials["sdk_token"]
    login(page, ui_server, "/ui/parameters")
    expect(page.locator("#account-email")).to_have_text(ui_server.credentials["admin_email"])
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#regenerate-token")
    new = page.locator("#new-sdk-token").inner_text()
    shot(page, "07-parameters-new-token")
    assert new.startswith("sdk_") and new != old
    refresh = ui_server.url + "/api/v1/auth/refresh"
    assert requests.post(refresh, json={"refresh_token": old}, timeout=10).status_code == 401
    assert requests.post(refresh, json={"refresh_token": new}, timeout=10).status_code == 200
    assert ui_server.credentials["sdk_token"] == new  # credentials.json stays true
    # POST-redirect-GET: the result is a GET page; reloading it regenerates nothing and no
    # longer shows the token.
    assert page.url.endswith("/ui/parameters#sdk-token")
    page.reload()
    expect(page.locator("#new-sdk-token")).to_have_count(0)
    assert requests.post(refresh, json={"refresh_token": new}, timeout=10).status_code == 200
    assert ui_server.credentials["sdk_token"] == new
