"""Encryption at rest for the secrets users hand over: deploy keys and environment-variable
values. Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a server key.

The key comes from `SHIPYARD_ENCRYPTION_KEY` (one or more comma-separated Fernet keys: the
first encrypts, all decrypt, which allows rotation), else from `DATA_DIR/encryption.key`,
generated with mode 0600 on the first start. Every API process sharing a database (several
replicas, PostgreSQL) must use the same key: set the variable there.

Sealed values are stored as `fernet:<token>`; a value without that prefix is a legacy
clear-text value (written before encryption existed) and is sealed again at start-up.

Which box seals and opens: the one bound in the current context (an app binds its own for
its requests and the threads it owns, see appstate.py), else the process default
(`configure`: the admin commands, the serving process's one app)."""

from __future__ import annotations

import contextvars
import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .binding import Binding
from .errors import ShipyardError

PREFIX = "fernet:"
KEY_FILE = "encryption.key"
KEY_ENV = "SHIPYARD_ENCRYPTION_KEY"


class SecretsUnavailable(ShipyardError):
    """A stored secret cannot be opened: the server's key is not the one that sealed it."""

    status_code = 500
    name = "SecretsUnavailable"


class SecretBox:
    def __init__(self, keys: list[bytes]):
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored  # legacy clear text, sealed again at the next start
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise SecretsUnavailable(
                "A stored secret cannot be decrypted with this server's encryption key "
                f"(check {KEY_ENV} or DATA_DIR/{KEY_FILE})"
            ) from exc


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def load_keys(data_dir: Path, configured: str = "") -> list[bytes]:
    """The configured keys (Settings.encryption_key), else the key file, made on first use."""
    configured = (configured or "").strip()
    if configured:
        keys = [k.strip().encode() for k in configured.split(",") if k.strip()]
        for key in keys:
            try:
                Fernet(key)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"{KEY_ENV} must hold Fernet keys (32 url-safe base64-encoded bytes), "
                    "e.g. from `python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`"
                ) from exc
        return keys
    path = Path(data_dir) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return [path.read_bytes().strip()]


_box: SecretBox | None = None
_guard = threading.Lock()
_bound: contextvars.ContextVar[SecretBox | None] = contextvars.ContextVar(
    "shipyard_secret_box", default=None)


def configure(data_dir: Path, configured: str = "") -> SecretBox:
    """Load the key as this process's default (idempotent for the same configuration)."""
    global _box
    with _guard:
        _box = SecretBox(load_keys(data_dir, configured))
        return _box


def make_default(secret_box: SecretBox) -> None:
    """`secret_box` for code that runs outside any binding (the serving process's one app)."""
    global _box
    with _guard:
        _box = secret_box


def bind_box(secret_box: SecretBox) -> Binding[SecretBox]:
    """Within the block (this thread, this context), secrets are sealed and opened with
    `secret_box`."""
    return Binding(_bound, secret_box)


def box() -> SecretBox:
    bound = _bound.get()
    if bound is not None:
        return bound
    if _box is None:
        raise RuntimeError("no encryption key: shipyard_service.crypto.configure() was not "
                           "called in this process, nor an app's key bound")
    return _box


def seal(plaintext: str) -> str:
    return box().seal(plaintext)


def open_sealed(stored: str) -> str:
    return box().open(stored)
