"""Data store objects: upload, download, information, listing, deletion (§6.7)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlencode

from .. import _datastore
from .._logging import logged
from .base import SdkBase


def human_size(size_in_bytes: Any) -> str:
    """``1234`` → ``"1.21 KB"`` (binary multiples, two decimals)."""
    size = float(size_in_bytes)
    unit = "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024.0:
            break
        if unit != "TB":
            size /= 1024.0
    return f"{size:.2f} {unit}"


class DataStoreMixin(SdkBase):
    def get_data_store_object_information(self, object_path_in_datastore: str) -> dict[str, Any]:
        """Get ``path``, ``last_modified`` and ``size`` (human-readable text) of an object."""
        info = self._post(
            self._env("data-store/information"),
            json={"path_to_object": object_path_in_datastore},
        )
        info["size"] = human_size(info["size"])
        return info

    def list_data_store_objects(self) -> list[dict[str, Any]]:
        """List every object (``path``, ``last_modified``, ``size``), following the
        continuation tokens."""
        url = self._env("data-store/list")
        query: dict[str, str] = {"include_continuation_token": "t"}
        page = self._get(f"{url}?{urlencode(query)}")
        items = list(page.get("items") or [])
        while page.get("continuation_token"):
            query["continuation_token"] = page["continuation_token"]
            page = self._get(f"{url}?{urlencode(query)}")
            items.extend(page.get("items") or [])
        for item in items:
            item["size"] = human_size(item["size"])
        return items

    @logged("Object upload")
    def upload_data_store_object(
        self, filepath_or_buffer: _datastore.PathOrBuffer, object_path_in_datastore: str
    ) -> None:
        """Upload a file (path or binary file object) to ``object_path_in_datastore``.

        Objects of at least ``CRAFT_AI__MULTIPART_THRESHOLD__B`` bytes are sent in
        parts of ``CRAFT_AI__MULTIPART_PART_SIZE__B`` bytes.
        """
        _datastore.upload(
            self._http,
            self.base_environment_api_url,
            filepath_or_buffer,
            object_path_in_datastore,
            threshold=self._MULTIPART_THRESHOLD,
            part_size=self._MULTIPART_PART_SIZE,
            allow_progress=self._progress_allowed(),
        )

    @logged("Object download")
    def download_data_store_object(
        self, object_path_in_datastore: str, filepath_or_buffer: _datastore.PathOrBuffer
    ) -> None:
        """Download an object into a file path or a writable binary file object."""
        if not isinstance(filepath_or_buffer, (str, os.PathLike)) and not hasattr(
            filepath_or_buffer, "write"
        ):
            raise ValueError(
                "'filepath_or_buffer' must be either a string (filepath) or an object "
                "with a write() method (file-like object)."
            )
        signed_url = self._post(
            self._env("data-store/download"),
            data={"path_to_object": object_path_in_datastore},
        )["signed_url"]
        _datastore.download(
            self._http,
            signed_url,
            filepath_or_buffer,
            description=f"Downloading {object_path_in_datastore}",
            allow_progress=self._progress_allowed(),
        )

    @logged("Object deletion")
    def delete_data_store_object(self, object_path_in_datastore: str) -> dict[str, Any]:
        """Delete an object. Returns ``{"path"}``."""
        return self._delete(
            self._env("data-store/delete"),
            data={"path_to_object": object_path_in_datastore},
        )
