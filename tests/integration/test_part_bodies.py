"""Part uploads received straight from the connection (service/shipyard_service/bodies.py),
under the real gunicorn server: the body is spliced socket → file, what gunicorn read past
the headers comes first, and the connection stays usable for the next request (keep-alive
and pipelined requests). A body that ends early is refused without a 500, an announced body
over the part size is refused before any byte is read, and a chunked body still works.
A single-part upload's form is decoded as it arrives, only its file part written."""

from __future__ import annotations

import http.client
import os
import socket
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.skipif(
    os.environ.get("SHIPYARD_TEST_BACKEND") == "postgres-s3",
    reason="the local data store's signed part route; on S3 the part URLs are the S3 "
           "server's own")

MIB = 1024 * 1024


def _start(api, path: str) -> dict:
    r = api.request("POST", "/data-store/upload/multipart", json={"path_to_object": path})
    assert r.status_code == 200, r.text
    return r.json()


def _part_url(api, path: str, config: dict, number: int, chunk: int,
              size: int | None = None) -> str:
    body = {"path_to_object": path, "multipart_upload_configuration": config,
            "chunk_size": chunk, "part_number": number}
    if size is not None:
        body["size"] = size
    r = api.request("POST", "/data-store/upload/multipart/part", json=body)
    assert r.status_code == 200, r.text
    return r.json()["signed_url"]


def _end(api, path: str, config: dict) -> requests.Response:
    return api.request("POST", "/data-store/upload/multipart/end",
                       json={"path_to_object": path, "multipart_upload_configuration": config,
                             "parts": []})


def _download(api, path: str) -> bytes:
    r = api.request("POST", "/data-store/download", data={"path_to_object": path})
    return requests.get(r.json()["signed_url"], timeout=60).content


def _put(url: str, body: bytes) -> bytes:
    parts = urlsplit(url)
    return (f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class _Kept:
    """A buffered stream that a finished http.client response cannot close."""

    def __init__(self, stream):
        self._stream = stream

    def close(self) -> None:
        pass

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _Reader:
    """Lets several http.client responses read one after another from one buffered stream."""

    def __init__(self, sock: socket.socket):
        self.stream = _Kept(sock.makefile("rb"))

    def makefile(self, *args, **kwargs):
        return self.stream

    def response(self) -> tuple[int, str, bytes]:
        answer = http.client.HTTPResponse(self)  # type: ignore[arg-type]
        answer.begin()
        return answer.status, answer.getheader("ETag") or "", answer.read()


def _connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=60)


def test_pipelined_and_kept_alive_parts_land_at_their_offsets(server, api):
    """Three parts on one connection: two small ones sent in one write (the second request
    sits in gunicorn's buffer behind the first body), then a 5 MiB one (many splices), then
    a plain request on the same connection."""
    chunk = 5 * MIB
    data = os.urandom(2 * chunk + 3000)
    config = _start(api, "bodies/pipelined.bin")
    urls = [_part_url(api, "bodies/pipelined.bin", config, n, chunk,
                      len(data) if n == 3 else None) for n in (1, 2, 3)]
    pieces = [data[:chunk], data[chunk:2 * chunk], data[2 * chunk:]]
    with _connect(server) as sock:
        reader = _Reader(sock)
        # Parts 3 (3000 bytes) and a 2nd copy of part 3 pipelined in one write.
        sock.sendall(_put(urls[2], pieces[2]) + _put(urls[2], pieces[2]))
        assert reader.response()[0] == 200
        assert reader.response()[0] == 200
        for n in (0, 1):
            sock.sendall(_put(urls[n], pieces[n]))
            status, etag, _ = reader.response()
            assert status == 200 and etag.startswith('"')
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.response()[0] == 200
    assert _end(api, "bodies/pipelined.bin", config).status_code == 200
    assert _download(api, "bodies/pipelined.bin") == data


def test_a_body_over_the_part_size_is_refused_from_its_length(server, api):
    config = _start(api, "bodies/big.bin")
    url = _part_url(api, "bodies/big.bin", config, 1, MIB)
    parts = urlsplit(url)
    with _connect(server) as sock:
        # Announced, never sent: the answer can only come from the Content-Length.
        sock.sendall(f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: {MIB + 1}\r\n\r\n".encode())
        status, _, body = _Reader(sock).response()
    assert status == 413 and b"<Code>EntityTooLarge</Code>" in body


def test_a_body_ending_early_is_refused_and_not_recorded(server, api):
    config = _start(api, "bodies/short.bin")
    url = _part_url(api, "bodies/short.bin", config, 1, 4 * MIB, 3 * MIB)
    with _connect(server) as sock:
        sock.sendall(_put(url, os.urandom(3 * MIB))[:-MIB])  # 1 MiB short
        sock.shutdown(socket.SHUT_WR)
        status, _, body = _Reader(sock).response()
    assert status == 400 and b"<Code>InvalidRequest</Code>" in body, body[:300]
    r = _end(api, "bodies/short.bin", config)
    assert r.status_code == 400 and "part 1 is missing" in r.json()["message"]
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200


def test_a_chunked_part_is_read_from_the_stream(server, api):
    data = os.urandom(3 * MIB + 7)
    config = _start(api, "bodies/chunked.bin")
    url = _part_url(api, "bodies/chunked.bin", config, 1, 4 * MIB, len(data))
    r = requests.put(url, data=(data[i:i + MIB] for i in range(0, len(data), MIB)), timeout=60)
    assert r.status_code == 200, r.text
    assert _end(api, "bodies/chunked.bin", config).status_code == 200
    assert _download(api, "bodies/chunked.bin") == data


# Single-part uploads: a form whose file part is written into the object as it arrives ---------
def _upload_url(api, path: str) -> str:
    r = api.request("GET", "/data-store/upload", params={"path_to_object": path})
    assert r.status_code == 200, r.text
    return r.json()["signed_url"]


def test_a_form_upload_keeps_only_its_file_part(server, api):
    """Fields before and after the file (S3 policy fields), a second file part ignored, the
    file larger than a block; then on the same connection a plain request."""
    data = os.urandom(3 * MIB + 5)
    url = _upload_url(api, "bodies/form.bin")
    boundary = "b0undary"
    body = b"".join([
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nx\r\n".encode(),
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
        data,
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"g.bin\"\r\n\r\nsecond\r\n".encode(),
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\ny\r\n"
        f"--{boundary}--\r\n".encode(),
    ])
    parts = urlsplit(url)
    with _connect(server) as sock:
        reader = _Reader(sock)
        sock.sendall(f"POST {parts.path}?{parts.query} HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert reader.response()[0] == 204
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.response()[0] == 200
    assert _download(api, "bodies/form.bin") == data


@pytest.mark.parametrize("content_type, body, message", [
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\""
     b"\r\n\r\nx\r\n--b--\r\n", b"no file part named"),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"file\""
     b"; filename=\"f\"\r\n\r\nunfinished", b"malformed"),
    ("application/octet-stream", b"raw", b"not a multipart/form-data form"),
])
def test_a_bad_form_is_refused_and_keeps_the_object(server, api, content_type, body, message):
    url = _upload_url(api, "bodies/kept.bin")
    assert requests.post(url, files={"file": ("f", b"kept")}, timeout=30).status_code == 204
    r = requests.post(_upload_url(api, "bodies/kept.bin"), data=body,
                      headers={"Content-Type": content_type}, timeout=30)
    assert r.status_code == 400 and b"<Code>InvalidRequest</Code>" in r.content, r.content
    assert message in r.content, r.content
    assert _download(api, "bodies/kept.bin") == b"kept"
