"""A large request body written into a file at an offset (the data store's part uploads).

Under gunicorn, a body of known length is moved socket → pipe → file with `os.splice`, in
the kernel, up to a pipe's worth (1 MiB) per call: the bytes never become Python objects.
gunicorn's own reader (`wsgi.input`) hands the same bytes over through a BytesIO per recv
and several copies per byte; on loopback that held a part upload to a third of a file copy.
Anywhere else (another WSGI server, a chunked or TLS body, a body something already began
to read, no `os.splice`) the bytes come from the WSGI stream in 1 MiB reads.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import ssl
from typing import BinaryIO, Protocol

from gunicorn.http.body import Body as GunicornBody
from gunicorn.http.body import LengthReader

from .errors import BadRequest, PayloadTooLarge

BLOCK = 1024 * 1024


class UploadBody(Protocol):
    def write_at(self, fd: int, offset: int, limit: int) -> int:
        """Write the whole body at `offset` of the file `fd`; return its size.
        PayloadTooLarge when it holds more than `limit` bytes."""


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The body is larger than the expected {limit} bytes",
                           {"limit": limit})


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> int:
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    return done


class StreamBody:
    """Any readable stream, in 1 MiB reads; refused as soon as it passes the limit
    (nothing beyond the limit is written)."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream

    def write_at(self, fd: int, offset: int, limit: int) -> int:
        total = 0
        while chunk := self._stream.read(BLOCK):
            if total + len(chunk) > limit:
                raise too_large(limit)
            total += pwrite_all(fd, chunk, offset + total)
        return total


class SocketBody:
    """The body of the current gunicorn request, taken from its connection. What gunicorn
    read past the headers is written first (`take_buffered`); the body reader is told how
    much was consumed, so the connection's next request starts where it should."""

    def __init__(self, sock: socket.socket, body: GunicornBody, reader: LengthReader):
        self._sock, self._body, self._reader = sock, body, reader

    def write_at(self, fd: int, offset: int, limit: int) -> int:
        length = self._reader.length
        if length > limit:
            raise too_large(limit)  # from the Content-Length alone: nothing read
        unreader = self._reader.unreader
        held = unreader.take_buffered()
        if len(held) > length:  # a pipelined next request: give it back
            unreader.unread(held[length:])
            held = held[:length]
        consumed = len(held)
        try:
            pwrite_all(fd, held, offset)
            consumed += _splice_into(self._sock, fd, offset + consumed, length - consumed)
        except BaseException:
            self._body.failed = True
            raise
        finally:
            self._reader.length = length - consumed
        return length


def _splice_into(sock: socket.socket, fd: int, offset: int, count: int) -> int:
    """Move exactly `count` bytes from the socket to `fd` at `offset`; the bytes taken
    from the socket (all of them, or an error)."""
    if count == 0:
        return 0
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, BLOCK)
        except OSError:
            pass  # over /proc/sys/fs/pipe-max-size: the default pipe works, in more calls
        timeout = sock.gettimeout()
        done = 0
        while done < count:
            try:
                moved = os.splice(sock.fileno(), write_end, min(BLOCK, count - done))
            except BlockingIOError:  # a socket with a timeout is non-blocking underneath
                if not select.select([sock], [], [], timeout)[0]:
                    raise TimeoutError("The client stopped sending the body") from None
                continue
            if moved == 0:
                raise BadRequest("The body ended before its Content-Length",
                                 {"expected": count, "received": done})
            while moved:
                written = os.splice(read_end, fd, moved, offset_dst=offset + done)
                done += written
                moved -= written
        return done
    finally:
        os.close(read_end)
        os.close(write_end)


def request_body(environ: dict, stream: BinaryIO) -> UploadBody:
    """The fastest way to receive this request's body; `stream` is the WSGI stream to read
    when the connection cannot be used directly."""
    sock = environ.get("gunicorn.socket")
    body = environ.get("wsgi.input")
    reader = getattr(body, "reader", None)
    if hasattr(os, "splice") and isinstance(sock, socket.socket) \
            and not isinstance(sock, ssl.SSLSocket) and isinstance(body, GunicornBody) \
            and isinstance(reader, LengthReader) and body.buf.tell() == 0:
        return SocketBody(sock, body, reader)
    return StreamBody(stream)
