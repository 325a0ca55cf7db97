"""A large request body written into a file (the data store's uploads): a part at its
offset, or the file part of a form as it arrives. And the other way, a range of a file as a
response body (`file_range`).

Under gunicorn, a body of known length is moved socket → pipe → file with `os.splice`, in
the kernel, up to a pipe's worth (1 MiB) per call: the bytes never become Python objects.
gunicorn's own reader (`wsgi.input`) hands the same bytes over through a BytesIO per recv
and several copies per byte; on loopback that held a part upload to a third of a file copy.
Anywhere else (another WSGI server, a chunked or TLS body, a body something already began
to read, no `os.splice`) the bytes come from the WSGI stream in 1 MiB reads.

A form (the single-part upload) is read in 1 MiB blocks and decoded by werkzeug's sans-IO
multipart decoder, its file part written straight into the object: werkzeug's form parser
reads 64 KiB at a time through gunicorn's reader and spools the file to a temporary file
that was then copied again (30-40 MB/s for 90 MB here).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import select
import socket
import ssl
from collections.abc import Generator, Iterable
from typing import BinaryIO, Protocol

from gunicorn.http.body import Body as GunicornBody
from gunicorn.http.body import LengthReader
from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from .errors import BadRequest, PayloadTooLarge

BLOCK = 1024 * 1024
# The multipart decoder's buffer, at most: one block plus the little it holds back (a part's
# headers, a possible boundary); field values are dropped as they come.
FORM_BUFFER_BYTES = 4 * BLOCK
FORM_MAX_PARTS = 1000


class UploadBody(Protocol):
    def write_at(self, fd: int, offset: int, limit: int) -> int:
        """Write the whole body at `offset` of the file `fd`; return its size.
        PayloadTooLarge when it holds more than `limit` bytes."""

    def chunks(self) -> Generator[bytes, None, None]:
        """The whole body, in blocks of up to 1 MiB."""


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

    def chunks(self) -> Generator[bytes, None, None]:
        while chunk := self._stream.read(BLOCK):
            yield chunk

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

    def _held(self, length: int) -> bytes:
        unreader = self._reader.unreader
        held = unreader.take_buffered()
        if len(held) > length:  # a pipelined next request: give it back
            unreader.unread(held[length:])
            held = held[:length]
        return held

    def chunks(self) -> Generator[bytes, None, None]:
        length = self._reader.length
        held = self._held(length)
        consumed = len(held)
        try:
            if held:
                yield held
            while consumed < length:
                data = self._sock.recv(min(BLOCK, length - consumed))
                if not data:
                    raise BadRequest("The body ended before its Content-Length",
                                     {"expected": length, "received": consumed})
                consumed += len(data)
                yield data
        except BaseException:
            self._body.failed = True
            raise
        finally:
            self._reader.length = length - consumed

    def write_at(self, fd: int, offset: int, limit: int) -> int:
        length = self._reader.length
        if length > limit:
            raise too_large(limit)  # from the Content-Length alone: nothing read
        held = self._held(length)
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


def form_file_into(body: UploadBody, boundary: bytes, out: BinaryIO,
                   name: str = "file") -> int | None:
    """Write the content of the form's first file part called `name` (a
    multipart/form-data body) into `out`, as it arrives; its size, or None when the form
    has no such part. Other fields are read and dropped (the local store's POST policy
    fields: its token rides in the URL)."""
    decoder = MultipartDecoder(boundary, max_form_memory_size=FORM_BUFFER_BYTES,
                               max_parts=FORM_MAX_PARTS)
    size: int | None = None
    in_file = False
    # Closed at once on an error, so the body reader learns what was consumed before the
    # connection's next request is read.
    chunks = body.chunks()
    try:
        for data in itertools.chain(chunks, [None]):
            decoder.receive_data(data)
            while not isinstance(event := decoder.next_event(), (NeedData, Epilogue)):
                if isinstance(event, File):
                    in_file = event.name == name and size is None
                    if in_file:
                        size = 0
                elif isinstance(event, Field):
                    in_file = False
                elif isinstance(event, Data) and in_file:
                    out.write(event.data)
                    size += len(event.data)  # type: ignore[operator]
    except (ValueError, RequestEntityTooLarge) as exc:  # the decoder's words for bad forms
        raise BadRequest(f"The multipart form is malformed: {exc}") from None
    finally:
        chunks.close()
    return size


def request_body(environ: dict, stream: BinaryIO) -> UploadBody:
    """The fastest way to receive this request's body; `stream` is the WSGI stream to read
    when the connection cannot be used directly."""
    sock = environ.get("gunicorn.socket")
    body = environ.get("wsgi.input")
    reader = getattr(body, "reader", None)
    if hasattr(os, "splice") and isinstance(sock, socket.socket) \
            and not isinstance(sock, ssl.SSLSocket) and isinstance(body, GunicornBody) \
            and isinstance(reader, LengthReader) and body.buf.tell() == 0 \
            and _knows_gunicorn_reader(reader):
        return SocketBody(sock, body, reader)
    return StreamBody(stream)


def _knows_gunicorn_reader(reader: LengthReader) -> bool:
    """SocketBody uses gunicorn's reader internals (27.x): another release that lacks them
    gets the WSGI stream instead of a broken connection."""
    unreader = getattr(reader, "unreader", None)
    return isinstance(getattr(reader, "length", None), int) \
        and callable(getattr(unreader, "take_buffered", None)) \
        and callable(getattr(unreader, "unread", None))


def file_range(environ: dict, file: BinaryIO, length: int) -> Iterable[bytes]:
    """A response body of `length` bytes of `file` from its current offset; the file is
    closed with the body. Under gunicorn, its file wrapper: gunicorn sends the response's
    Content-Length bytes from the file's offset with sendfile (and never more than that
    length when it cannot). Elsewhere, 1 MiB reads."""
    wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(wrapper, type) and issubclass(wrapper, GunicornFileWrapper):
        return wrapper(file)
    return _blocks(file, length)


def _blocks(file: BinaryIO, length: int) -> Generator[bytes, None, None]:
    with file:
        while length > 0 and (data := file.read(min(BLOCK, length))):
            length -= len(data)
            yield data
