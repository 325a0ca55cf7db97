"""The second integration run (`SHIPYARD_TEST_BACKEND=postgres-s3`): every test server gets
its own PostgreSQL database and S3 bucket, on one PostgreSQL cluster and one S3-protocol
server shared by the whole pytest session (started on first use, stopped at exit)."""

from __future__ import annotations

import atexit
import os
import threading
import uuid

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
            pg = PostgresServer().start()
            atexit.register(pg.stop)
            moto = MotoServer().start()
            atexit.register(moto.stop)
            _servers.update(pg=pg, moto=moto)
        return _servers["pg"], _servers["moto"]


def server_env() -> dict[str, str]:
    """Environment variables for one new test server under the selected backend ({} for the
    embedded default)."""
    if selected() in ("", "local"):
        return {}
    if selected() != POSTGRES_S3:
        raise RuntimeError(f"{BACKEND_VARIABLE}={selected()!r}: use 'postgres-s3' or nothing")
    pg, moto = _shared()
    env = {"SHIPYARD_DATABASE_URL": pg.create_database()}
    env.update(moto.env(f"shipyard-{uuid.uuid4().hex[:12]}"))
    return env
