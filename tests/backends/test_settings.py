"""Backend settings: chosen by variables, and remembered by `serve` for `shipyard admin`."""

from __future__ import annotations

import json
import os
import stat

from shipyard_service.config import BACKENDS_FILE, Settings


def _clear(monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith("SHIPYARD_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def test_backends_come_from_variables(monkeypatch, tmp_path):
    _clear(monkeypatch)
    monkeypatch.setenv("SHIPYARD_DATASTORE", "s3")
    monkeypatch.setenv("SHIPYARD_S3_SECURE", "false")
    monkeypatch.setenv("SHIPYARD_ORCHESTRATOR", "argo")
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", "postgresql://u@127.0.0.1:1/db")
    settings = Settings.from_env(data_dir=str(tmp_path))
    assert (settings.datastore, settings.s3_secure, settings.orchestrator) == ("s3", False, "argo")
    assert settings.database_url == "postgresql://u@127.0.0.1:1/db"


def test_admin_finds_the_store_serve_used(monkeypatch, tmp_path):
    _clear(monkeypatch)
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/db")
    monkeypatch.setenv("SHIPYARD_DATASTORE", "s3")
    monkeypatch.setenv("SHIPYARD_S3_ENDPOINT", "127.0.0.1:9000")
    Settings.from_env(data_dir=str(tmp_path)).remember_backends()
    path = tmp_path / BACKENDS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it may hold a password
    assert json.loads(path.read_text())["database_url"] == "postgresql://u:pw@127.0.0.1:1/db"

    _clear(monkeypatch)  # `shipyard admin --data-dir DIR` with no variables
    recalled = Settings.from_env(data_dir=str(tmp_path))
    assert recalled.database_url == "postgresql://u:pw@127.0.0.1:1/db"
    assert (recalled.datastore, recalled.s3_endpoint) == ("s3", "127.0.0.1:9000")

    monkeypatch.setenv("SHIPYARD_DATABASE_URL", "sqlite:///elsewhere.db")  # variables win
    assert Settings.from_env(data_dir=str(tmp_path)).database_url == "sqlite:///elsewhere.db"

    path.write_text("{not json")  # a damaged file is ignored, not fatal
    _clear(monkeypatch)
    assert Settings.from_env(data_dir=str(tmp_path)).database_url.startswith("sqlite:///")
