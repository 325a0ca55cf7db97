"""Control API for platform admins: the platform's users.

    GET    {server}/api/v1/users                     every user
    POST   {server}/api/v1/users                     {"name", "email", "password"?,
                                                      "is_platform_admin"?}; the SDK token
                                                      is in this answer only
    PATCH  {server}/api/v1/users/<user_id>           {"disabled": true|false}

Memberships are managed on the projects (`/api/v1/projects/<name>/members`).
"""

from __future__ import annotations

from ..domain import access, auth
from .common import bearer_principal, ok
from .schemas.auth import UserAdminView, UserCreate, UserCreated, UserUpdate
from .smorest import BEARER, ApiBlueprint

blp = ApiBlueprint("users", __name__, url_prefix="/api/v1/users",
                   description="Users (platform admins)", security=BEARER, errors=(401, 403))


@blp.before_request
def _platform_admin() -> None:
    access.require_platform_admin(bearer_principal(), "Managing users")


@blp.route("", methods=["GET"])
@blp.response(200, UserAdminView(many=True))
def list_users():
    return ok([auth.user_admin_view(u) for u in auth.list_users()])


@blp.route("", methods=["POST"])
@blp.arguments(UserCreate)
@blp.response(201, UserCreated)
@blp.alt_response(409, response="CONFLICT")
def create_user(body: dict):
    user, token = auth.create_user(body["name"].strip(), body["email"].strip(), body.get("password"),
                                   is_admin=body["is_platform_admin"])
    return ok({**auth.user_admin_view(user), "sdk_token": token}, 201)


@blp.route("/<user_id:user_id>", methods=["PATCH"])
@blp.arguments(UserUpdate)
@blp.response(200, UserAdminView)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def update_user(body: dict, user_id: str):
    return ok(auth.user_admin_view(auth.set_disabled(auth.get_user(user_id), body["disabled"])))
