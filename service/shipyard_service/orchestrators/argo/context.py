"""The build context of a step image, as worker_image/Dockerfile expects it:

    Dockerfile          worker_image/Dockerfile
    shipyard_runner/    the runner (standard library only)
    sdk/shipyard/       the SDK, so `from shipyard import CraftAiSdk` works in step code
    requirements.txt    the step's requirements (may be empty)
    code/               the step's files

The archive is reproducible (sorted members, fixed owner and times, gzip without a
timestamp): the same step gives the same bytes, hence the same digest, image tag and
template name, and an unchanged step is never rebuilt.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..base import BuildRequest

REPO = Path(__file__).resolve().parents[4]


class ContextError(Exception):
    """The step's files cannot make a build context (reported as a build failure)."""


def _package_dir(name: str, fallback: Path) -> Path:
    spec = importlib.util.find_spec(name)
    if spec and spec.origin:
        return Path(spec.origin).resolve().parent
    return fallback


def dockerfile_path() -> Path:
    return REPO / "worker_image" / "Dockerfile"


@dataclass(frozen=True)
class BuildContext:
    data: bytes  # .tar.gz
    digest: str  # sha256 of the uncompressed tar


def _add_tree(tar: tarfile.TarFile, source: Path, arcname: str) -> None:
    for path in sorted(source.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        if path.is_symlink():
            continue  # unpacked with the "data" filter upstream; never follow out of the tree
        _add_file(tar, path, f"{arcname}/{path.relative_to(source).as_posix()}")


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = tarfile.TarInfo(arcname)
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    data = path.read_bytes()
    _add_bytes(tar, arcname, data, 0o755 if os.access(path, os.X_OK) else 0o644)


def _add_bytes(tar: tarfile.TarFile, arcname: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(arcname)
    info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
    tar.addfile(info, io.BytesIO(data))


def requirements_text(request: BuildRequest) -> bytes:
    if not request.requirements_path:
        return b""
    root = request.code_dir.resolve()
    path = (root / request.requirements_path.lstrip("/")).resolve()
    if not path.is_relative_to(root):
        raise ContextError("requirements_path must stay inside the step's folder")
    return path.read_bytes() if path.is_file() else b""


def build_context(request: BuildRequest) -> BuildContext:
    if not request.code_dir.is_dir():
        raise ContextError(f"The step's files are missing ({request.code_dir})")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "Dockerfile", dockerfile_path().read_bytes())
        _add_tree(tar, _package_dir("shipyard_runner", REPO / "worker_image" / "shipyard_runner"),
                  "shipyard_runner")
        _add_tree(tar, _package_dir("shipyard", REPO / "sdk" / "shipyard"), "sdk/shipyard")
        _add_bytes(tar, "requirements.txt", requirements_text(request))
        _add_tree(tar, request.code_dir, "code")
    tar_bytes = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(tar_bytes)
    return BuildContext(data=packed.getvalue(), digest=hashlib.sha256(tar_bytes).hexdigest())
