"""The OpenAPI document flask-smorest generates is committed (docs/openapi.json): a change
to the HTTP surface shows up as a diff to review. `make openapi` refreshes it."""

from __future__ import annotations

import json

from ..helpers import ROOT


def current_spec(tmp_path) -> dict:
    from shipyard_service.app import close_app, create_app
    from shipyard_service.config import Settings

    app = create_app(Settings(data_dir=tmp_path, port=8000))
    try:
        with app.test_client() as client:
            return client.get("/api/openapi.json").get_json()
    finally:
        close_app(app)


def test_committed_openapi_matches(tmp_path):
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    spec = current_spec(tmp_path)
    assert sorted(spec["paths"]) == sorted(committed["paths"]), "run `make openapi`"
    assert spec == committed, "run `make openapi` and review the diff"


def test_contract_routes_are_published(tmp_path):
    paths = current_spec(tmp_path)["paths"]
    env = "/environments/{project_name}/{environment_name}/api/v1"
    for route in ("/steps", "/pipelines/{pipeline_name}/run", "/executions/{execution_id}/outputs",
                  "/data-store/upload/multipart/part", "/deployments/{name}", "/endpoints",
                  "/metrics/list-values/{name}", "/environment-variables"):
        assert env + route in paths, route
    assert "/api/v1/auth/refresh" in paths
