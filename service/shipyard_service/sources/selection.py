"""Keeping the included part of a fetched tree, as the step's archive (.tgz).

The archive is what a local-folder step would have uploaded: same member names, same
5 MB limit on the files' total size, so everything after (unpacking, download, the runner's
`code_url`) treats both origins alike."""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadRequest, PayloadTooLarge


@dataclass(frozen=True)
class Selection:
    archive: bytes
    files: list[str]  # relative paths, sorted
    size: int  # bytes of file content


def select(root: Path, included: list[str] | None, required: dict[str, tuple[str, str]],
           max_bytes: int, where: str) -> Selection:
    """Files under `included` (None = all) plus the `required` paths
    ({path: (what it is, error name when it is missing)}).

    A missing included or required path is a 400 naming it; `.git` folders and symlinks
    are never kept; over `max_bytes` in total is a 413."""
    root = root.resolve()
    wanted = list(included) if included is not None else ["."]
    for path, (what, error_name) in required.items():
        if not (root / path).is_file():
            raise BadRequest(f"The {what} '{path}' is not in {where}",
                             {"path": path, "what": what}, name=error_name)
        if included is not None and path not in wanted:
            wanted.append(path)
    files: dict[str, int] = {}
    for item in wanted:
        target = (root / item).resolve()
        if not target.is_relative_to(root) or not target.exists():
            raise BadRequest(f"The included folder '{item}' is not in {where}",
                             {"path": item}, name="FileNotFoundInRepository")
        if target.is_file():
            files.setdefault(_rel(root, target), target.stat().st_size)
            continue
        for dirpath, dirnames, filenames in os.walk(target, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for name in filenames:
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                files.setdefault(_rel(root, path), path.stat().st_size)
    total = sum(files.values())
    if total > max_bytes:
        raise PayloadTooLarge(
            f"The included files of {where} take {total} bytes, over the "
            f"{max_bytes // (1024 * 1024)} MB limit: narrow included_folders",
            {"size": total, "limit": max_bytes},
        )
    return Selection(archive=_archive(root, sorted(files)), files=sorted(files), size=total)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _archive(root: Path, names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for name in names:
            info = tar.gettarinfo(str(root / name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(root / name, "rb") as f:
                tar.addfile(info, f)
    return buffer.getvalue()
