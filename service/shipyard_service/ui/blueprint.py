"""The UI blueprint, its login gate, CSRF check and HTML error pages."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, redirect, render_template, request, send_from_directory, url_for
from werkzeug.exceptions import HTTPException

from ..errors import ShipyardError
from . import csrf
from .session import current_user

HERE = Path(__file__).resolve().parent
bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates",
               static_folder="static", static_url_path="/static")

PUBLIC_ENDPOINTS = {"ui.login", "ui.static", "ui.vendor"}

# Browser libraries installed from npm by `make install` (package.json beside this file);
# served from node_modules, never committed.
VENDOR_FILES = {
    "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
}


def vendor_dir() -> Path:
    """Settings.ui_node_modules of the app serving the request, else the UI's own."""
    from flask import current_app, has_app_context

    settings = current_app.config.get("SHIPYARD_SETTINGS") if has_app_context() else None
    return Path(getattr(settings, "ui_node_modules", "") or HERE / "node_modules")


@bp.before_request
def _gate():
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()  # every UI form, the login form included
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if current_user() is None:
        if request.method == "GET":
            return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
        abort(401)
    return None


# Pages load only their own scripts, styles and images, and are never framed.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; object-src 'none'; base-uri 'self'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@bp.after_request
def _security_headers(response):
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


@bp.route("/vendor/<name>")
def vendor(name: str):
    relative = VENDOR_FILES.get(name)
    if relative is None:
        abort(404)
    path = vendor_dir() / relative
    if not path.is_file():
        abort(404, description="Chart library missing: run `make install` (npm ci)")
    return send_from_directory(path.parent, path.name, max_age=3600)


def charts_available() -> bool:
    return all((vendor_dir() / rel).is_file() for rel in VENDOR_FILES.values())


@bp.route("/<path:unknown>")
def not_found(unknown: str):
    abort(404)


@bp.errorhandler(ShipyardError)
def _domain_error(exc: ShipyardError):
    return render_template("error.html", status=exc.status_code, title=exc.name,
                           message=exc.message), exc.status_code


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if exc.code == 401:
        return redirect(url_for("ui.login"))
    return render_template("error.html", status=exc.code, title=exc.name,
                           message=exc.description), exc.code or 500
