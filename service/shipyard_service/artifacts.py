"""Files the platform keeps beside the store: step code archives and execution files."""

from __future__ import annotations

import hashlib
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


HASH_SUFFIX = ".sha256"  # beside an execution file: its SHA-256, written with it


def files_hash(data: bytes) -> str:
    """A hash of a step archive's files (paths and contents, in path order), not of the
    archive's bytes: the same folder packed again (other dates, other order) hashes the
    same. Read after inspect_archive accepted the archive."""
    members = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar:
            if member.isfile():
                content = tar.extractfile(member)
                members[member.name.removeprefix("./")] = hashlib.sha256(
                    content.read() if content else b"").hexdigest()
    digest = hashlib.sha256()
    for name in sorted(members):
        digest.update(f"{name}\0{members[name]}\n".encode())
    return digest.hexdigest()


class Artifacts:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir)
        # Every execution asks for its step's code folder: a path joined once per step
        # (three pathlib joins were 15 us of a low-latency call). Bounded by the steps.
        self._code_dirs: dict[int, Path] = {}

    # Step code -------------------------------------------------------------------------
    def step_dir(self, step_id: int) -> Path:
        return self.root / "steps" / str(step_id)

    def step_archive(self, step_id: int) -> Path:
        return self.step_dir(step_id) / "code.tgz"

    def step_code_dir(self, step_id: int) -> Path:
        path = self._code_dirs.get(step_id)
        if path is None:
            path = self._code_dirs[step_id] = self.step_dir(step_id) / "code"
        return path

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
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            # Hashed as it is written: the step cache keys on file contents without a
            # second read of the file.
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
        os.replace(tmp, path)
        path.with_name(name + HASH_SUFFIX).write_text(digest.hexdigest())
        if filename:
            path.with_name(name + ".filename").write_text(os.path.basename(filename))
        return path

    def execution_file_hash(self, execution_id: str, kind: str, name: str) -> str | None:
        """The SHA-256 of an execution file (recorded when it was written; hashed now for
        a file from before that); None when there is no such file."""
        path = self.execution_file(execution_id, kind, name)
        recorded = path.with_name(name + HASH_SUFFIX)
        try:
            return recorded.read_text().strip()
        except FileNotFoundError:
            pass
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as stream:
                while chunk := stream.read(1024 * 1024):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        recorded.write_text(digest.hexdigest())
        return digest.hexdigest()

    def share_execution_files(self, source_id: str, source_kind: str, target_id: str,
                              target_kind: str) -> None:
        """Every file of one execution's folder `source_kind` (with its recorded name and
        hash) into another's `target_kind`: hard links, so deleting the source later
        leaves the target whole at no copy cost; a copy where links cannot be made."""
        source = self.execution_dir(source_id) / source_kind
        if not source.is_dir():
            return
        target = self.execution_dir(target_id) / target_kind
        target.mkdir(parents=True, exist_ok=True)
        for item in source.iterdir():
            if not item.is_file() or item.suffix == ".part":
                continue
            destination = target / item.name
            destination.unlink(missing_ok=True)
            try:
                os.link(item, destination)
            except OSError:
                shutil.copyfile(item, destination)

    def execution_filename(self, execution_id: str, kind: str, name: str) -> str | None:
        meta = self.execution_file(execution_id, kind, name + ".filename")
        return meta.read_text() if meta.exists() else None

    def delete_execution(self, execution_id: str) -> None:
        shutil.rmtree(self.execution_dir(execution_id), ignore_errors=True)

    def work_dir(self, execution_id: str) -> Path:
        return self.root / "work" / execution_id
