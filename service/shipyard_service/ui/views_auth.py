"""Login, logout and the Parameters page (account, password, SDK token)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for

from ..bootstrap import read_credentials, write_credentials
from ..domain import auth
from ..errors import ShipyardError, TooManyRequests
from .blueprint import bp
from .services import services, settings
from .session import current_user, log_in, log_out


def _safe_next(target: str | None) -> str:
    """Only local UI paths: never an open redirect."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("ui.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    email = ""
    status = 200
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()
        password = request.form.get("password") or ""
        status = 401
        try:
            user = (auth.log_in(services().login_throttle, email, password,
                                request.remote_addr or "") if email and password else None)
        except TooManyRequests as exc:
            user, error, status = None, exc.message, exc.status_code
        if user is not None:
            log_in(user)
            return redirect(_safe_next(request.form.get("next")))
        error = error or "Wrong email or password."
    elif current_user() is not None:
        return redirect(_safe_next(request.args.get("next")))
    status = status if error else 200
    return render_template("login.html", error=error, email=email,
                           next=request.values.get("next", "")), status


@bp.route("/logout", methods=["POST"])
def logout():
    log_out()
    flash("You are logged out.", "info")
    return redirect(url_for("ui.login"))


@bp.route("/parameters")
def parameters():
    """Shows a token regenerated just before, once: it is taken out of the session here, so
    reloading this page shows it no more and regenerates nothing."""
    return render_template("parameters.html", user=current_user(),
                           new_token=session.pop("new_sdk_token", None), nav="parameters")


@bp.route("/parameters/sdk-token", methods=["POST"])
def regenerate_token():
    """POST, then redirect (POST-redirect-GET): a reload of the result cannot regenerate.
    The new token rides in the signed, HttpOnly session cookie to the next page only;
    only its hash is stored."""
    user = current_user()
    token = auth.regenerate_sdk_token(user)
    creds = read_credentials(settings())
    if creds.get("admin_email") == user.email:  # keep `make run`'s credentials file true
        creds["sdk_token"] = token
        write_credentials(settings(), creds)
    session["new_sdk_token"] = token
    return redirect(url_for("ui.parameters") + "#sdk-token", code=303)


@bp.route("/parameters/password", methods=["POST"])
def change_password():
    user = current_user()
    current = request.form.get("current_password") or ""
    new = request.form.get("new_password") or ""
    if auth.check_password(user.email, current) is None:
        flash("The current password is wrong.", "error")
    elif new != (request.form.get("confirm_password") or ""):
        flash("The new passwords do not match.", "error")
    else:
        try:
            auth.set_password(user, new)
        except ShipyardError as exc:
            flash(exc.message, "error")
        else:
            refreshed = auth.get_user(user.id)
            log_in(refreshed)  # this session stays; the others end (fingerprint changed)
            flash("Password changed.", "success")
    return redirect(url_for("ui.parameters"))
