"""Users, SDK tokens, execution tokens and the JWT access tokens minted from them."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized
from ..store.db import utcnow
from ..store.models import Execution, LoginFailure, StepExecution, User
from .deferred import DeferredRows
from .lifecycle import ACTIVE


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, or a running execution acting for the user who started it."""

    user_id: str
    execution_id: str | None = None
    environment_id: int | None = None
    is_admin: bool = False  # a platform admin (users, projects, every project's admin role)

    @property
    def in_execution(self) -> bool:
        return self.execution_id is not None


# The web UI's passwords (the SDK signs in with its token instead).
MIN_PASSWORD = 8


def _check_password_rule(password: str | None) -> None:
    if password is not None and len(password) < MIN_PASSWORD:
        raise BadRequest(f"A password needs at least {MIN_PASSWORD} characters",
                         {"field": "password"})


def create_user(name: str, email: str, password: str | None = None, is_admin: bool = False):
    """Create a user; returns (user, sdk_token). The token is shown once, stored hashed.
    Every way of creating one (API, web UI, `shipyard admin create-user`) comes here."""
    if not name or not email or "@" not in email:
        raise BadRequest("A user needs a name and a valid email")
    _check_password_rule(password)
    if User.select().where(User.email == email).exists():
        raise Conflict(f"User '{email}' already exists", {"email": email})
    token = new_secret("sdk")
    user = User.create(
        id=str(uuid.uuid4()),
        name=name,
        email=email,
        password_hash=generate_password_hash(password) if password else None,
        sdk_token_hash=hash_token(token),
        is_admin=is_admin,
    )
    return user, token


def principal_of(user: User) -> Principal:
    """The web UI's caller: the logged-in user."""
    return Principal(user_id=user.id, is_admin=bool(user.is_admin))


def find_user(email: str) -> User:
    user = User.get_or_none(User.email == email)
    if user is None:
        raise NotFound(f"No user with email '{email}'", {"email": email})
    return user


def list_users() -> list[User]:
    return list(User.select().order_by(User.email))


def set_disabled(user: User, disabled: bool = True) -> User:
    """A disabled user can no longer sign in nor use its tokens; its rows stay."""
    if disabled and user.is_admin and not User.select().where(
            User.is_admin & ~User.disabled & (User.id != user.id)).exists():
        raise Conflict("The last platform admin cannot be disabled", {"email": user.email})
    User.update(disabled=disabled).where(User.id == user.id).execute()
    user.disabled = disabled
    return user


def regenerate_sdk_token(user: User) -> str:
    """A new SDK token; the old one and every access token minted from it stop working."""
    token = new_secret("sdk")
    User.update(
        sdk_token_hash=hash_token(token), token_generation=User.token_generation + 1
    ).where(User.id == user.id).execute()
    return token


def set_password(user: User, password: str) -> None:
    _check_password_rule(password or "")
    User.update(password_hash=generate_password_hash(password)).where(User.id == user.id).execute()


@functools.cache
def _decoy_hash() -> str:
    """A hash checked when the email is unknown (or has no password), so that answering
    takes as long as for a known account: timing does not tell which emails exist."""
    return generate_password_hash(secrets.token_urlsafe(16))


def check_password(email: str, password: str) -> User | None:
    user = User.get_or_none(User.email == email)
    stored = user.password_hash if user is not None and user.password_hash else None
    matches = check_password_hash(stored or _decoy_hash(), password)
    return user if stored and matches and not user.disabled else None


