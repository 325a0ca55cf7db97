"""Liveness/readiness, and the landing page until the web UI exists."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..store import database
from ..store.models import SchemaVersion

blp = Blueprint("health", __name__)


@blp.route("/healthz")
def healthz():
    database.connect(reuse_if_open=True)
    SchemaVersion.select().count()
    return jsonify({"status": "ok"})


@blp.route("/ui/")
def ui_home():
    return (
        "<!doctype html><title>Shipyard</title><h1>Shipyard</h1>"
        "<p>The web UI is coming. Meanwhile: <a href='/api/docs'>API documentation</a>"
        " &middot; <a href='/api/openapi.json'>OpenAPI document</a></p>"
    )
