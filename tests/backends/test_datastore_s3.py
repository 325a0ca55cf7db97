"""The S3 data store (minio client) against two local S3-protocol servers, moto and SeaweedFS:
the DataStore interface, presigned URLs as the contract hands them to clients (§6.7), ranged
downloads, and bad input.

moto checks neither signatures nor expiry; SeaweedFS does, so on it a presigned URL whose
signature or scope was altered, or that expired, is refused."""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid

import pytest
import requests
from minio import Minio
from shipyard_service.config import Settings
from shipyard_service.datastore import make_datastore
from shipyard_service.datastore.s3 import S3DataStore
from shipyard_service.errors import BadRequest, NotFound

from .servers import MotoServer, SeaweedServer

PART = 5 * 1024 * 1024  # S3's smallest part


@pytest.fixture(scope="module", params=[MotoServer, SeaweedServer], ids=["moto", "seaweedfs"])
def moto(request):
    """The S3 server (the name is older than the second server). Signatures and expiry are
    tested on SeaweedFS only: moto checks neither."""
    server = request.param().start()
    yield server
    server.stop()


@pytest.fixture()
def store(moto) -> S3DataStore:
    client = Minio(moto.endpoint, access_key=moto.access_key, secret_key=moto.secret_key,
                   secure=False, region="us-east-1")
    return S3DataStore(client, f"test-{uuid.uuid4().hex[:10]}", 600)


class _Chunks(io.RawIOBase):
    """A readable stream of `size` pseudo-random bytes that never exists in memory whole."""

    def __init__(self, size: int, seed: int = 1):
        self.left, self.digest, self._block = size, hashlib.sha256(), os.urandom(64 * 1024)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left, len(self._block))
        buffer[:n] = self._block[:n]
        self.digest.update(self._block[:n])
        self.left -= n
        return n


def test_factory_selects_by_configuration(moto, tmp_path):
    settings = Settings(data_dir=tmp_path, datastore="s3", s3_endpoint=moto.endpoint,
                        s3_access_key=moto.access_key, s3_secret_key=moto.secret_key,
                        s3_bucket="factory-bucket", s3_secure=False)
    assert isinstance(make_datastore(settings, "secret"), S3DataStore)
    # Two API processes starting together: the second finds the bucket made by the first.
    assert isinstance(make_datastore(settings, "secret"), S3DataStore)
    with pytest.raises(ValueError, match="SHIPYARD_S3_ENDPOINT"):
        make_datastore(Settings(data_dir=tmp_path, datastore="s3"), "secret")
    with pytest.raises(ValueError, match="SHIPYARD_DATASTORE"):
        make_datastore(Settings(data_dir=tmp_path, datastore="ftp"), "secret")
    with pytest.raises(ValueError, match="3 characters"):
        S3DataStore(Minio(moto.endpoint, secure=False), "ab", 60)


def test_streaming_write_read_info_list_delete(store):
    source = _Chunks(40 * 1024 * 1024 + 123)  # several put_object parts
    assert store.write("p/e/big.bin", source) == 40 * 1024 * 1024 + 123
    info = store.info("p/e/big.bin")
    assert info.size == 40 * 1024 * 1024 + 123 and info.last_modified.tzinfo is None
    digest = hashlib.sha256()
    with store.open_read("p/e/big.bin") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == source.digest.hexdigest()

    for name in ("b", "a/x", "a/y", "c"):
        store.write(f"p/e/{name}", io.BytesIO(name.encode()))
    store.write("p/other/a", io.BytesIO(b"elsewhere"))
    keys = [o.key for o in store.list("p/e/", None, 100)]
    assert keys == ["p/e/a/x", "p/e/a/y", "p/e/b", "p/e/big.bin", "p/e/c"]
    assert [o.key for o in store.list("p/e/", "p/e/a/y", 2)] == ["p/e/b", "p/e/big.bin"]
    assert store.list("p/e/", None, 0) == []
    assert list(store.iter_keys("p/e/a/")) == ["p/e/a/x", "p/e/a/y"]

    store.delete("p/e/b")
    with pytest.raises(NotFound):
        store.info("p/e/b")
    with pytest.raises(NotFound):
        store.delete("p/e/b")
    with pytest.raises(NotFound):
        store.open_read("p/e/missing")
    assert store.open_read("p/other/a").read() == b"elsewhere"


