"""Transfers in parallel streams, under the real server (gunicorn), through our SDK and plain
HTTP, on the local store (and the S3 store in the PostgreSQL + S3 pass where the URLs are
the S3 server's own):

* a download into a file comes in ranges over several connections, each written at its
  offset (spliced from the socket, or read then written), and comes back byte for byte;
  into a buffer, and for an empty object, one GET;
* an object replaced while its ranges are fetched is an error (If-Match), never a mix of
  two objects, and the half-written file is removed; a retry gets the new object whole;
* the local store serves one byte range from its offset (206, Content-Range, ETag), 416
  for a range past the end, 412 for another version's ETag;
* parts of one upload in flight at once: completing out of order, they land at their
  offsets; one whose connection dies mid-body is missing at `end` (a clear 400, no object
  made) and sending it again finishes the upload whole.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
from urllib.parse import urlsplit

import pytest
import requests
from shipyard import _datastore, _transfer
from shipyard.exceptions import SdkException

from .test_part_bodies import _connect, _end, _part_url, _put, _Reader, _start

MIB = 1024 * 1024
S3_PASS = os.environ.get("SHIPYARD_TEST_BACKEND") == "postgres-s3"
local_store_only = pytest.mark.skipif(
    S3_PASS, reason="the local data store's signed routes; on S3 the URLs are the S3 "
                    "server's own")


@pytest.fixture()
def small_ranges(monkeypatch):
    """1 MiB ranges over 3 streams, so a few MiB make many ranges; records each range
    written (offset, thread)."""
    monkeypatch.setattr(_transfer, "RANGE_BYTES", MIB)
    monkeypatch.setattr(_datastore, "DOWNLOAD_CONCURRENCY", 3)
    written: list[tuple[int, str]] = []
    original = _transfer._write_range

    def recording(response, fd, offset, *rest):
        written.append((offset, threading.current_thread().name))
        return original(response, fd, offset, *rest)

    monkeypatch.setattr(_transfer, "_write_range", recording)
    return written


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("splice", [True, False], ids=["spliced", "read-and-written"])
def test_a_download_into_a_file_comes_in_ranges_at_their_offsets(sdk, tmp_path, small_ranges,
                                                                 monkeypatch, splice):
    """Ranges spliced from the socket into the file, or (TLS, no os.splice) received into a
    buffer and written at their offsets."""
    if not splice:
        monkeypatch.delattr(os, "splice")
    data = os.urandom(7 * MIB + 12345)
    sdk.upload_data_store_object(io.BytesIO(data), "parallel/seven.bin")
    target = tmp_path / "seven.bin"
    sdk.download_data_store_object("parallel/seven.bin", str(target))
    assert _digest(target.read_bytes()) == _digest(data)
    offsets = sorted(offset for offset, _ in small_ranges)
    assert offsets == [n * MIB for n in range(8)]  # every range once, the short last too
    assert len({thread for _, thread in small_ranges}) > 1, small_ranges

    # Into a buffer: one stream, no ranges.
    small_ranges.clear()
    buffer = io.BytesIO()
    sdk.download_data_store_object("parallel/seven.bin", buffer)
    assert buffer.getvalue() == data and small_ranges == []

    # A path that is not a regular file (a FIFO): one stream, written in order.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    sdk.download_data_store_object("parallel/seven.bin", str(fifo))
    reader.join(60)
    assert received == [data] and small_ranges == []

    # An empty object has no first byte: asked again without a range.
    sdk.upload_data_store_object(io.BytesIO(b""), "parallel/empty.bin")
    empty = tmp_path / "empty.bin"
    sdk.download_data_store_object("parallel/empty.bin", str(empty))
    assert empty.read_bytes() == b""
    # Smaller than one range: the first answer holds it all.
    sdk.upload_data_store_object(io.BytesIO(b"x"), "parallel/one.bin")
    sdk.download_data_store_object("parallel/one.bin", str(empty))
    assert empty.read_bytes() == b"x"


def test_an_object_replaced_mid_download_fails_and_leaves_no_file(sdk, tmp_path,
                                                                  small_ranges, monkeypatch):
    old, new = os.urandom(6 * MIB), os.urandom(6 * MIB)
    sdk.upload_data_store_object(io.BytesIO(old), "parallel/replaced.bin")
    monkeypatch.setattr(_datastore, "DOWNLOAD_CONCURRENCY", 2)
    original = _transfer._write_range
    replaced, one_at_a_time = [], threading.Lock()

    def replace_after_the_first(response, fd, offset, *rest):
        # The other stream waits: the ranges it asks for next are asked after the change.
        with one_at_a_time:
            original(response, fd, offset, *rest)
            if not replaced:
                replaced.append(offset)
                sdk.upload_data_store_object(io.BytesIO(new), "parallel/replaced.bin")

    monkeypatch.setattr(_transfer, "_write_range", replace_after_the_first)
    target = tmp_path / "replaced.bin"
    with pytest.raises(SdkException) as error:
        sdk.download_data_store_object("parallel/replaced.bin", str(target))
    assert error.value.status_code == 412 and error.value.name == "PreconditionFailed"
    assert not target.exists()

    monkeypatch.setattr(_transfer, "_write_range", original)
    monkeypatch.setattr(_datastore, "DOWNLOAD_CONCURRENCY", 3)
    sdk.download_data_store_object("parallel/replaced.bin", str(target))
    assert _digest(target.read_bytes()) == _digest(new)


@local_store_only
def test_the_local_store_serves_one_range_from_its_offset(api):
    data = os.urandom(3 * MIB + 11)
    config = _start(api, "parallel/ranged.bin")
    url = _part_url(api, "parallel/ranged.bin", config, 1, 4 * MIB, len(data))
    assert requests.put(url, data=data, timeout=60).status_code == 200
    assert _end(api, "parallel/ranged.bin", config).status_code == 200
    r = api.request("POST", "/data-store/download", data={"path_to_object": "parallel/ranged.bin"})
    signed = r.json()["signed_url"]

    got = requests.get(signed, headers={"Range": f"bytes={2 * MIB}-{2 * MIB + 99}"}, timeout=60)
    assert got.status_code == 206 and got.content == data[2 * MIB:2 * MIB + 100]
    assert got.headers["Content-Range"] == f"bytes {2 * MIB}-{2 * MIB + 99}/{len(data)}"
    etag = got.headers["ETag"]
    tail = requests.get(signed, headers={"Range": "bytes=-5", "If-Match": etag}, timeout=60)
    assert tail.status_code == 206 and tail.content == data[-5:]
    past = requests.get(signed, headers={"Range": f"bytes={len(data)}-"}, timeout=60)
    assert past.status_code == 416 and b"<Code>InvalidRange</Code>" in past.content
    other = requests.get(signed, headers={"Range": "bytes=0-9", "If-Match": '"1-2-3"'},
                         timeout=60)
    assert other.status_code == 412 and b"<Code>PreconditionFailed</Code>" in other.content
    whole = requests.get(signed, timeout=60)
    assert whole.status_code == 200 and whole.content == data


def _send_part_later(server, url: str, body: bytes) -> tuple[socket.socket, threading.Event,
                                                             list]:
    """PUT a part whose first half goes now and second half when the event is set, in a
    thread; the answer lands in the list."""
    sock = _connect(server)
    request = _put(url, body)
    half = len(request) - len(body) // 2
    sock.sendall(request[:half])
    go, answers = threading.Event(), []

    def finish() -> None:
        go.wait(60)
        sock.sendall(request[half:])
        answers.append(_Reader(sock).response())

    threading.Thread(target=finish, daemon=True).start()
    return sock, go, answers


@local_store_only
def test_parts_in_flight_at_once_complete_out_of_order(server, api):
    """Part 1 is half sent and held while parts 3 and 2 are sent whole and answered; then
    part 1 ends. Each lands at its offset whatever the order."""
    chunk = 2 * MIB
    data = os.urandom(2 * chunk + 5000)
    config = _start(api, "parallel/ooo.bin")
    urls = [_part_url(api, "parallel/ooo.bin", config, n, chunk,
                      len(data) if n == 3 else None) for n in (1, 2, 3)]
    sock, go, answers = _send_part_later(server, urls[0], data[:chunk])
    try:
        for n in (3, 2):
            put = requests.put(urls[n - 1], data=data[(n - 1) * chunk:n * chunk], timeout=60)
            assert put.status_code == 200, put.text
        assert answers == []  # part 1 still in flight
        go.set()
        for _ in range(600):
            if answers:
                break
            threading.Event().wait(0.1)
        assert answers and answers[0][0] == 200, answers
    finally:
        sock.close()
    assert _end(api, "parallel/ooo.bin", config).status_code == 200
    r = api.request("POST", "/data-store/download", data={"path_to_object": "parallel/ooo.bin"})
    assert _digest(requests.get(r.json()["signed_url"], timeout=60).content) == _digest(data)


@local_store_only
def test_a_part_dying_mid_body_is_missing_then_sent_again(server, api):
    """Parts 1 and 3 arrive while part 2's connection closes halfway through its body: `end`
    says part 2 is missing and makes no object (the old one stays); part 2 sent again on a
    new connection finishes the upload with the right bytes."""
    path = "parallel/retry.bin"
    chunk = 2 * MIB
    before = b"the previous object"
    config = _start(api, path)
    url = _part_url(api, path, config, 1, len(before), len(before))
    assert requests.put(url, data=before, timeout=60).status_code == 200
    assert _end(api, path, config).status_code == 200

    data = os.urandom(2 * chunk + 777)
    config = _start(api, path)
    urls = [_part_url(api, path, config, n, chunk, len(data) if n == 3 else None)
            for n in (1, 2, 3)]
    request = _put(urls[1], data[chunk:2 * chunk])
    with _connect(server) as sock:
        sock.sendall(request[:len(request) - chunk // 2])
        for n in (1, 3):
            put = requests.put(urls[n - 1], data=data[(n - 1) * chunk:n * chunk], timeout=60)
            assert put.status_code == 200, put.text
    # The connection is gone with half of part 2.
    r = _end(api, path, config)
    assert r.status_code == 400 and "part 2 is missing" in r.json()["message"], r.text
    r = api.request("POST", "/data-store/download", data={"path_to_object": path})
    assert requests.get(r.json()["signed_url"], timeout=60).content == before

    put = requests.put(urls[1], data=data[chunk:2 * chunk], timeout=60)
    assert put.status_code == 200, put.text
    assert _end(api, path, config).status_code == 200
    r = api.request("POST", "/data-store/download", data={"path_to_object": path})
    assert _digest(requests.get(r.json()["signed_url"], timeout=60).content) == _digest(data)
    assert urlsplit(url).path == "/signed/part"


def test_an_upload_whose_part_fails_mid_way_is_an_error_then_a_retry_works(sdk, tmp_path,
                                                                            monkeypatch):
    """Our SDK sends 4 parts, 2 at a time; the source file is cut short while part 3 is
    about to go, so its body ends mid-way: a clear error, no object made (the previous
    one stays), and the same upload once the file is whole again succeeds."""
    monkeypatch.setattr(_datastore, "UPLOAD_CONCURRENCY", 2)
    chunk = 5 * MIB
    data = os.urandom(3 * chunk + 1000)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    sdk.upload_data_store_object(io.BytesIO(b"previous"), "parallel/cut.bin")
    original = _transfer.put_part
    cut = []

    def cut_before_part_3(connections, url, headers, file, read_part, offset, size):
        if offset == 2 * chunk and not cut:
            cut.append(offset)
            os.truncate(source, offset + size // 2)
        return original(connections, url, headers, file, read_part, offset, size)

    monkeypatch.setattr(_transfer, "put_part", cut_before_part_3)
    monkeypatch.setattr(sdk, "_MULTIPART_THRESHOLD", chunk)
    monkeypatch.setattr(sdk, "_MULTIPART_PART_SIZE", chunk)
    with pytest.raises(SdkException, match="ended after"):
        sdk.upload_data_store_object(str(source), "parallel/cut.bin")
    assert cut == [2 * chunk]
    back = io.BytesIO()
    sdk.download_data_store_object("parallel/cut.bin", back)
    assert back.getvalue() == b"previous"

    source.write_bytes(data)
    sdk.upload_data_store_object(str(source), "parallel/cut.bin")
    target = tmp_path / "back.bin"
    sdk.download_data_store_object("parallel/cut.bin", str(target))
    assert _digest(target.read_bytes()) == _digest(data)
