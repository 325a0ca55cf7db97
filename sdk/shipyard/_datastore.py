"""Data-store transfers through presigned URLs (API contract §6.7).

* Objects smaller than the multipart threshold: ``GET …/data-store/upload`` then one
  S3-style multipart/form-data ``POST`` to the signed URL (form ``fields`` then ``file``).
* Larger objects: ``POST …/upload/multipart`` (start), then per part ``POST …/part`` and a
  ``PUT`` of the raw bytes to the returned URL, then ``POST …/end`` with the ETags. Parts go
  ``UPLOAD_CONCURRENCY`` at a time, each sent from the file at its offset by sendfile (a
  source that is not a regular file: read at its offset, so memory holds at most that many
  parts).
* Downloads: into a file path, ranged ``GET``s of the signed URL over
  ``DOWNLOAD_CONCURRENCY`` connections, each range spliced from its socket into the file at
  its offset; into a writable buffer (or a path to a FIFO or a device), one ``GET`` received
  in cache-sized blocks (``_transfer``).

Bytes are sent and written as they are read: no hashing pass, no copy to a temporary file
for seekable sources, no Python loop per small chunk.

Thresholds come from ``CRAFT_AI__MULTIPART_THRESHOLD__B`` (default 100 000 000) and
``CRAFT_AI__MULTIPART_PART_SIZE__B`` (default 9 961 472; a regular file's parts are
``FILE_PART_SIZE`` while it is left at that default), read at import time.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, Callable, Iterator, Union
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.fields import RequestField
from urllib3.filepost import encode_multipart_formdata

from . import _transfer
from ._http import HttpClient, check_storage_response
from ._progress import progress_bar
from .exceptions import SdkException

DEFAULT_MULTIPART_THRESHOLD = 100_000_000
DEFAULT_MULTIPART_PART_SIZE = 38 * 256 * 1024  # 9 961 472: 256 KiB multiple, >= 5 MiB
#: Parts of a regular file when the part size is left at its default. The default (the
#: official client's) bounds the memory of parts read into memory; a file's parts are sent
#: by sendfile and hold none, so they are larger: each part costs a request to the API
#: (1 GiB: 108 parts took 0.3-1.3 s more server CPU than 16).
FILE_PART_SIZE = 64 * 1024 * 1024


def _int_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return default


MULTIPART_THRESHOLD = _int_from_env("CRAFT_AI__MULTIPART_THRESHOLD__B", DEFAULT_MULTIPART_THRESHOLD)
MULTIPART_PART_SIZE = _int_from_env("CRAFT_AI__MULTIPART_PART_SIZE__B", DEFAULT_MULTIPART_PART_SIZE)

_COPY_BLOCK = 1024 * 1024
_DOWNLOAD_BLOCK = _transfer.BLOCK  # cache-sized (see _transfer)
#: Parts of a multipart upload in flight at once (sent from the file by sendfile, or each
#: held in memory when the source is not a regular file).
UPLOAD_CONCURRENCY = max(1, _int_from_env("SHIPYARD_UPLOAD_CONCURRENCY", _transfer.streams()))
#: Ranged streams of a download into a file path, each written at its offset.
DOWNLOAD_CONCURRENCY = max(1, _int_from_env("SHIPYARD_DOWNLOAD_CONCURRENCY",
                                            _transfer.streams()))

PathOrBuffer = Union[str, "os.PathLike[str]", IO[bytes]]


# ----- reading the source -----


def _filename_of(buffer: Any, default: str) -> str:
    name = getattr(buffer, "name", None)
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    if isinstance(name, str) and name and not (name.startswith("<") or name.endswith(">")):
        return os.path.basename(name)
    return default


def _is_seekable(buffer: Any) -> bool:
    if not (hasattr(buffer, "seek") and hasattr(buffer, "tell")):
        return False
    seekable = getattr(buffer, "seekable", None)
    try:
        return bool(seekable()) if callable(seekable) else True
    except (OSError, ValueError):
        return False


def _binary_source(buffer: Any, stack: contextlib.ExitStack) -> tuple[Any, int]:
    """Return a seekable binary stream positioned at 0 and its size in bytes.

    Seekable binary streams are used as they are (rewound to their start). Text streams
    are encoded as UTF-8; other streams are copied to a temporary spool (closed with
    ``stack``) first.
    """
    if isinstance(buffer, io.TextIOBase):
        if _is_seekable(buffer):
            buffer.seek(0)
        data = buffer.read().encode("utf-8")
        return io.BytesIO(data), len(data)
    if _is_seekable(buffer):
        buffer.seek(0)
        size = buffer.seek(0, os.SEEK_END)
        if not isinstance(size, int):
            size = buffer.tell()
        buffer.seek(0)
        return buffer, size
    spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=MULTIPART_THRESHOLD))  # noqa: SIM115
    shutil.copyfileobj(buffer, spool, _COPY_BLOCK)
    size = spool.tell()
    spool.seek(0)
    return spool, size


def _read_bytes(buffer: Any, size: int) -> bytes:
    """Read up to ``size`` bytes, retrying short reads until the end of the stream."""
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        data = buffer.read(remaining)
        if not data:
            break
        if isinstance(data, str):
            data = data.encode("utf-8")
        chunks.append(data)
        remaining -= len(data)
    return b"".join(chunks)


class _FormBody:
    """A streamed S3 POST-policy body: the form fields, then the ``file`` part read from the
    source in large blocks. Iterable with a length, so requests sends a Content-Length and
    urllib3 sends each block as it is (no ``read`` method: that would be 16 KiB reads)."""

    def __init__(self, fields: dict[str, Any], filename: str, source: Any, size: int,
                 bar: Any) -> None:
        parts: list[Any] = []
        for key, value in fields.items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if item is None:
                    continue
                if not isinstance(item, bytes):
                    item = str(item).encode("utf-8")
                parts.append((str(key), item))
        # The file part is encoded empty, then split around where its content goes.
        file_part = RequestField(name="file", data=b"", filename=filename)
        file_part.make_multipart(content_type=None)
        parts.append(file_part)
        body, self.content_type = encode_multipart_formdata(parts)
        boundary_end = body.rindex(b"\r\n--")
        self._head, self._tail = body[:boundary_end], body[boundary_end:]
        self._source, self._size, self._bar = source, size, bar

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        remaining = self._size
        while remaining > 0:
            data = self._source.read(min(_COPY_BLOCK, remaining))
            if not data:
                raise SdkException("The source ended before its announced size.")
            if isinstance(data, str):
                data = data.encode("utf-8")
            remaining -= len(data)
            self._bar.update(len(data))
            yield data
        yield self._tail


# ----- upload -----


def _upload_single_part(
    http: HttpClient,
    api_url: str,
    source: Any,
    size: int,
    object_path: str,
    filename: str,
    allow_progress: bool,
) -> None:
    presigned = http.call(
        "GET", f"{api_url}/data-store/upload", params={"path_to_object": object_path}
    )
    signed_url, fields = presigned["signed_url"], presigned.get("fields") or {}
    with progress_bar(size, f"Uploading {object_path}", allow_progress) as bar:
        body = _FormBody(fields, filename, source, size, bar)
        response = http.send_bare(
            "POST", signed_url, data=body, headers={"Content-Type": body.content_type}
        )
    check_storage_response(response)


def _part_reader(source: Any) -> Callable[[int, int], bytes]:
    """``read(offset, size)`` safe to call from several threads: ``os.pread`` on a file's
    descriptor, else seek and read under a lock."""
    try:
        fd = source.fileno()
        start = source.tell()
        os.pread(fd, 0, start)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        lock = threading.Lock()

        def read_locked(offset: int, size: int) -> bytes:
            with lock:
                source.seek(offset)
                return _read_bytes(source, size)

        return read_locked

    def read_at(offset: int, size: int) -> bytes:
        chunks, done = [], 0
        while done < size:
            data = os.pread(fd, size - done, start + offset + done)
            if not data:
                break
            chunks.append(data)
            done += len(data)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    return read_at


def _upload_multipart(
    http: HttpClient,
    api_url: str,
    source: Any,
    size: int,
    object_path: str,
    part_size: int,
    allow_progress: bool,
) -> None:
    base_url = f"{api_url}/data-store/upload/multipart"
    configuration = http.call("POST", base_url, json={"path_to_object": object_path})
    read_part = _part_reader(source)
    regular = _transfer.regular_file(source)
    if regular is not None and part_size == DEFAULT_MULTIPART_PART_SIZE:
        part_size = FILE_PART_SIZE
    part_count = max(1, -(-size // part_size))
    connections = _transfer.Connections()
    progress_lock = threading.Lock()

    def send_part(number: int, bar: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "path_to_object": object_path,
            "multipart_upload_configuration": configuration,
            "chunk_size": part_size,
            "part_number": number,
        }
        if number == part_count:
            request["size"] = size
        target = http.call("POST", f"{base_url}/part", json=request)
        offset = (number - 1) * part_size
        length = min(part_size, size - offset)
        headers = dict(target.get("headers") or {})
        if _transfer.direct(target["signed_url"]):
            etag = _transfer.put_part(connections, target["signed_url"], headers, regular,
                                      read_part, offset, length)
        else:
            response = http.send_bare(
                "PUT", target["signed_url"], data=read_part(offset, length), headers=headers
            )
            check_storage_response(response)
            etag = response.headers.get("ETag")
        part: dict[str, Any] = {"number": number}
        if etag is not None:
            part["metadata"] = etag
        with progress_lock:
            bar.update(length)
        return part

    with progress_bar(size, f"Uploading {object_path}", allow_progress) as bar:
        workers = min(UPLOAD_CONCURRENCY, part_count)
        with ThreadPoolExecutor(workers, thread_name_prefix="shipyard-upload") as pool:
            futures = [pool.submit(send_part, n, bar) for n in range(1, part_count + 1)]
            try:
                parts = [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            finally:
                pool.shutdown(wait=True)
                connections.close()
    http.call(
        "POST",
        f"{base_url}/end",
        json={
            "path_to_object": object_path,
            "multipart_upload_configuration": configuration,
            "parts": parts,
        },
    )


def upload(
    http: HttpClient,
    api_url: str,
    filepath_or_buffer: PathOrBuffer,
    object_path: str,
    threshold: int = MULTIPART_THRESHOLD,
    part_size: int = MULTIPART_PART_SIZE,
    allow_progress: bool = True,
) -> None:
    """Upload a local file (path) or a binary buffer to ``object_path``."""
    if isinstance(filepath_or_buffer, (str, os.PathLike)):
        with open(filepath_or_buffer, "rb") as file:
            return upload(http, api_url, file, object_path, threshold, part_size, allow_progress)
    if not hasattr(filepath_or_buffer, "read"):
        raise ValueError(
            "'filepath_or_buffer' must be either a string (filepath) or an object "
            "with a read() method (file-like object)."
        )
    if part_size <= 0:
        raise ValueError("The multipart part size must be a positive number of bytes.")
    filename = _filename_of(filepath_or_buffer, "file")
    with contextlib.ExitStack() as stack:
        source, size = _binary_source(filepath_or_buffer, stack)
        if size < threshold or size == 0:
            _upload_single_part(http, api_url, source, size, object_path, filename, allow_progress)
        else:
            _upload_multipart(http, api_url, source, size, object_path, part_size, allow_progress)
    return None


# ----- download -----


def download(
    http: HttpClient,
    signed_url: str,
    filepath_or_buffer: PathOrBuffer,
    description: str = "Downloading",
    allow_progress: bool = True,
) -> None:
    """Save the object behind ``signed_url`` into a file path or a writable buffer."""
    is_path = isinstance(filepath_or_buffer, (str, os.PathLike))
    if not is_path and not hasattr(filepath_or_buffer, "write"):
        raise ValueError(
            "'filepath_or_buffer' must be either a string (filepath) or an object "
            "with a write() method (file-like object)."
        )
    if _transfer.direct(signed_url) and _download_direct(
        signed_url, filepath_or_buffer, description, allow_progress
    ):
        _rewind(filepath_or_buffer)
        return
    response = http.send_bare("GET", signed_url, stream=True)
    try:
        check_storage_response(response)
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if response.headers.get("Content-Encoding"):
            total = None
        with progress_bar(total, description, allow_progress) as bar:
            if is_path:
                with open(filepath_or_buffer, "wb") as file:  # type: ignore[arg-type]
                    _copy_response(response, file, bar)
            else:
                _copy_response(response, filepath_or_buffer, bar)
                _rewind(filepath_or_buffer)
    finally:
        response.close()


def _rewind(target: Any) -> None:
    if isinstance(target, io.IOBase) and target.tell() > 0:
        target.seek(0)


def _download_direct(
    signed_url: str, filepath_or_buffer: PathOrBuffer, description: str, allow_progress: bool
) -> bool:
    """The object through ``_transfer``; False (nothing written) when the response is
    content-encoded, which requests decodes. Into a file path: ``DOWNLOAD_CONCURRENCY``
    ranged streams, each written at its offset; a failed download removes the file."""
    to_path = isinstance(filepath_or_buffer, (str, os.PathLike))
    # Writes at offsets need a regular file: a path that names something else (a FIFO, a
    # device) gets one stream, written in order.
    at_offsets = to_path and _regular_or_new(filepath_or_buffer)
    ranged = at_offsets and DOWNLOAD_CONCURRENCY > 1
    connections = _transfer.Connections()
    try:
        response = _transfer.open_get(connections, signed_url, ranged=ranged)
        if response.headers.get("Content-Encoding"):
            return False
        size = _transfer.object_size(response)
        with progress_bar(size, description, allow_progress) as bar:
            if not to_path:
                _transfer.copy_body(response, filepath_or_buffer.write, bar.update)  # type: ignore[union-attr]
                return True
            # Opened once the store answered: a refused download leaves no file behind.
            with open(filepath_or_buffer, "wb") as file:  # type: ignore[arg-type]
                try:
                    if response.status == 206 and size is not None:
                        lock = threading.Lock()

                        def progress(count: int) -> None:
                            with lock:
                                bar.update(count)

                        _transfer.copy_ranges(connections, signed_url, response,
                                              file.fileno(), size, DOWNLOAD_CONCURRENCY,
                                              progress)
                    elif at_offsets:
                        _transfer.write_at(response, file.fileno(), 0, bar.update,
                                           urlsplit(signed_url).scheme == "http")
                    else:
                        _transfer.copy_body(response, file.write, bar.update)
                except BaseException:
                    _remove_partial(file)
                    raise
        return True
    finally:
        connections.close()


def _regular_or_new(path: Any) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _remove_partial(file: Any) -> None:
    """Remove a file a failed download left incomplete (a regular file only: a path may
    name a FIFO or a device the caller made)."""
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            os.unlink(file.name)


def _copy_response(response: Any, target: Any, bar: Any) -> None:
    # Without a content encoding, raw reads of large blocks skip urllib3's decoding buffer.
    raw = not response.headers.get("Content-Encoding")
    try:
        if raw:
            while True:
                chunk = response.raw.read(_DOWNLOAD_BLOCK, decode_content=False)
                if not chunk:
                    break
                target.write(chunk)
                bar.update(len(chunk))
            return
        for chunk in response.iter_content(_COPY_BLOCK):
            if chunk:
                target.write(chunk)
                bar.update(len(chunk))
    except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
        raise SdkException("Unable to perform the request", name="RequestError") from error


def download_bytes(http: HttpClient, signed_url: str) -> bytes:
    """Return the content behind ``signed_url``."""
    buffer = io.BytesIO()
    download(http, signed_url, buffer, allow_progress=False)
    return buffer.getvalue()


__all__ = [
    "MULTIPART_PART_SIZE",
    "MULTIPART_THRESHOLD",
    "download",
    "download_bytes",
    "upload",
]
