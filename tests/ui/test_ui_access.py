"""Users, members and roles in a browser (issue 13, point 2): a platform admin creates a user
on the Users page and gives it a role on a project's Members page; the user then sees the
project as that role allows (names of variables, not values; no editing controls), loses it
when removed, and cannot log in once disabled. Then the admin deletes a project after
typing its name."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import login, shot

PASSWORD = "viewer-password-1"


def _log_in_as(page, server, email: str, password: str) -> None:
    page.goto(server.url + "/ui/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


def test_users_members_roles_and_deletion(browser, page, ui_server, ui_api):
    base = ui_server.url
    r = ui_api.request("PUT", "/environment-variables",
                       json={"environment_variables": {"UI_SECRET": "hidden-value"}})
    assert r.status_code == 200, r.text
    login(page, ui_server)
    page.click("#users-link")
    expect(page.locator("h1")).to_have_text("Users")
    form = page.locator("#new-user")
    form.locator("input[name=name]").fill("Vic")
    form.locator("input[name=email]").fill("vic@example.com")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    expect(page.locator("#sdk-token")).to_contain_text("sdk_")
    expect(page.locator("[data-user='vic@example.com']")).to_contain_text("active")
    shot(page, "access-01-users")

    page.goto(base + "/ui/projects/default/members")
    adding = page.locator("#add-member")
    adding.locator("input[name=email]").fill("vic@example.com")
    adding.locator("select[name=role]").select_option("viewer")
    adding.locator("button[type=submit]").click()
    expect(page.locator(".flash-success")).to_contain_text("vic@example.com")
    expect(page.locator("[data-member='vic@example.com'] select")).to_have_value("viewer")
    shot(page, "access-02-members")

    viewer = browser.new_context().new_page()
    _log_in_as(viewer, ui_server, "vic@example.com", PASSWORD)
    expect(viewer.locator("[data-project=default]")).to_have_count(1)
    expect(viewer.locator("#new-project")).to_have_count(0)
    expect(viewer.locator("#users-link")).to_have_count(0)
    viewer.goto(base + "/ui/projects/default/environments/dev/")
    expect(viewer.locator("[data-variable=UI_SECRET]")).to_contain_text("shown to editors")
    assert "hidden-value" not in viewer.content()
    expect(viewer.locator("#new-variable")).to_have_count(0)
    viewer.goto(base + "/ui/projects/default/members")
    expect(viewer.locator("#my-role")).to_have_text("viewer")
    expect(viewer.locator("#add-member")).to_have_count(0)
    viewer.goto(base + "/ui/projects/default/settings")
    expect(viewer.locator("#delete-project")).to_have_count(0)
    shot(viewer, "access-03-viewer")

    # Removed from the project: it is gone from the viewer's UI (404, as if absent).
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("[data-member='vic@example.com'] button.danger").click()
    expect(page.locator(".flash-success")).to_contain_text("removed")
    response = viewer.goto(base + "/ui/projects/default/environments")
    assert response.status == 404
    viewer.goto(base + "/ui/")
    expect(viewer.locator("[data-project=default]")).to_have_count(0)

    # Disabled: the open session ends and the password no longer works.
    page.goto(base + "/ui/users")
    page.locator("[data-user='vic@example.com'] button").click()
    expect(page.locator("[data-user='vic@example.com']")).to_contain_text("disabled")
    viewer.goto(base + "/ui/")
    expect(viewer).to_have_url(re.compile(r"/ui/login"))
    _log_in_as(viewer, ui_server, "vic@example.com", PASSWORD)
    expect(viewer.locator(".flash-error")).to_contain_text("Wrong email or password")
    viewer.context.close()

    # Deleting a project: a confirmation page, the name typed.
    assert ui_api.session.post(base + "/api/v1/projects", json={"name": "ui-gone"}, timeout=30,
                               headers={"Authorization": f"Bearer {ui_api.token()}"}
                               ).status_code == 201
    page.goto(base + "/ui/projects/ui-gone/settings")
    page.locator("#delete-project a").click()
    expect(page.locator("h1")).to_contain_text("Delete project ui-gone")
    page.fill("#confirm-delete input[name=confirm]", "ui-gone")
    page.click("#confirm-delete button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("deleted")
    expect(page.locator("[data-project=ui-gone]")).to_have_count(0)
