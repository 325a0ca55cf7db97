"""The DataStore interface. Keys are already normalised by domain/datastore.py and
prefixed with the environment's namespace (`{project}/{environment}/`)."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: dt.datetime  # naive UTC


class DataStore(ABC):
    """What the API needs of an object store. Presigned URLs authenticate themselves."""

    @abstractmethod
    def info(self, key: str) -> ObjectInfo:
        """Raise errors.NotFound when missing."""

    @abstractmethod
    def list(self, prefix: str, start_after: str | None, limit: int) -> list[ObjectInfo]:
        """Objects under prefix, sorted by key, strictly after start_after."""

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """A readable binary stream; raise errors.NotFound when missing."""

    @abstractmethod
    def write(self, key: str, stream: BinaryIO) -> int:
        """Store the stream's bytes (streamed, never fully in memory); return the size."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Raise errors.NotFound when missing."""

    @abstractmethod
    def presigned_get(self, key: str) -> str:
        """Absolute URL a client GETs with no credentials."""

    @abstractmethod
    def presigned_post(self, key: str) -> tuple[str, dict]:
        """(absolute URL, form fields) for an S3-POST-policy style upload with part `file`."""

    @abstractmethod
    def multipart_start(self, key: str) -> dict:
        """The upload configuration the client sends back unchanged."""

    @abstractmethod
    def multipart_part(self, key: str, config: dict, part_number: int, chunk_size: int,
                       total_size: int | None) -> tuple[str, dict]:
        """(absolute URL for PUT, headers) for one part, numbered from 1."""

    @abstractmethod
    def multipart_end(self, key: str, config: dict, parts: list[dict]) -> None:
        """Assemble; raise errors.BadRequest when parts are missing or of the wrong size."""

    def iter_keys(self, prefix: str) -> Iterator[str]:
        after = None
        while True:
            page = self.list(prefix, after, 1000)
            if not page:
                return
            for item in page:
                yield item.key
            after = page[-1].key
