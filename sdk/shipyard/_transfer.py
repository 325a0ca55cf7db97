"""Presigned-URL transfers of large files on plain ``http.client`` connections.

requests sends a file body in 8 KiB reads and hands a download over as bytes objects
copied several times; for a file of gigabytes that Python work, not the network, is the
limit. Here:

* a part upload's body goes from the file to the socket with ``socket.sendfile`` (zero copy);
* a download into a file is spliced from the socket into the file at its offset over a
  plain connection (``write_at``), else received with ``readinto`` into one reused buffer
  and written from there; into a buffer, the latter, in one stream;
* a download into a file comes in ranges of ``RANGE_BYTES`` over ``streams()`` connections at
  once, each range written at its offset: on loopback, one stream keeps one core busy in the
  kernel (copy out of the socket, copy into the page cache) while the other may idle. The
  bytes alone (1 GiB, sendfile -> splice, 2 cores shared with other work) went 1.2-2.4x
  faster over two connections than over one at load 4-5, 0.9-1.35x at load 4-9; the
  ranges cost no more CPU than one stream (0.42 against 0.40 s per GiB).

Each worker thread keeps one keep-alive connection per host. URLs that go through a proxy
(``HTTP(S)_PROXY``) are not handled here: callers use requests for them.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import select
import ssl
import stat
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, BinaryIO, Callable
from urllib.parse import urlsplit

import requests.utils

from ._http import storage_error
from .exceptions import SdkException

BLOCK = 256 * 1024
SPLICE_BYTES = 1024 * 1024  # a pipe's worth per splice
TIMEOUT_S = 600
#: One ranged GET of a parallel download: large enough that a request's cost is small
#: against its bytes (~1.3 ms of the local store's CPU, 1.0 for /healthz), small enough
#: that the streams end together (16 per GiB).
RANGE_BYTES = 64 * 1024 * 1024


def streams() -> int:
    """Connections a transfer uses at once by default: one per CPU this process may run on
    (each stream's kernel copies keep one core busy), at least 2."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    return max(2, count)


def direct(url: str) -> bool:
    """Whether ``url`` can be reached here: http(s) with no proxy configured for it."""
    scheme = urlsplit(url).scheme
    return scheme in ("http", "https") and not requests.utils.get_environ_proxies(url)


def _tls_context() -> ssl.SSLContext:
    # The CA bundle requests would use, so both paths trust the same servers.
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return ssl.create_default_context(cafile=bundle or requests.utils.DEFAULT_CA_BUNDLE_PATH)


class Connections:
    """One keep-alive connection per (thread, host); ``close`` ends them all."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def request(self, method: str, url: str, headers: dict[str, str],
                send_body: Callable[[http.client.HTTPConnection], None] | None = None,
                length: int = 0) -> http.client.HTTPResponse:
        """Send one request (headers, then ``send_body(connection)`` writing ``length``
        bytes) and return the response, its body unread. One retry on a fresh connection
        when a kept-alive one turns out closed before anything came back."""
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        for attempt in range(2):
            connection = self._connection(parts.scheme, parts.netloc, fresh=attempt > 0)
            try:
                connection.putrequest(method, target or "/", skip_accept_encoding=True)
                for name, value in headers.items():
                    connection.putheader(name, value)
                if method in ("PUT", "POST"):
                    connection.putheader("Content-Length", str(length))
                connection.endheaders()
                if send_body is not None:
                    send_body(connection)
                return connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as error:
                connection.close()
                if attempt:
                    raise _request_error() from error
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                raise _request_error() from error
        raise AssertionError("unreachable")

    def _connection(self, scheme: str, netloc: str, fresh: bool) -> http.client.HTTPConnection:
        cache = self._local.__dict__.setdefault("connections", {})
        key = (scheme, netloc)
        if key in cache and not fresh:
            return cache[key]
        if scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                netloc, timeout=TIMEOUT_S, context=_tls_context())
        else:
            connection = http.client.HTTPConnection(netloc, timeout=TIMEOUT_S)
        cache[key] = connection
        with self._lock:
            self._all.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()


def _request_error() -> SdkException:
    # What the requests path raises for a transport failure (_http.HttpClient._send).
    return SdkException("Unable to perform the request", name="RequestError")


def _checked(response: http.client.HTTPResponse, expected: tuple[int, ...]) -> None:
    if response.status not in expected:
        body = response.read()
        raise storage_error(response.status, body.decode("utf-8", "replace"))


def put_part(connections: Connections, url: str, headers: dict[str, str], file: BinaryIO | None,
             read_part: Callable[[int, int], bytes], offset: int, size: int) -> str | None:
    """PUT ``size`` bytes of the source at ``offset``: from ``file`` with sendfile when it
    is a regular file, else the bytes ``read_part`` returns. The response's ETag."""
    def send_body(connection: http.client.HTTPConnection) -> None:
        if file is not None:
            sent = connection.sock.sendfile(file, offset, size)
            if sent != size:
                raise SdkException(f"The source file ended after {sent} of {size} bytes "
                                   "of the part.")
        else:
            connection.send(read_part(offset, size))

    response = connections.request("PUT", url, headers, send_body, size)
    _checked(response, (200, 201, 204))
    response.read()
    return response.headers.get("ETag")


def open_get(connections: Connections, url: str, ranged: bool = False) -> http.client.HTTPResponse:
    """GET ``url``: the response, checked, its body unread. ``ranged`` asks for its first
    ``RANGE_BYTES`` only: a 206 (see ``object_size``), or a 200 with the whole object from a
    server that ignores ranges. An empty object has no first byte (416 for any range): it is
    asked again without one."""
    if ranged:
        response = connections.request("GET", url, {"Range": f"bytes=0-{RANGE_BYTES - 1}"})
        if response.status != 416:
            _checked(response, (200, 206))
            return response
        response.read()
    response = connections.request("GET", url, {})
    _checked(response, (200,))
    return response


def object_size(response: http.client.HTTPResponse) -> int | None:
    """The whole object's size: from ``Content-Range`` for a 206, else the body's length."""
    if response.status == 206:
        _, _, total = (response.headers.get("Content-Range") or "").rpartition("/")
        if not total.isdigit():
            raise SdkException("The storage answered a range without the object's size.",
                               name="RequestError")
        return int(total)
    return response.length


def copy_ranges(connections: Connections, url: str, first: http.client.HTTPResponse, fd: int,
                size: int, stream_count: int, on_bytes: Callable[[int], None]) -> None:
    """Write the object behind ``url`` into the file ``fd`` at its offsets: ``first`` (the
    206 for its first range, from ``open_get(..., ranged=True)``) in this thread, the rest
    in ranges of ``RANGE_BYTES`` taken in order by ``stream_count`` connections at once.
    The first failure stops every stream and is raised. ``on_bytes`` is called from several
    threads."""
    lock = threading.Lock()
    failed = threading.Event()
    next_offset = min(RANGE_BYTES, size)
    plain = urlsplit(url).scheme == "http"
    # Every range must come from the object the first response came from.
    etag = first.headers.get("ETag")
    match = {"If-Match": etag} if etag else {}

    def take() -> tuple[int, int] | None:
        nonlocal next_offset
        with lock:
            if failed.is_set() or next_offset >= size:
                return None
            start = next_offset
            next_offset = min(start + RANGE_BYTES, size)
            return start, next_offset - start

    def stream(response: http.client.HTTPResponse | None) -> None:
        try:
            if response is not None:
                _write_range(response, fd, 0, min(RANGE_BYTES, size), on_bytes, plain)
            while (taken := take()) is not None:
                start, length = taken
                response = connections.request(
                    "GET", url, {"Range": f"bytes={start}-{start + length - 1}", **match})
                _checked(response, (206,))
                if not (response.headers.get("Content-Range") or "").startswith(
                        f"bytes {start}-"):
                    raise SdkException("The storage answered another range than the one "
                                       "asked.", name="RequestError")
                _write_range(response, fd, start, length, on_bytes, plain)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max(1, stream_count - 1),
                            thread_name_prefix="shipyard-download") as pool:
        helpers = [pool.submit(stream, None) for _ in range(stream_count - 1)]
        try:
            stream(first)
        finally:
            wait(helpers)
    for helper in helpers:
        helper.result()


