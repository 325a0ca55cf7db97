"""Files the platform keeps beside the store: step code archives and execution files."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from .errors import BadRequest, PayloadTooLarge


def inspect_archive(data: bytes, max_bytes: int, max_members: int) -> None:
    """Refuse archives that are not gzip tars, hold anything but regular files and folders,
    name a path outside their folder, or exceed the size or member limits (each member
    costs a header and a file or folder on disk, whatever its size).

    Symbolic and hard links are refused outright: on Python < 3.11.13 (this server runs
    3.11.7) a chain of symlinks resolving past PATH_MAX gets through tarfile's `data` filter
    (CVE-2025-4517) and writes outside the folder. Members are read one at a time and the
    limits checked as they come, so a decompression bomb stops at the limit. Checked before
    anything is stored, so a bad upload leaves no trace."""
    total = count = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                count += 1
                if count > max_members:
                    raise BadRequest(
                        f"The step archive has over {max_members} files and folders: narrow "
                        "included_folders", {"limit": max_members})
                _check_member(member)
                total += member.size if member.isfile() else 0
                if total > max_bytes:
                    raise PayloadTooLarge(
                        f"The step's files take over {max_bytes // (1024 * 1024)} MB (the "
                        "limit): narrow included_folders", {"size": total, "limit": max_bytes})
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BadRequest(f"The step archive is not a valid tar.gz file: {exc}") from exc


def _check_member(member: tarfile.TarInfo) -> None:
    kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
            else None if member.isfile() or member.isdir() else "a special file")
    if kind:
        raise BadRequest(f"Unsafe member in the step archive: {member.name!r} is {kind}; "
                         "only regular files and folders are accepted",
                         {"member": member.name})
    name = member.name
    if (name.startswith("/") or "\\" in name or "\x00" in name
            or ".." in name.split("/")):
        raise BadRequest(f"Unsafe path in the step archive: {name!r}", {"member": name})


def _extraction_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """The `data` filter, links refused again, and modes any runner user can read (the
    sandbox runs step code as `nobody`)."""
    _check_member(member)
    member = tarfile.data_filter(member, dest)
    executable = member.isdir() or bool((member.mode or 0) & 0o100)
    return member.replace(mode=0o755 if executable else 0o644, deep=False)


class Artifacts:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir)

    # Step code -------------------------------------------------------------------------
    def step_dir(self, step_id: int) -> Path:
        return self.root / "steps" / str(step_id)

    def step_archive(self, step_id: int) -> Path:
        return self.step_dir(step_id) / "code.tgz"

    def step_code_dir(self, step_id: int) -> Path:
        return self.step_dir(step_id) / "code"

    def store_step_archive(self, step_id: int, data: bytes) -> Path:
        """Keep the archive (for download) and unpack it with the 'data' filter."""
        target = self.step_dir(step_id)
        if target.exists():
            shutil.rmtree(target)
        code = self.step_code_dir(step_id)
        code.mkdir(parents=True)
        self.step_archive(step_id).write_bytes(data)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            # Duplicate members (a folder and a file inside it) are expected: later wins.
            tar.extractall(code, filter=_extraction_filter)
        return code

    def delete_step(self, step_id: int) -> None:
        shutil.rmtree(self.step_dir(step_id), ignore_errors=True)

    # Execution files -----------------------------------------------------------------
    def execution_dir(self, execution_id: str) -> Path:
        return self.root / "executions" / execution_id

    def execution_file(self, execution_id: str, kind: str, name: str) -> Path:
        return self.execution_dir(execution_id) / kind / name

    def save_execution_file(self, execution_id: str, kind: str, name: str,
                            stream: BinaryIO, filename: str | None = None) -> Path:
        path = self.execution_file(execution_id, kind, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(stream, out, 1024 * 1024)
        os.replace(tmp, path)
        if filename:
            path.with_name(name + ".filename").write_text(os.path.basename(filename))
        return path

    def execution_filename(self, execution_id: str, kind: str, name: str) -> str | None:
        meta = self.execution_file(execution_id, kind, name + ".filename")
        return meta.read_text() if meta.exists() else None

    def delete_execution(self, execution_id: str) -> None:
        shutil.rmtree(self.execution_dir(execution_id), ignore_errors=True)

    def work_dir(self, execution_id: str) -> Path:
        return self.root / "work" / execution_id
