"""The web UI (F18): server-rendered pages under /ui/, reading the same domain functions
as the API. Session-cookie login; CSRF protection on the UI's own forms only (the JSON API
authenticates with bearer tokens and is left alone)."""

from __future__ import annotations

import datetime as dt

from flask import Flask, redirect, url_for
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def init_ui(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked by the UI blueprint only
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", dt.timedelta(hours=12))
    settings = app.config.get("SHIPYARD_SETTINGS")
    if settings is not None and settings.public_url.startswith("https://"):
        app.config.setdefault("SESSION_COOKIE_SECURE", True)  # served over TLS: cookie too
    csrf.init_app(app)

    from . import (  # noqa: F401  (each module adds its routes to the blueprint)
        views_access,
        views_auth,
        views_compare,
        views_executions,
        views_home,
        views_monitoring,
        views_pipelines,
    )
    from .blueprint import bp
    from .filters import register_filters

    register_filters(app)
    app.register_blueprint(bp)
    # `/` is where people type the server's address: it leads to the UI.
    app.add_url_rule("/", "root", lambda: redirect(url_for("ui.home")))
