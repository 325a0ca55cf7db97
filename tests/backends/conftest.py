"""A PostgreSQL cluster for the tests of this folder that run on both databases."""

from __future__ import annotations

import pytest

from .servers import PostgresServer


@pytest.fixture(scope="module")
def pg():
    try:
        server = PostgresServer().start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()
