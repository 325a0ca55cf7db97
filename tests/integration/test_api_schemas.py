"""Request shapes are checked by the marshmallow schemas on the blueprints: a bad shape is a
400 in the documented error body (not flask-smorest's 422), naming the fields. Swagger UI is
served from the npm package, not a CDN."""

from __future__ import annotations

import requests

from ..helpers import assert_error


def test_shape_errors_are_400_in_the_error_shape(api):
    cases = [
        ("PUT", "/environment-variables", {"json": {"environment_variables": [1]}}),
        ("PUT", "/environment-variables", {"json": {"environment_variables": {"A": True}}}),
        ("PUT", "/environment-variables", {"json": {}}),
        ("PUT", "/environment-variables", {"json": [1, 2]}),
        ("PUT", "/environment-variables", {"data": "{not json",
                                           "headers": {"Content-Type": "application/json"}}),
        ("GET", "/metrics/list-values?page=abc", {}),
        ("GET", "/metrics/single-value?items_per_page=99999", {}),
        ("GET", "/metrics/single-value?page=" + "9" * 40, {}),
        ("PUT", "/metrics/single-value/acc", {"json": {"value": "x", "execution_id": "e"}}),
    ]
    for method, path, kwargs in cases:
        headers = {"Authorization": f"Bearer {api.token()}", **kwargs.pop("headers", {})}
        body = assert_error(api.request(method, path, headers=headers, **kwargs), 400,
                            "BadRequest")
        assert body["request_id"] != "NO_REQUEST_ID"
    body = assert_error(api.request("GET", "/metrics/list-values?page=abc"), 400)
    assert body["additional_data"] == {"fields": {"query": {"page": ["Not a valid integer."]}}}
    assert body["message"] == "Invalid request: page: Not a valid integer."
    # The control API too, and an unknown key where the route refuses them.
    r = requests.post(api.server.url + "/api/v1/auth/refresh", json={}, timeout=10)
    assert "refresh_token" in assert_error(r, 400, "BadRequest")["message"]
    r = requests.post(api.server.url + "/api/v1/projects", json={"name": "x", "colour": 1},
                      headers={"Authorization": f"Bearer {api.token()}"}, timeout=10)
    assert "colour" in assert_error(r, 400, "BadRequest")["message"]


def test_env_var_number_is_stored_as_its_text(api, sdk):
    """The seed: create_or_update_environment_variable(..., environment_variable_value=6)."""
    r = api.request("PUT", "/environment-variables",
                    json={"environment_variables": {"SEED_NUMBER": 6, "SEED_FLOAT": 0.5}})
    assert r.status_code == 200, r.text
    sdk.create_or_update_environment_variable("SEED_SDK", 4)
    values = {v["name"]: v["value"] for v in sdk.list_environment_variables()}
    assert (values["SEED_NUMBER"], values["SEED_FLOAT"], values["SEED_SDK"]) == ("6", "0.5", "4")
    assert_error(api.request("PUT", "/environment-variables",
                             json={"environment_variables": {"N": None}}), 400)


def test_swagger_ui_assets_come_from_npm(server):
    page = requests.get(server.url + "/api/docs", timeout=10)
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "/api/docs/assets/swagger-ui-bundle.js" in page.text
    for name, marker in (("swagger-ui-bundle.js", b"SwaggerUIBundle"),
                         ("swagger-ui.css", b".swagger-ui")):
        r = requests.get(f"{server.url}/api/docs/assets/{name}", timeout=10)
        assert r.status_code == 200 and marker in r.content[:2_000_000], name
    assert requests.get(server.url + "/api/docs/assets/package.json", timeout=10).status_code == 404
