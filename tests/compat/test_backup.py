"""Backups: `shipyard admin backup` while the server runs under load (data store uploads and
pipeline runs in flight), `shipyard admin restore` on a fresh data folder, then the
restored platform serves what was there (same tokens, pipelines, executions, files) and
runs the Get Started part 4 (which reads the model part 2 stored in the data store)."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from ..helpers import ROOT, Api, ServerProcess, client_env, create_step_http
from .test_get_started import _folder_for, assert_part4


def _admin(data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shipyard_service.cli", "admin", "--data-dir",
                           str(data_dir), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


class Load:
    """Uploads and runs against the server until stopped; what finished, and when."""

    def __init__(self, server: ServerProcess):
        from shipyard import CraftAiSdk

        creds = server.credentials
        self.sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                              verbose_log=False)
        self.done: list[tuple[float, str, str]] = []  # (finished at, kind, name)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set() and n < 10_000:
            n += 1
            try:
                if n % 3:
                    path = f"load/object-{n}.txt"
                    self.sdk.upload_data_store_object(io.BytesIO(f"payload {n}".encode()), path)
                    self.done.append((time.time(), "object", path))
                else:
                    run = self.sdk.run_pipeline(pipeline_name="load")
                    self.done.append((time.time(), "execution", run["execution_id"]))
            except Exception as exc:  # noqa: BLE001 - recorded, asserted below
                self.errors.append(repr(exc))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(120)


@pytest.mark.slow
@pytest.mark.compat
@pytest.mark.timeout(1800)
def test_backup_under_load_restore_then_get_started_part4(client_python, tmp_path):
    source = ServerProcess(tmp_path / "source").start()
    backup_dir = tmp_path / "backup"
    try:
        env = client_env(source)
        folder = _folder_for("shipyard", tmp_path)
        done = subprocess.run(
            [str(client_python), str(ROOT / "tests" / "compat" / "get_started.py"), "shipyard",
             str(folder), str(tmp_path / "parts1-3.json")],
            env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        create_step_http(Api(source), "load", {"main.py": "def run():\n    return None\n"},
                         kind="pipelines")
        with Load(source) as load:
            time.sleep(3)
            started = time.time()
            backup = _admin(source.data_dir, "backup", str(backup_dir))
            ended = time.time()
            time.sleep(2)
        assert backup.returncode == 0, backup.stderr[-3000:]
        assert not load.errors, load.errors[:3]
        before = [(kind, name) for at, kind, name in load.done if at < started]
        during = [(kind, name) for at, kind, name in load.done if started <= at <= ended]
        assert {"object", "execution"} <= {kind for kind, _ in before}, load.done[:5]
        manifest = json.loads(backup.stdout)
        assert manifest["store"] == "sqlite" and manifest["objects"] > 0 and manifest["files"] > 0
        assert {"secret.key", "encryption.key", "credentials.json"} <= set(manifest["keys"])
        with sqlite3.connect(backup_dir / "store.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # A running server's folder is not restored over.
        refused = _admin(source.data_dir, "restore", str(backup_dir))
        assert refused.returncode != 0 and "stop it first" in refused.stderr, refused.stderr
    finally:
        source.stop()

    restored_dir = tmp_path / "restored"
    restore = _admin(restored_dir, "restore", str(backup_dir))
    assert restore.returncode == 0, restore.stderr[-3000:]
    assert json.loads(restore.stdout)["steps_to_rebuild"] >= 1  # environments are not copied
    server = ServerProcess(restored_dir).start()
    try:
        api = Api(server)  # the SDK token of the source platform still works
        creds = server.credentials
        assert creds["sdk_token"] == env["SHIPYARD_SDK_TOKEN"]
        assert creds["environment_url"].startswith(server.url)
        from shipyard import CraftAiSdk

        sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                         verbose_log=False)
        objects = {o["path"] for o in sdk.list_data_store_objects()}
        assert "get_started/models/iris_knn_model.joblib" in objects
        for kind, name in before:
            if kind == "object":
                assert name in objects, name
            else:
                body = api.request("GET", f"/executions/{name}").json()
                assert body["status"] == "Succeeded", body
        # What finished during the backup is there whole (its end recorded) or not at all.
        for kind, name in during:
            if kind == "execution":
                r = api.request("GET", f"/executions/{name}")
                assert r.status_code == 404 or r.json()["status"] in ("Succeeded", "Failed"), r.text
        # Steps are rebuilt at start (their environments were not in the backup), then run.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            step = api.request("GET", "/steps/part-3-irisio").json()
            if step["creation_info"]["status"] != "creation_pending":
                break
            time.sleep(1)
        assert step["creation_info"]["status"] == "ready", step
        while time.monotonic() < deadline:
            r = api.request("POST", "/pipelines/load/run", data={"json_inputs": "{}"})
            if r.status_code == 200:
                break
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        # Get Started part 4 against the restored platform, with the official flow.
        out4 = tmp_path / "observed4.json"
        done = subprocess.run(
            [str(client_python), str(ROOT / "tests" / "compat" / "get_started_part4.py"),
             "shipyard", str(folder), str(out4)],
            env=client_env(server), capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        assert_part4(json.loads(out4.read_text()))
    finally:
        server.stop()