def _write_range(response: http.client.HTTPResponse, fd: int, offset: int, length: int,
                 on_bytes: Callable[[int], None], plain: bool) -> None:
    """The response's body at ``offset`` of ``fd``: exactly ``length`` bytes, or an error."""
    written = write_at(response, fd, offset, on_bytes, plain)
    if written != length:
        raise SdkException(f"The storage sent {written} of the {length} bytes of a range.",
                           name="RequestError")


def write_at(response: http.client.HTTPResponse, fd: int, offset: int,
             on_bytes: Callable[[int], None], plain: bool) -> int:
    """Write the response's body into the file ``fd`` from ``offset``; the bytes written.
    Over a plain (not TLS) connection with a known length, socket -> pipe -> file by
    ``os.splice``: the bytes never reach Python (1 GiB from the local store: 0.31-0.34 s of
    client CPU against 0.72-0.83 s received into a buffer and written from it). Else
    received into a buffer and written at the offset."""
    if plain and response.length and hasattr(os, "splice") \
            and not response.headers.get("Transfer-Encoding"):
        return _splice_at(response, fd, offset, on_bytes)
    written = 0

    def write(view: memoryview) -> None:
        nonlocal written
        written += _pwrite_all(fd, view, offset + written)

    copy_body(response, write, on_bytes)
    return written


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> int:
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    return done


