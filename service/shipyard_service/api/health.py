"""Liveness/readiness. (The web UI is served by ui/ at /ui/.)"""

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

