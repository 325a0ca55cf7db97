"""The second integration run (`SHIPYARD_TEST_BACKEND=postgres-s3`): every test server gets
its own PostgreSQL database and S3 bucket, on one PostgreSQL cluster and one S3-protocol
server shared by the whole pytest session (started on first use, stopped at exit)."""

from __future__ import annotations

import atexit
import os
import threading
import uuid
from pathlib import Path

BACKEND_VARIABLE = "SHIPYARD_TEST_BACKEND"
POSTGRES_S3 = "postgres-s3"

_lock = threading.Lock()
_servers: dict = {}


def selected() -> str:
    return os.environ.get(BACKEND_VARIABLE, "").strip().lower()


def _shared():
    from .servers import MotoServer, PostgresServer

    with _lock:
        if not _servers:
            try:
                pg = PostgresServer().start()
            except RuntimeError as exc:  # not installed and not installable here
                import pytest

                pytest.skip(f"{BACKEND_VARIABLE}={POSTGRES_S3}: {exc}")
            atexit.register(pg.stop)
            moto = MotoServer().start()
            atexit.register(moto.stop)
            _servers.update(pg=pg, moto=moto)
        return _servers["pg"], _servers["moto"]


_by_data_dir: dict[str, dict[str, str]] = {}


def server_env(data_dir: Path) -> dict[str, str]:
    """Environment variables for a test server under the selected backend ({} for the
    embedded default). Keyed by data folder: a server restarted on the same folder, or a
    second server sharing it, uses the same database and bucket, as with SQLite."""
    if selected() in ("", "local"):
        return {}
    if selected() != POSTGRES_S3:
        raise RuntimeError(f"{BACKEND_VARIABLE}={selected()!r}: use 'postgres-s3' or nothing")
    key = str(Path(data_dir).resolve())
    with _lock:
        if key in _by_data_dir:
            return dict(_by_data_dir[key])
    pg, moto = _shared()
    env = {"SHIPYARD_DATABASE_URL": pg.create_database()}
    env.update(moto.env(f"shipyard-{uuid.uuid4().hex[:12]}"))
    with _lock:
        return dict(_by_data_dir.setdefault(key, env))
