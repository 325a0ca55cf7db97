"""Control API: access tokens and users."""

from __future__ import annotations

from ..domain import access, auth
from .common import bearer_principal, ok, services
from .schemas.auth import AccessToken, RefreshBody, User
from .smorest import BEARER, PUBLIC, ApiBlueprint

blp = ApiBlueprint("auth", __name__, url_prefix="/api/v1", description="Authentication and users",
                   security=BEARER, errors=(401,))


@blp.route("/auth/refresh", methods=["POST"])
@blp.arguments(RefreshBody)
@blp.response(200, AccessToken)
@blp.doc(security=PUBLIC)
def refresh(body: dict):
    """Exchange an SDK token (or an execution token) for a short-lived JWT access token."""
    return ok({"access_token": services().tokens.refresh(body["refresh_token"])})


@blp.route("/users/me", methods=["GET"])
@blp.response(200, User)
def who_am_i():
    principal = bearer_principal()
    return ok(auth.user_to_dict(auth.get_user(principal.user_id)))


@blp.route("/users/<user_id:user_id>", methods=["GET"])
@blp.response(200, User)
@blp.alt_response(404, response="NOT_FOUND")
def get_user(user_id: str):
    """Yourself, a user sharing a project with you, or anyone for a platform admin."""
    return ok(auth.user_to_dict(access.visible_user(bearer_principal(), user_id)))