@pytest.mark.parametrize("key", ["", "/abs", ".shipyard-uploads/x.json", None])
def test_invalid_keys_are_refused(store, key):
    with pytest.raises(BadRequest):
        store.info(key)
    with pytest.raises(BadRequest):
        store.presigned_post(key)


def test_presigned_single_part_upload_and_download(store):
    url, fields = store.presigned_post("p/e/up/file.csv")
    assert url.startswith("http://") and isinstance(fields, dict) and fields["key"] == "p/e/up/file.csv"
    # Exactly what craft-ai-sdk sends: the fields in order, then the file part `file`.
    response = requests.post(url, data=fields, files={"file": ("file.csv", b"a,b\n1,2\n")},
                             timeout=30)
    assert 200 <= response.status_code < 300, response.text
    download = requests.get(store.presigned_get("p/e/up/file.csv"), timeout=30)
    assert download.status_code == 200 and download.content == b"a,b\n1,2\n"
    missing = requests.get(store.presigned_get("p/e/none"), timeout=30)
    assert missing.status_code == 404 and b"<Code>NoSuchKey</Code>" in missing.content


def _upload_parts(store, key, config, data: bytes, chunk: int = PART, skip=()):
    etags = []
    count = -(-len(data) // chunk)
    for number in range(1, count + 1):
        last = number == count
        url, headers = store.multipart_part(key, config, number, chunk, len(data) if last else None)
        assert headers == {}
        if number in skip:
            etags.append({"number": number})
            continue
        r = requests.put(url, data=data[(number - 1) * chunk:number * chunk], headers=headers,
                         timeout=60)
        assert r.status_code == 200, r.text
        etags.append({"number": number, "metadata": r.headers["ETag"]})
    return etags


def test_multipart_upload_as_the_client_does_it(store):
    data = os.urandom(2 * PART + 1000)
    config = store.multipart_start("p/e/multi.bin")
    assert isinstance(config, dict) and config["upload_id"]
    parts = _upload_parts(store, "p/e/multi.bin", config, data)
    store.multipart_end("p/e/multi.bin", config, parts)
    assert store.info("p/e/multi.bin").size == len(data)
    assert requests.get(store.presigned_get("p/e/multi.bin"), timeout=60).content == data
    # The bookkeeping object is gone and never listed.
    assert [o.key for o in store.list("", None, 100)] == ["p/e/multi.bin"]
    with pytest.raises(NotFound):  # finished: the upload id is no longer valid
        store.multipart_end("p/e/multi.bin", config, parts)


def test_multipart_end_refuses_missing_parts(store):
    data = os.urandom(2 * PART + 10)
    config = store.multipart_start("p/e/holes.bin")
    parts = _upload_parts(store, "p/e/holes.bin", config, data, skip={2})
    with pytest.raises(BadRequest, match="part 2 is missing"):
        store.multipart_end("p/e/holes.bin", config, parts)
    with pytest.raises(NotFound):
        store.info("p/e/holes.bin")  # nothing half-written


def test_multipart_end_refuses_wrong_sizes_and_etags(store):
    data = os.urandom(PART + 10)
    config = store.multipart_start("p/e/sizes.bin")
    url, _ = store.multipart_part("p/e/sizes.bin", config, 1, PART, None)
    requests.put(url, data=data[:PART - 1], timeout=60)  # one byte short
    url, _ = store.multipart_part("p/e/sizes.bin", config, 2, PART, len(data))
    requests.put(url, data=data[PART:], timeout=60)
    with pytest.raises(BadRequest, match="part 1 has"):
        store.multipart_end("p/e/sizes.bin", config, [])
    config = store.multipart_start("p/e/etag.bin")
    parts = _upload_parts(store, "p/e/etag.bin", config, data)
    parts[0]["metadata"] = '"00000000000000000000000000000000"'
    with pytest.raises(BadRequest, match="ETag"):
        store.multipart_end("p/e/etag.bin", config, parts)


def test_multipart_end_without_the_total_size_is_refused(store):
    config = store.multipart_start("p/e/nosize.bin")
    store.multipart_part("p/e/nosize.bin", config, 1, PART, None)
    with pytest.raises(BadRequest, match="size"):
        store.multipart_end("p/e/nosize.bin", config, [])


@pytest.mark.parametrize("config", [None, "text", {}, {"upload_id": 5}, {"upload_id": ""}])
def test_bad_upload_configurations(store, config):
    with pytest.raises(BadRequest):
        store.multipart_part("p/e/x", config, 1, PART, None)
    with pytest.raises(BadRequest):
        store.multipart_end("p/e/x", config, [])


def test_a_configuration_for_another_object_or_bad_numbers(store):
    config = store.multipart_start("p/e/one")
    with pytest.raises(BadRequest, match="another object"):
        store.multipart_part("p/e/two", config, 1, PART, None)
    for number, chunk, size in ((0, PART, None), (10_001, PART, None), (1, 0, None),
                                (1, PART, -1), (True, PART, None), (1, "5", None)):
        with pytest.raises(BadRequest):
            store.multipart_part("p/e/one", config, number, chunk, size)
    store.multipart_part("p/e/one", config, 1, PART, None)
    with pytest.raises(BadRequest, match="chunk_size"):
        store.multipart_part("p/e/one", config, 2, PART + 1, None)
    unknown = {"upload_id": "no-such-upload", "key": "p/e/one"}
    with pytest.raises(NotFound):
        store.multipart_part("p/e/one", unknown, 1, PART, 10)
    with pytest.raises((NotFound, BadRequest)):
        store.multipart_end("p/e/one", unknown, [])
    # No bookkeeping for an upload that does not exist.
    assert not [o.key for o in store.list("", None, 10) if "no-such-upload" in o.key]


@pytest.mark.parametrize("moto", [SeaweedServer], ids=["seaweedfs"], indirect=True)
def test_presigned_urls_are_checked_by_a_real_server(moto, store):
    """A presigned GET or part PUT whose signature, key or part number was changed is
    refused (403), and so is one past its lifetime."""
    store.write("p/e/signed.bin", io.BytesIO(b"signed bytes"))
    url = store.presigned_get("p/e/signed.bin")
    assert requests.get(url, timeout=30).content == b"signed bytes"
    forged = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(forged, timeout=30).status_code == 403
    other = url.replace("signed.bin", "signed.bin2")
    assert requests.get(other, timeout=30).status_code == 403

    config = store.multipart_start("p/e/parts.bin")
    part_url, _ = store.multipart_part("p/e/parts.bin", config, 1, PART, 10)
    moved = part_url.replace("partNumber=1", "partNumber=2")
    assert requests.put(moved, data=b"0123456789", timeout=30).status_code == 403
    assert requests.put(part_url, data=b"0123456789", timeout=30).status_code == 200

    short = S3DataStore(store.client, store.bucket, 1)
    expiring = short.presigned_get("p/e/signed.bin")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        answer = requests.get(expiring, timeout=30)
        if answer.status_code == 403:
            break
    assert answer.status_code == 403, answer.status_code


def test_ranged_downloads_from_the_s3_server(store):
    """What our SDK's parallel download asks of a presigned GET: byte ranges (206 with the
    object's size in Content-Range), pinned to one version by If-Match."""
    data = os.urandom(3 * 1024 * 1024 + 5)
    store.write("p/e/ranged.bin", io.BytesIO(data))
    url = store.presigned_get("p/e/ranged.bin")
    first = requests.get(url, headers={"Range": "bytes=0-1048575"}, timeout=30)
    assert first.status_code == 206 and first.content == data[:1048576]
    assert first.headers["Content-Range"] == f"bytes 0-1048575/{len(data)}"
    etag = first.headers["ETag"]
    rest = requests.get(url, headers={"Range": "bytes=1048576-", "If-Match": etag}, timeout=30)
    assert rest.status_code == 206 and rest.content == data[1048576:]
    stale = requests.get(url, headers={"Range": "bytes=0-9", "If-Match": '"0123"'}, timeout=30)
    assert stale.status_code == 412
