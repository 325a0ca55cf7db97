"""Retention (issue 16): an environment's policy, off by default, set through the control
API; the server's sweeper then removes finished executions past it with their logs, metrics
and files, and never a pending or running one.

The executions are written straight into the real server's store (a year of executions
cannot be run in a test); everything else goes through the running server."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
from shipyard_service.store import db as store_db
from shipyard_service.store.models import (
    Environment,
    Execution,
    ExecutionLog,
    ListMetric,
    ListMetricChunk,
    Metric,
    Project,
)

from ..helpers import Api, ServerProcess, assert_error

NOW = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
# (execution id, deployment, status, age)
SEEDED = [
    ("old-done", None, "Succeeded", dt.timedelta(days=40)),
    ("old-failed", None, "Failed", dt.timedelta(days=31)),
    ("old-running", None, "Running", dt.timedelta(days=40)),
    ("old-pending", None, "Pending", dt.timedelta(days=35)),
    ("recent", None, "Succeeded", dt.timedelta(days=1)),
    ("dep-0", "nightly", "Running", dt.timedelta(hours=5)),
    ("dep-1", "nightly", "Succeeded", dt.timedelta(hours=4)),
    ("dep-2", "nightly", "Failed", dt.timedelta(hours=3)),
    ("dep-3", "nightly", "Succeeded", dt.timedelta(hours=2)),
    ("dep-4", "nightly", "Succeeded", dt.timedelta(hours=1)),
    ("other-0", "hourly", "Succeeded", dt.timedelta(hours=2)),
]
REMOVED = {"old-done", "old-failed", "dep-1", "dep-2"}


@pytest.fixture
def server(tmp_path):
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_RETENTION_INTERVAL_S": "0.3"})
    server.start()
    yield server
    server.stop()


def _seed(server: ServerProcess) -> None:
    url = server.env.get("SHIPYARD_DATABASE_URL") or f"sqlite:///{server.data_dir / 'shipyard.db'}"
    db = store_db.init_db(url)
    with db.connection_context():
        env = (Environment.select().join(Project)
               .where((Project.name == "default") & (Environment.name == "dev")).get())
        for execution_id, deployment, status, age in SEEDED:
            created = NOW - age
            Execution.create(execution_id=execution_id, environment=env, pipeline_name="p",
                             deployment_name=deployment, status=status, created_at=created,
                             inputs=[], outputs=[])
            ExecutionLog.create(execution=execution_id, timestamp=created, message="hello")
            Metric.create(environment=env, execution_id=execution_id, pipeline_name="p",
                          deployment_name=deployment, name="accuracy", value=0.5)
            header = ListMetric.create(environment=env, execution_id=execution_id,
                                       pipeline_name="p", deployment_name=deployment,
                                       name="loss", count=2)
            ListMetricChunk.create(list_metric=header, values=[1.0, 0.5])
            folder = server.data_dir / "executions" / execution_id
            folder.mkdir(parents=True)
            (folder / "outputs.json").write_text("{}")
    db.close()


def _rows(server: ServerProcess) -> dict[str, set[str]]:
    url = server.env.get("SHIPYARD_DATABASE_URL") or f"sqlite:///{server.data_dir / 'shipyard.db'}"
    db = store_db.init_db(url)
    with db.connection_context():
        found = {
            "executions": {e for (e,) in Execution.select(Execution.execution_id).tuples()},
            "logs": {e for (e,) in ExecutionLog.select(ExecutionLog.execution).tuples()},
            "metrics": {e for (e,) in Metric.select(Metric.execution_id).tuples()},
            "lists": {e for (e,) in ListMetric.select(ListMetric.execution_id).tuples()},
            "chunks": {e for (e,) in ListMetricChunk.select(ListMetric.execution_id)
                       .join(ListMetric).tuples()},
        }
    db.close()
    return found


def _control(server: ServerProcess, api: Api, method: str, path: str,
             **kwargs) -> requests.Response:
    return requests.request(method, f"{server.url}/api/v1/projects{path}",
                            headers={"Authorization": f"Bearer {api.token()}"}, timeout=30,
                            **kwargs)


def test_retention_policy_removes_old_and_surplus_finished_executions(server):
    api = Api(server)
    _seed(server)
    everything = {e for e, *_ in SEEDED}
    url = "/default/environments/dev/retention"

    # Off by default: sweeps run (every 0.3 s) and remove nothing.
    policy = _control(server, api, "GET", url)
    assert policy.status_code == 200, policy.text
    assert policy.json() == {"keep_days": None, "keep_last_per_deployment": None,
                             "enabled": False}
    time.sleep(1.5)
    assert _rows(server)["executions"] == everything

    # Hostile input: clear 4xx in the error shape, the policy unchanged.
    for body in ({"keep_days": 0}, {"keep_days": "30"}, {"keep_days": 1.5},
                 {"keep_last_per_deployment": -1}, {"keep_days": True}, {"unknown": 1}, []):
        assert_error(_control(server, api, "PUT", url, json=body), 400)
    assert_error(_control(server, api, "PUT", "/default/environments/nope/retention",
                          json={"keep_days": 3}), 404)
    assert _control(server, api, "GET", url).json()["enabled"] is False

    changed = _control(server, api, "PUT", url,
                       json={"keep_days": 30, "keep_last_per_deployment": 2})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"keep_days": 30, "keep_last_per_deployment": 2, "enabled": True}

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _rows(server)["executions"] != everything - REMOVED:
        time.sleep(0.2)
    rows = _rows(server)
    kept = everything - REMOVED
    # Running and pending ones stay whatever their age or rank; so do the newest two of
    # each deployment and the recent ones.
    assert rows["executions"] == kept
    for table in ("logs", "metrics", "lists", "chunks"):
        assert rows[table] == kept, table
    for execution_id in everything:
        assert (server.data_dir / "executions" / execution_id).exists() == (
            execution_id in kept), execution_id
    # What the API shows agrees.
    assert api.request("GET", "/executions/old-done").status_code == 404
    assert api.request("GET", "/executions/old-running").status_code == 200
    metrics = api.request("GET", "/metrics/single-value", params={
        "filters[deployment_name]": "nightly", "items_per_page": 100, "page": 1}).json()
    assert {m["execution_id"] for m in metrics["metrics"]} == {"dep-0", "dep-3", "dep-4"}

    # Turned off again: nothing more goes, even what the old policy would remove.
    off = _control(server, api, "PUT", url, json={"keep_days": None,
                                                  "keep_last_per_deployment": None})
    assert off.json()["enabled"] is False
