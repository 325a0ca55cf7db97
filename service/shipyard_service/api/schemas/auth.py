"""Control API: tokens and users (contract §2)."""

from __future__ import annotations

from marshmallow import fields

from . import Body, Out


class RefreshBody(Body):
    refresh_token = fields.String(required=True,
                                  metadata={"description": "An SDK token or an execution token"})


class AccessToken(Out):
    access_token = fields.String(required=True, metadata={"description": "JWT (exp, iat, sub)"})


class User(Out):
    id = fields.String(required=True)
    name = fields.String(required=True, allow_none=True)
    email = fields.String(required=True, allow_none=True)
