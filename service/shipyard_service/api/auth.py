"""Control API: access tokens and users."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from ..domain import auth
from ..errors import BadRequest
from .common import bearer_principal, ok, services

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Authentication and users")


@blp.route("/auth/refresh", methods=["POST"])
def refresh():
    """Exchange an SDK token (or an execution token) for a short-lived JWT access token."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object with 'refresh_token'")
    return ok({"access_token": services().tokens.refresh(body.get("refresh_token"))})


@blp.route("/users/me", methods=["GET"])
def who_am_i():
    principal = bearer_principal()
    return ok(auth.user_to_dict(auth.get_user(principal.user_id)))


@blp.route("/users/<user_id>", methods=["GET"])
def get_user(user_id: str):
    bearer_principal()
    return ok(auth.user_to_dict(auth.get_user(user_id)))
