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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh store's URL: a SQLite file in the test's folder, then a database of the
    module's PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg").create_database(request.module.__name__.split(".")[-1])
