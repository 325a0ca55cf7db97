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
    # Set, not setdefault: Flask defines these keys already, so setdefault changed nothing
    # (no SameSite, 31-day sessions, never Secure).
    settings = app.config.get("SHIPYARD_SETTINGS")
    app.config.update(
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(
            seconds=settings.ui_session_lifetime_s if settings is not None else 12 * 3600),
        # Served over TLS (the public URL is https): the cookie never travels in clear.
        SESSION_COOKIE_SECURE=bool(settings and settings.public_url.startswith("https://")),
    )
    csrf.init_app(app)

    from . import (  # noqa: F401  (each module adds its routes to the blueprint)
        views_access,
        views_auth,
        views_compare,
        views_deployments,
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
