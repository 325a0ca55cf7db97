"""Build the code archive sent with step/pipeline creation (API contract §6.2.1)."""

from __future__ import annotations

import io
import os
import tarfile
from typing import Any, Iterable


def include_list(
    sent_container_config: dict[str, Any],
    project_information: dict[str, Any],
    function_path: str | None,
) -> list[str]:
    """Items to put in the archive, leading ``/`` stripped, null entries dropped.

    ``sent_container_config`` is the container configuration as it is sent (after the
    special values were resolved): a key present there wins over the project's value,
    even when it is ``None`` (explicit null) or an empty list.
    """
    if "included_folders" in sent_container_config:
        folders = sent_container_config["included_folders"]
    else:
        folders = project_information.get("included_folders")
    if "requirements_path" in sent_container_config:
        requirements = sent_container_config["requirements_path"]
    else:
        requirements = project_information.get("requirements_path")
    items: list[Any] = [*(folders or []), requirements, function_path]
    return [str(item).lstrip("/") for item in items if item]


def check_local_folder(local_folder: str) -> None:
    """Raise before any request when the local folder is unusable."""
    if not isinstance(local_folder, (str, os.PathLike)):
        raise TypeError("'container_config.local_folder' must be a path.")
    if not os.path.isdir(local_folder):
        raise FileNotFoundError(f"Local folder not found: {local_folder!r}")


def build_archive(local_folder: str, items: Iterable[str]) -> io.BytesIO:
    """Return an in-memory gzip tar holding each item (recursively) under its own name."""
    root = os.path.abspath(local_folder)
    items = list(items)
    for item in items:
        if not os.path.exists(os.path.join(root, item)):
            raise FileNotFoundError(
                f"'{item}' is included but does not exist in the local folder {root!r}"
            )
    buffer = io.BytesIO()
    # The server refuses link members (symbolic or hard): what links point at is sent as
    # plain files and folders.
    with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as archive:
        for item in items:
            archive.add(os.path.join(root, item), arcname=item)
    buffer.seek(0)
    return buffer
