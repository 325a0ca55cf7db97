"""Presigned-URL transfers of large files on plain ``http.client`` connections.

requests sends a file body in 8 KiB reads and hands a download over as bytes objects
copied several times; for a file of gigabytes that Python work, not the network, is the
limit. Here:

* a part upload's body goes from the file to the socket with ``socket.sendfile`` (zero copy);
* a download is received with ``readinto`` into one reused buffer, written from there.

One stream per download: parallel ranges (4 × 16 MiB) were slower here, 258–314 MB/s
against 389–408 MB/s, writes to one file contending with each other.

Each worker thread keeps one keep-alive connection per host. URLs that go through a proxy
(``HTTP(S)_PROXY``) are not handled here: callers use requests for them.
"""

from __future__ import annotations

import http.client
import os
import ssl
import stat
import threading
from typing import Any, BinaryIO, Callable
from urllib.parse import urlsplit

import requests.utils

from ._http import storage_error
from .exceptions import SdkException

BLOCK = 256 * 1024
TIMEOUT_S = 600


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


def open_get(connections: Connections, url: str) -> http.client.HTTPResponse:
    """GET ``url``: the response, checked, its body unread."""
    response = connections.request("GET", url, {})
    _checked(response, (200,))
    return response


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
