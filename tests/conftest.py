from __future__ import annotations

import os

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure, except for tests that cannot run on a CI machine
    (marker `cluster`: a real Kubernetes with Argo) or that a run leaves out on purpose
    (a `skipif` on a stated condition, e.g. the SQLite-only tests in the PostgreSQL pass):
    a user's clone must not silently lose tests because something was missing."""
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI") == "true"
            and item.get_closest_marker("cluster") is None
            and item.get_closest_marker("skipif") is None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where this test must run: {reason}"
