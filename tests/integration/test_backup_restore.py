"""`shipyard admin backup` of a running server and `restore` on a fresh data folder, on the
selected backends (SQLite + local files by default; PostgreSQL with pg_dump/pg_restore and
an S3 data store in the postgres-s3 pass): records, data store objects, secrets sealed at
rest and tokens come back, and steps run again (their environments are rebuilt)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

from ..backends.session import server_env
from ..helpers import ROOT, Api, ServerProcess, create_step_http, run_and_wait

QUICK = "import os\ndef run():\n    return {'o': os.environ.get('GREETING', '')}\n"


def _admin(data_dir, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **server_env(data_dir)}
    return subprocess.run([sys.executable, "-m", "shipyard_service.cli", "admin", "--data-dir",
                           str(data_dir), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def _sdk(server: ServerProcess):
    from shipyard import CraftAiSdk

    creds = server.credentials
    return CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                      verbose_log=False)


def test_backup_then_restore_on_a_fresh_folder(tmp_path):
    source = ServerProcess(tmp_path / "source").start()
    try:
        api = Api(source)
        create_step_http(api, "quick", {"main.py": QUICK}, kind="pipelines",
                         fields={"outputs[0][name]": "o", "outputs[0][data_type]": "string"})
        sdk = _sdk(source)
        sdk.create_or_update_environment_variable("GREETING", "sealed hello")
        execution_id, out = run_and_wait(api, "quick")
        assert out.json()["outputs"][0]["value"] == "sealed hello"
        sdk.upload_data_store_object(io.BytesIO(b"kept bytes"), "backup/kept.txt")
        done = _admin(source.data_dir, "backup", str(tmp_path / "backup"))
        assert done.returncode == 0, done.stderr[-3000:]
        manifest = json.loads(done.stdout)
        backends = server_env(source.data_dir)
        assert manifest["store"] == ("postgresql" if backends else "sqlite")
        assert manifest["datastore"] == ("s3" if backends else "local")
        assert manifest["objects"] >= 1 and "encryption.key" in manifest["keys"]
        again = _admin(source.data_dir, "backup", str(tmp_path / "backup"))
        assert again.returncode != 0 and "not empty" in again.stderr
    finally:
        source.stop()

    restored = tmp_path / "restored"
    done = _admin(restored, "restore", str(tmp_path / "backup"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["steps_to_rebuild"] == 1
    server = ServerProcess(restored).start()
    try:
        api = Api(server)
        assert server.credentials["sdk_token"] == api.sdk_token
        body = api.request("GET", f"/executions/{execution_id}").json()
        assert body["status"] == "Succeeded", body
        sdk = _sdk(server)
        assert {"name": "GREETING", "value": "sealed hello"} in [
            {"name": v["name"], "value": v["value"]} for v in sdk.list_environment_variables()]
        buffer = io.BytesIO()
        sdk.download_data_store_object("backup/kept.txt", buffer)
        assert buffer.getvalue() == b"kept bytes"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            step = api.request("GET", "/pipelines/quick").json()
            r = api.request("POST", "/pipelines/quick/run", data={"json_inputs": "{}"})
            if r.status_code == 200:
                break
            time.sleep(0.5)
        _, out = run_and_wait(api, "quick")
        assert out.json()["outputs"][0]["value"] == "sealed hello", step
    finally:
        server.stop()