def _splice_at(response: http.client.HTTPResponse, fd: int, offset: int,
               on_bytes: Callable[[int], None]) -> int:
    """The body through ``os.splice``: first what http.client already buffered past the
    headers (read through it, so it counts them), then the rest straight from the socket;
    the response is closed after, which leaves a kept-alive connection ready for its next
    request."""
    try:
        buffered = response.fp.peek(1)  # what is buffered, or one read when nothing is
        head = response.read(min(len(buffered), response.length or 0))
        written = _pwrite_all(fd, head, offset)
        on_bytes(written)
        remaining = response.length or 0
        if not remaining:
            return written
        source = response.fileno()
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            with contextlib.suppress(OSError):  # over pipe-max-size: the default pipe works
                fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, SPLICE_BYTES)
            while remaining:
                try:
                    moved = os.splice(source, write_end, min(SPLICE_BYTES, remaining))
                except BlockingIOError:  # a socket with a timeout is non-blocking underneath
                    if not select.select([source], [], [], TIMEOUT_S)[0]:
                        raise TimeoutError("the storage stopped sending") from None
                    continue
                if not moved:
                    raise http.client.IncompleteRead(b"", remaining)
                remaining -= moved
                while moved:
                    done = os.splice(read_end, fd, moved, offset_dst=offset + written)
                    written += done
                    moved -= done
                    on_bytes(done)
        finally:
            os.close(read_end)
            os.close(write_end)
        response.close()
        return written
    except (OSError, http.client.HTTPException) as error:
        response.close()
        raise _request_error() from error


def copy_body(response: http.client.HTTPResponse, write: Callable[[memoryview], Any],
              on_bytes: Callable[[int], None]) -> int:
    """Pass the response's body to ``write`` block by block; the bytes passed. The block is
    small enough to stay in the CPU cache between the receive and the write: 4 MiB blocks
    halved the throughput here."""
    view = memoryview(bytearray(BLOCK))
    total = 0
    while True:
        try:
            count = response.readinto(view)
        except (OSError, http.client.HTTPException) as error:
            raise _request_error() from error
        if not count:
            return total
        write(view[:count])
        total += count
        on_bytes(count)


def regular_file(source: Any) -> BinaryIO | None:
    """``source`` when sendfile can read it (an open regular file), else None."""
    try:
        return source if stat.S_ISREG(os.fstat(source.fileno()).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None
