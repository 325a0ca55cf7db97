"""Signed URLs runners (pods, sandboxed local runners) use to fetch files kept under the
API's data folder (build contexts, file inputs), valid without credentials and only for a
while. They are the URLs that `GET /signed/artifact` (api/signed.py) serves."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ..signing import Signer

# Must equal api/signed.py ARTIFACT_SALT (checked by a test): the API verifies these tokens.
ARTIFACT_SALT = "shipyard.artifact"


def artifact_url(settings: Settings, relative_path: str) -> str:
    token = Signer(settings.load_or_create_secret(), ARTIFACT_SALT).sign(
        {"path": str(relative_path)})
    return f"{settings.public_url}/signed/artifact?token={token}"


def remote_inputs(settings: Settings, inputs: dict) -> dict:
    """File inputs given as local paths under the data folder become signed URLs: a pod
    cannot read the API's disk."""
    if not any(isinstance(v, dict) and isinstance(v.get("path"), str) for v in inputs.values()):
        return inputs  # no file input (most low-latency calls): no path to resolve
    root = Path(settings.data_dir).resolve()
    result = {}
    for name, value in inputs.items():
        if isinstance(value, dict) and isinstance(value.get("path"), str):
            path = Path(value["path"]).resolve()
            if path.is_relative_to(root):
                value = {"url": artifact_url(settings, path.relative_to(root).as_posix())}
        result[name] = value
    return result
