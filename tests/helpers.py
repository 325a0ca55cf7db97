"""Starting a real `shipyard serve` on a free loopback port, and talking to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A real server: gunicorn, SQLite under data_dir, local runner processes."""

    def __init__(self, data_dir: Path, port: int | None = None, env: dict | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> "ServerProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, **self.env)
        env.setdefault("SHIPYARD_UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shipyard_service.cli", "serve", "--data-dir",
             str(self.data_dir), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout_s}s: {self.log_path.read_text()[-3000:]}")

    @property
    def credentials(self) -> dict:
        return json.loads((self.data_dir / "credentials.json").read_text())

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)

    def kill9(self) -> None:
        """Kill only the gunicorn processes (master and worker), not the runners."""
        assert self.proc is not None
        import psutil

        parent = psutil.Process(self.proc.pid)
        workers = [c for c in parent.children() if "shipyard_runner" not in " ".join(c.cmdline())]
        for p in [parent, *workers]:
            try:
                p.kill()
            except psutil.Error:
                pass
        self.proc.wait(10)


class Api:
    """Plain HTTP calls with a bearer token, for wire-level tests."""

    def __init__(self, server: ServerProcess, sdk_token: str | None = None):
        self.server = server
        creds = server.credentials
        self.env_url = creds["environment_url"]
        self.sdk_token = sdk_token or creds["sdk_token"]
        self.session = requests.Session()
        self._token = None

    def token(self) -> str:
        if self._token is None:
            r = requests.post(self.server.url + "/api/v1/auth/refresh",
                              json={"refresh_token": self.sdk_token}, timeout=10)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        headers.setdefault("Authorization", f"Bearer {self.token()}")
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.env_url + "/api/v1" + path, headers=headers,
                                    **kwargs)


def assert_error(response: requests.Response, status: int, name: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) >= {"message", "name", "request_id", "additional_data"}, body
    assert isinstance(body["message"], str) and body["message"]
    if name:
        assert body["name"] == name, body
    return body


def write_files(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root
