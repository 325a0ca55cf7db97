"""The web UI (F18): server-rendered pages under /ui/, reading the same domain functions
as the API. Session-cookie login; CSRF protection on the UI's own forms only (the JSON API
authenticates with bearer tokens and is left alone)."""

from __future__ import annotations

import datetime as dt

from flask import Flask, Request, redirect, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


class UiSessions(SecureCookieSessionInterface):
    """Cookie sessions are the UI's alone: API requests authenticate with a token each, so
    they skip building the cookie's signer and decoding a session (a tenth of the
    low-latency endpoint's own CPU per call). Anything writing a session outside the UI
    fails loudly (Flask's null session)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path == "/ui" or request.path.startswith("/ui/"):
            return super().open_session(app, request)
        return self.null_session_class()


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
    app.session_interface = UiSessions()
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
