"""One settings object, from arguments and environment variables, with embedded defaults."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, fields
from pathlib import Path


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"SHIPYARD_{name}", default)


BACKENDS_FILE = "backends.json"
BACKEND_KEYS = ("database_url", "datastore", "s3_endpoint", "s3_access_key", "s3_secret_key",
                "s3_bucket", "s3_secure", "s3_region", "s3_public_endpoint")


def _recall_backends(values: dict) -> None:
    """Fill what no variable set from the backends a previous `serve` recorded."""
    path = Path(values["data_dir"]) / BACKENDS_FILE
    if _env("DATABASE_URL") or os.environ.get("DATABASE_URL") or _env("DATASTORE") \
            or not path.is_file():
        return
    try:
        remembered = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for key in BACKEND_KEYS:
        if key in remembered:
            values[key] = remembered[key]


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _parse(name: str, kind: str, raw: str):
    """A variable's text as its field's type (annotations are strings here)."""
    if kind == "bool":
        return _flag(raw)
    if kind in ("int", "float"):
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ValueError(f"SHIPYARD_{name.upper()}={raw!r} is not a number") from None
    return raw


@dataclass
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    # Absolute base URL clients and runners use to reach this server (signed URLs, env URL).
    public_url: str = ""
    database_url: str = ""
    secret_key: str = ""
    access_token_lifetime_s: int = 3600
    signed_url_lifetime_s: int = 3600
    long_poll_s: float = 25.0
    max_step_folder_bytes: int = 5 * 1024 * 1024
    max_step_archive_members: int = 10_000  # files and folders in one step archive
    # Every request body but the streamed uploads (api/common.py `streamed_upload`).
    max_request_bytes: int = 16 * 1024 * 1024
    max_json_depth: int = 64  # nesting of JSON bodies and JSON form fields
    ui_session_lifetime_s: int = 12 * 3600  # the web UI's login (documented: 12 h)
    # Failed logins allowed per account and per client address within the window.
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_failure_window_s: int = 15 * 60
    max_io_bytes: int = 60_000
    threads: int = 64
    # How often the retention sweeper applies environments' retention policies.
    retention_interval_s: float = 600.0
    # How often the sort indexer writes the comparison's input/output sort keys of the
    # executions that ended since (sortindexer.py).
    sort_index_interval_s: float = 2.0
    uv_cache_dir: str | None = None
    # Step code sandbox in embedded mode (orchestrators/local/sandbox.py): auto (bubblewrap
    # when it runs here, else a warning and no sandbox), bwrap (required), off.
    sandbox: str = "auto"
    # Debian system dependencies of steps: install what is missing (root only), or refuse.
    allow_apt_install: bool = False
    # Comma-separated Fernet keys sealing secrets at rest; empty: DATA_DIR/encryption.key.
    encryption_key: str = ""
    # Steps from Git: host key policy (accept-new | strict) and the bound on each fetch.
    git_host_key_policy: str = "accept-new"
    git_timeout_s: float = 120.0
    # Where the web UI's npm assets are served from; empty: the UI package's node_modules.
    ui_node_modules: str = ""
    # Resource monitoring of this worker (monitoring/sampler.py).
    resource_sampling: bool = True
    resource_sample_s: float = 30.0
    resource_retention_s: float = 7 * 24 * 3600.0
    resource_max_rows: int = 500_000
    worker_name: str = ""  # empty: the host name
    # Elastic runners forked, each into a sandbox of its own, by a warm fork server per step
    # environment (orchestrators/local/forkservers.py): at most this many stay warm, the
    # least recently used retired first; 0: every elastic runner starts a new interpreter.
    fork_servers: int = 16
    # Backends, chosen by configuration only (see orchestrators/__init__.py and
    # datastore/__init__.py). The defaults are the embedded ones.
    orchestrator: str = "local"  # local | argo
    datastore: str = "local"  # local | s3
    # Argo Workflows / Kubernetes (SHIPYARD_ORCHESTRATOR=argo).
    argo_server: str = ""  # e.g. https://argo-server.argo:2746
    argo_token: str = ""  # bearer token for the Argo Server, if it asks for one
    # A file holding the token, re-read when it changes (a service account's projected
    # token, which the kubelet rotates); used when argo_token is empty.
    argo_token_file: str = ""
    argo_verify_tls: bool = True
    namespace: str = "shipyard"  # where workflows, deployments and secrets are created
    image_registry: str = ""  # where step images are pushed, e.g. registry.local:5000/shipyard
    kubeconfig: str = ""  # empty: in-cluster configuration (the API runs in a pod)
    builder_image: str = "gcr.io/kaniko-project/executor:v1.23.2"
    cuda_base_image: str = "{registry}/python-cuda:{python}-{cuda}"
    execution_timeout_s: int = 24 * 3600  # activeDeadlineSeconds of an elastic execution
    argo_poll_s: float = 1.0  # status synchronisation period
    # How the API reaches resident runners: `service` (cluster DNS, the API runs in the
    # cluster) or `proxy` (the Kubernetes API server's service proxy, from outside).
    dispatch_via: str = "service"
    # S3 / MinIO data store (SHIPYARD_DATASTORE=s3).
    s3_endpoint: str = ""  # host:port, no scheme
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "shipyard"
    s3_secure: bool = True
    s3_region: str = "us-east-1"
    # Where clients reach the object store, when not at s3_endpoint (presigned URLs embed
    # it), e.g. https://minio.example.com; empty: s3_endpoint.
    s3_public_endpoint: str = ""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'shipyard.db'}"

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        values = {
            "data_dir": _env("DATA_DIR", ".data"),
            "host": _env("HOST", "127.0.0.1"),
            "port": int(_env("PORT", "8000")),
            "public_url": _env("PUBLIC_URL", ""),
            "database_url": _env("DATABASE_URL", os.environ.get("DATABASE_URL", "")),
            "long_poll_s": float(_env("LONG_POLL_S", "25")),
            "retention_interval_s": max(0.1, float(_env("RETENTION_INTERVAL_S", "600"))),
            "sort_index_interval_s": max(0.1, float(_env("SORT_INDEX_INTERVAL_S", "2"))),
            "uv_cache_dir": _env("UV_CACHE_DIR"),
            "sandbox": _env("SANDBOX", "auto"),
            "max_request_bytes": int(_env("MAX_REQUEST_BYTES", str(16 * 1024 * 1024))),
            "secret_key": _env("SECRET_KEY", ""),
            "orchestrator": _env("ORCHESTRATOR", "local"),
            "datastore": _env("DATASTORE", "local"),
            "argo_server": _env("ARGO_SERVER", ""),
            "argo_token": _env("ARGO_TOKEN", ""),
            "argo_token_file": _env("ARGO_TOKEN_FILE", ""),
            "argo_verify_tls": _flag(_env("ARGO_VERIFY_TLS", "true")),
            "namespace": _env("NAMESPACE", "shipyard"),
            "image_registry": _env("IMAGE_REGISTRY", ""),
            "kubeconfig": _env("KUBECONFIG", os.environ.get("KUBECONFIG", "")),
            "builder_image": _env("BUILDER_IMAGE", Settings.builder_image),
            "cuda_base_image": _env("CUDA_BASE_IMAGE", Settings.cuda_base_image),
            "execution_timeout_s": int(_env("EXECUTION_TIMEOUT_S", str(24 * 3600))),
            "argo_poll_s": float(_env("ARGO_POLL_S", "1")),
            "dispatch_via": _env("DISPATCH_VIA", "service"),
            "s3_endpoint": _env("S3_ENDPOINT", ""),
            "s3_access_key": _env("S3_ACCESS_KEY", ""),
            "s3_secret_key": _env("S3_SECRET_KEY", ""),
            "s3_bucket": _env("S3_BUCKET", "shipyard"),
            "s3_secure": _flag(_env("S3_SECURE", "true")),
            "s3_region": _env("S3_REGION", "us-east-1"),
            "s3_public_endpoint": _env("S3_PUBLIC_ENDPOINT", ""),
        }
        # Every other field from its SHIPYARD_<NAME> variable, when set (docs/settings.md).
        for f in fields(cls):
            raw = _env(f.name.upper())
            if f.name not in values and raw not in (None, ""):
                values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        _recall_backends(values)
        return cls(**values)

    def remember_backends(self) -> None:
        """Record the store and data store `serve` uses (DATA_DIR/backends.json, mode 0600),
        so `shipyard admin --data-dir DIR` reaches the same database without repeating
        SHIPYARD_DATABASE_URL / SHIPYARD_S3_* (explicit variables still win)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / BACKENDS_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({key: getattr(self, key) for key in BACKEND_KEYS}, f)
        os.replace(tmp, path)

    def load_or_create_secret(self) -> str:
        """The signing key lives under the data dir so restarts keep tokens and URLs valid."""
        if self.secret_key:
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        self.secret_key = path.read_text().strip()
        return self.secret_key
