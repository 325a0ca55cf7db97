"""Metric values keep every bit of a double on SQLite and on PostgreSQL (where the columns
were `real`, 4 bytes, before migration 0015): recorded by real step code with our SDK, read
back with our SDK, and sorted by them in the comparison (store sort keys)."""

from __future__ import annotations

from shipyard import CraftAiSdk
from shipyard_service.domain import comparison
from shipyard_service.store import db as store_db
from shipyard_service.store.models import Environment

from ..helpers import Api, ServerProcess, create_step_http, run_and_wait

VALUES = [0.1 + 0.2, 123456789.12, 1e300, -1e-300, 0.30000000000000004 - 1e-16]

RECORDER = '''
from shipyard import CraftAiSdk

def run(value):
    sdk = CraftAiSdk()
    sdk.record_metric_value("score", float(value))
    sdk.record_list_metric_values("curve", [float(value), float(value)])
    return {}
'''


def test_metric_values_read_back_and_sort_exactly(database_url, tmp_path):
    server = ServerProcess(tmp_path / "data", env={"SHIPYARD_DATABASE_URL": database_url}).start()
    try:
        api = Api(server)
        body = create_step_http(api, "precise", {"main.py": RECORDER}, kind="pipelines",
                                fields={"inputs[0][name]": "value",
                                        "inputs[0][data_type]": "string"})
        assert body["creation_info"]["status"] == "ready", body
        runs = {}
        for value in VALUES:
            execution_id, out = run_and_wait(api, "precise", {"value": repr(value)})
            assert out.status_code == 200, out.text
            runs[execution_id] = value
        creds = server.credentials
        sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                         control_url=creds["control_url"])
        singles = {m["execution_id"]: m["value"] for m in sdk.get_metrics(name="score")}
        lists = {m["execution_id"]: m["values"] for m in sdk.get_list_metrics(name="curve")}
    finally:
        server.stop()
    assert singles == runs
    assert repr(sorted(singles.values())) == repr(sorted(VALUES))
    assert lists == {e: [v, v] for e, v in runs.items()}

    ranked = sorted(runs, key=runs.get)
    db = store_db.init_db(database_url)
    with db.connection_context():
        env = Environment.get()
        for sort, aggregation in (("m:score", "last"), ("lm:curve", "last"),
                                  ("lm:curve", "min"), ("lm:curve", "max"),
                                  ("lm:curve", "mean")):
            for descending in (False, True):
                page = comparison.page_of(env, comparison.Filters(), sort, descending, 1, 25,
                                          aggregation)
                found = [x.execution_id for x in page.executions]
                assert found == (ranked[::-1] if descending else ranked), (sort, aggregation)
    db.close()
