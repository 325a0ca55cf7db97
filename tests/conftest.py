from __future__ import annotations

import pytest

from .helpers import Api, ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real server for the session's integration tests."""
    srv = ServerProcess(tmp_path_factory.mktemp("shipyard-data")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def api(server) -> Api:
    return Api(server)


@pytest.fixture()
def sdk(server, monkeypatch):
    from shipyard import CraftAiSdk

    creds = server.credentials
    return CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                      control_url=creds["control_url"])
