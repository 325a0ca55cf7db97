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
        # SHIPYARD_TEST_BACKEND=postgres-s3: this server's own database and bucket, kept
        # across restarts of the same ServerProcess (tests/backends/session.py).
        from .backends.session import server_env

        self.env = {**server_env(self.data_dir), **self.env}
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> ServerProcess:
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


def make_archive(files: dict[str, str | bytes]) -> bytes:
    """A step archive as the client builds it: gzip tar, members named by relative path."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def create_step_http(api: Api, name: str, files: dict, function_path: str = "main.py",
                     function_name: str = "run", fields: dict | None = None,
                     kind: str = "steps", wait: bool = True) -> dict:
    """POST a step (or a pipeline from a function) as multipart, then wait until settled."""
    name_field = "step_name" if kind == "steps" else "pipeline_name"
    data = {name_field: name, "function_path": function_path, "function_name": function_name}
    data.update(fields or {})
    r = api.request("POST", f"/{kind}", data=data,
                    files={"step_file": ("step_file", make_archive(files))})
    assert r.status_code in (200, 201), r.text
    if not wait:
        return r.json()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        got = api.request("GET", f"/{kind}/{name}?wait_for_completion=true")
        assert got.status_code == 200, got.text
        body = got.json()
        if body["creation_info"]["status"] != "creation_pending":
            return body
    raise AssertionError(f"{name} still pending")


def run_and_wait(api: Api, pipeline: str, inputs: dict | None = None, files: dict | None = None,
                 **fields) -> tuple[str, requests.Response]:
    data = {"json_inputs": json.dumps(inputs or {})}
    for key, value in fields.items():
        data[key] = json.dumps(value)
    r = api.request("POST", f"/pipelines/{pipeline}/run", data=data, files=files)
    assert r.status_code == 200, r.text
    execution_id = r.json()["execution_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = api.request("GET", f"/executions/{execution_id}/outputs?wait_for_completion=true")
        if out.status_code != 307:
            return execution_id, out
    raise AssertionError("execution did not finish")


def wait_ended(api: Api, execution_id: str, timeout_s: float = 60) -> dict:
    """The execution's record once it is no longer Pending or Running (plain HTTP)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = api.request("GET", f"/executions/{execution_id}").json()
        if body["status"] not in ("Pending", "Running"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"{execution_id} still {body['status']}")


def client_env(server: ServerProcess) -> dict:
    """The environment a client script needs: both SDKs read their own variable names."""
    creds = server.credentials
    env = dict(os.environ)
    for prefix in ("CRAFT_AI", "SHIPYARD"):
        env[f"{prefix}_ENVIRONMENT_URL"] = creds["environment_url"]
        env[f"{prefix}_SDK_TOKEN"] = creds["sdk_token"]
        env[f"{prefix}_CONTROL_URL"] = creds["control_url"]
    return env