class LoginThrottle:
    """Failed logins counted per account and per client address over a sliding window, in
    the store (LoginFailure): past either limit, logins are refused (429) until the oldest
    failure ages out, even with the right password."""

    def __init__(self, per_account: int, per_address: int, window_s: float,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.limits = {"account": per_account, "address": per_address}
        self.window = dt.timedelta(seconds=window_s)
        self.clock = clock

    @staticmethod
    def _keys(email: str, address: str) -> dict[str, str]:
        return {"account": f"account:{email.strip().lower()[:200]}",
                "address": f"address:{address[:64]}"}

    def check(self, email: str, address: str) -> None:
        now = self.clock()
        for kind, key in self._keys(email, address).items():
            recent = (LoginFailure.select(LoginFailure.at)
                      .where((LoginFailure.key == key) & (LoginFailure.at > now - self.window))
                      .order_by(LoginFailure.at.desc()).limit(self.limits[kind]))
            times = [row.at for row in recent]
            if len(times) >= self.limits[kind]:
                wait = int((times[-1] + self.window - now).total_seconds()) + 1
                raise TooManyRequests(
                    f"Too many failed logins for this {kind}: try again in {wait} s",
                    {"retry_after_s": wait})

    def record(self, email: str, address: str, succeeded: bool) -> None:
        keys = self._keys(email, address)
        now = self.clock()
        with LoginFailure._meta.database.atomic():
            if succeeded:
                LoginFailure.delete().where(LoginFailure.key == keys["account"]).execute()
                return
            LoginFailure.insert_many([{"key": key, "at": now} for key in keys.values()]).execute()
            # Old failures count no more: dropped as new ones come (the table stays small).
            LoginFailure.delete().where(LoginFailure.at <= now - self.window).execute()


def log_in(throttle: LoginThrottle, email: str, password: str, address: str) -> User | None:
    """The user whose email and password these are, None if wrong; TooManyRequests when
    the account or the address failed too often lately."""
    throttle.check(email, address)
    user = check_password(email, password)
    throttle.record(email, address, user is not None)
    return user


def get_user(user_id: str) -> User:
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound(f"User '{user_id}' not found", {"user_id": user_id})
    return user


def user_to_dict(user: User) -> dict:
    return {"id": user.id, "name": user.name, "email": user.email}


def user_admin_view(user: User) -> dict:
    """What platform admins see of a user (never a hash)."""
    return {**user_to_dict(user), "is_platform_admin": bool(user.is_admin),
            "disabled": bool(user.disabled)}


class TokenService:
    """Mints and checks access tokens. Refresh tokens are SDK tokens or execution tokens."""

    def __init__(self, secret: str, lifetime_s: int, deferred: DeferredRows | None = None):
        self._secret = secret
        self._lifetime_s = lifetime_s
        self._deferred = deferred

    def refresh(self, refresh_token: object) -> str:
        if not isinstance(refresh_token, str) or not refresh_token:
            raise Unauthorized("Missing refresh_token")
        digest = hash_token(refresh_token)
        user = User.get_or_none(User.sdk_token_hash == digest)
        if user is not None and user.disabled:
            raise Unauthorized("This user is disabled")
        if user is not None:
            return self._mint({"sub": user.id, "gen": user.token_generation})
        if self._deferred is not None:
            # The step's SDK, during a low-latency call whose row is not written yet.
            self._deferred.materialize_token(digest)
        execution = Execution.get_or_none(Execution.token_hash == digest)
        if execution is None:  # a step's token: it acts for its execution
            # (A retry on a backend running the graph keeps the token: the newest attempt.)
            step = (StepExecution.select().where(StepExecution.token_hash == digest)
                    .order_by(StepExecution.attempt.desc()).first())
            if step is not None and step.status in ACTIVE:
                execution = Execution.get_or_none(Execution.execution_id == step.execution_id)
        if execution is not None and execution.status in ACTIVE:
            return self._mint(
                {
                    "sub": execution.created_by or "",
                    "exe": execution.execution_id,
                    "env": execution.environment_id,
                }
            )
        raise Unauthorized("Invalid or revoked token")

    def _mint(self, claims: dict) -> str:
        now = int(time.time())
        payload = {**claims, "iat": now, "exp": now + self._lifetime_s}
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def authenticate(self, access_token: str) -> Principal:
        try:
            claims = jwt.decode(access_token, self._secret, algorithms=["HS256"])
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("Access token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("Invalid access token") from exc
        if "exe" in claims:
            return self.execution_principal(claims["exe"], claims.get("sub", ""))
        user = User.get_or_none(User.id == claims.get("sub"))
        if user is None or user.token_generation != claims.get("gen"):
            raise Unauthorized("Access token revoked")
        if user.disabled:
            raise Unauthorized("This user is disabled")
        return Principal(user_id=user.id, is_admin=bool(user.is_admin))

    @staticmethod
    def execution_principal(execution_id: str, user_id: str) -> Principal:
        execution = Execution.get_or_none(Execution.execution_id == execution_id)
        if execution is None or execution.status not in ACTIVE:
            raise Unauthorized("The execution this token belongs to has ended")
        return Principal(
            user_id=user_id or execution.created_by or "",
            execution_id=execution_id,
            environment_id=execution.environment_id,
        )

    def runner_principal(self, execution_id: str, raw_token: str) -> Execution:
        """Runner callbacks: the raw execution token, valid while the execution runs. In a
        multi-step execution the token is one step's: `execution.step_run` is its row."""
        digest = hash_token(raw_token)
        if self._deferred is not None:
            # A low-latency call still without its row (deferred.py) gets it now; only its
            # own token does that.
            self._deferred.materialize_token(digest)
        execution = Execution.get_or_none(Execution.execution_id == execution_id)
        if execution is None:
            raise Unauthorized("Unknown execution")
        execution.step_run = None
        if execution.token_hash:
            if not secrets.compare_digest(execution.token_hash, digest):
                raise Unauthorized("Invalid execution token")
        else:
            # A retry on a backend that runs the graph keeps its token: the newest attempt.
            step = (StepExecution.select()
                    .where((StepExecution.execution == execution_id)
                           & (StepExecution.token_hash == digest))
                    .order_by(StepExecution.attempt.desc()).first())
            if step is None:
                raise Unauthorized("Invalid execution token")
            if step.status not in ACTIVE:
                raise Unauthorized("The step has ended")
            execution.step_run = step
        if execution.status not in ACTIVE:
            raise Unauthorized("The execution has ended")
        return execution
