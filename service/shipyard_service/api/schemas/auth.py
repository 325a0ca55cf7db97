"""Control API: tokens and users (contract §2)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from ...domain.auth import MIN_PASSWORD
from . import Body, Out, Strict, matching, non_blank


class RefreshBody(Body):
    refresh_token = fields.String(required=True,
                                  metadata={"description": "An SDK token or an execution token"})


class AccessToken(Out):
    access_token = fields.String(required=True, metadata={"description": "JWT (exp, iat, sub)"})


class User(Out):
    id = fields.String(required=True)
    name = fields.String(required=True, allow_none=True)
    email = fields.String(required=True, allow_none=True)


class UserAdminView(User):
    is_platform_admin = fields.Boolean(required=True)
    disabled = fields.Boolean(required=True)


class UserCreate(Strict):
    name = non_blank(required=True)
    email = matching(r"[^@]*@", "Not a valid email address.", required=True,
                     metadata={"description": "Holds an '@'"})
    password = fields.String(allow_none=True, validate=ma.validate.Length(min=MIN_PASSWORD),
                             metadata={"description": "For the web UI; at least "
                                                      f"{MIN_PASSWORD} characters"})
    is_platform_admin = fields.Boolean(load_default=False, truthy={True}, falsy={False})


class UserCreated(UserAdminView):
    sdk_token = fields.String(required=True, metadata={"description": "Shown only here"})


class UserUpdate(Strict):
    disabled = fields.Boolean(required=True, truthy={True}, falsy={False})
