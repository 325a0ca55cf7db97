"""Who is logged in: the user id in the signed session cookie, plus a fingerprint of the
password hash so that changing the password ends the other sessions."""

from __future__ import annotations

import hashlib

from flask import g, session

from ..domain import auth
from ..errors import NotFound
from ..store.models import User


def fingerprint(user: User) -> str:
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def log_in(user: User) -> None:
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["fp"] = fingerprint(user)


def log_out() -> None:
    session.clear()


def current_user() -> User | None:
    if "ui_user" in g:
        return g.ui_user
    user = None
    user_id = session.get("user_id")
    if user_id:
        try:
            user = auth.get_user(user_id)
        except NotFound:
            user = None
        if user is not None and (user.disabled or session.get("fp") != fingerprint(user)):
            user = None
    g.ui_user = user
    return user
