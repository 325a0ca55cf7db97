"""Files the platform keeps beside the store: step code archives and execution files."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path
from typing import BinaryIO

from .errors import BadRequest, PayloadTooLarge


def inspect_archive(data: bytes, max_bytes: int) -> None:
    """Refuse archives that are not gzip tars, escape their folder, or exceed the limit.

    Checked before anything is stored, so a bad upload leaves no trace."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            sizes: dict[str, int] = {}
            for member in tar.getmembers():
                try:
                    if member.name.startswith("/") or "\\" in member.name:
                        raise tarfile.AbsolutePathError(member)
                    tarfile.data_filter(member, "/nonexistent-root")
                except tarfile.FilterError as exc:
                    raise BadRequest(
                        f"Unsafe path in the step archive: {member.name!r} ({exc})",
                        {"member": member.name},
                    ) from exc
                if member.isfile():
                    sizes[os.path.normpath(member.name)] = member.size
    except tarfile.TarError as exc:
        raise BadRequest(f"The step archive is not a valid tar.gz file: {exc}") from exc
    total = sum(sizes.values())
    if total > max_bytes:
        raise PayloadTooLarge(
            f"The step's files take {total} bytes, over the {max_bytes // (1024 * 1024)} MB "
            "limit: narrow included_folders",
            {"size": total, "limit": max_bytes},
        )


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
            tar.extractall(code, filter="data")
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
