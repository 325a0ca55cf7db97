"""One settings object, from arguments and environment variables, with embedded defaults."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"SHIPYARD_{name}", default)


@dataclass
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    # Absolute base URL clients and runners use to reach this server (signed URLs, env URL).
    public_url: str = ""
    database_url: str = ""
    secret_key: str = ""
    access_token_lifetime_s: int = 3600
    signed_url_lifetime_s: int = 3600
    long_poll_s: float = 25.0
    max_step_folder_bytes: int = 5 * 1024 * 1024
    max_io_bytes: int = 60_000
    threads: int = 64
    uv_cache_dir: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'shipyard.db'}"

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        values = {
            "data_dir": _env("DATA_DIR", ".data"),
            "host": _env("HOST", "127.0.0.1"),
            "port": int(_env("PORT", "8000")),
            "public_url": _env("PUBLIC_URL", ""),
            "database_url": _env("DATABASE_URL", os.environ.get("DATABASE_URL", "")),
            "long_poll_s": float(_env("LONG_POLL_S", "25")),
            "uv_cache_dir": _env("UV_CACHE_DIR"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def load_or_create_secret(self) -> str:
        """The signing key lives under the data dir so restarts keep tokens and URLs valid."""
        if self.secret_key:
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        self.secret_key = path.read_text().strip()
        return self.secret_key
