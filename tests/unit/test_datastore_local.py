"""LocalDataStore, path rules and signed tokens, directly on a temporary folder."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import itsdangerous.timed
import pytest
from shipyard_service.bodies import StreamBody
from shipyard_service.datastore.local import TMP_PREFIX, LocalDataStore
from shipyard_service.domain import datastore as rules
from shipyard_service.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from shipyard_service.signing import ExpiredSignature, InvalidSignature, Signer

SECRET = "unit-test-secret"


@pytest.fixture()
def store(tmp_path) -> LocalDataStore:
    return LocalDataStore(tmp_path / "datastore", "http://host:1", SECRET, 60)


@pytest.fixture()
def env():
    """Stands in for store.models.Environment: the rules only read these two names."""
    return SimpleNamespace(name="dev", project=SimpleNamespace(name="default"))


@pytest.fixture()
def svc(store):
    return SimpleNamespace(datastore=store)


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


@pytest.fixture()
def time_travel(monkeypatch):
    """Move itsdangerous' clock forward without touching the rest of the process."""
    import time as real_time

    def travel(seconds: float) -> None:
        fake = SimpleNamespace(time=lambda: real_time.time() + seconds)
        monkeypatch.setattr(itsdangerous.timed, "time", fake)

    return travel


# Path rules -------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("a/b.csv", "a/b.csv"),
    ("/a/b.csv", "a/b.csv"),
    ("//etc/passwd", "etc/passwd"),
    ("x..y/..z", "x..y/..z"),
    ("C/colon:inside", "C/colon:inside"),
    ("données/été.txt", "données/été.txt"),
])
def test_normalize_path_accepts(raw, expected):
    assert rules.normalize_path(raw) == expected


@pytest.mark.parametrize("raw", [
    "", "/", "   ", None, 5, "../x", "a/../../x", "a/..", "./a", "a/./b", "a//b", "a/",
    "a\\..\\b", "a\\b", "a\0b", "a\nb", "a\x7fb", "C:/Windows", "c:x", "x" * 1025,
    "a/" + "y" * 256,
])
def test_normalize_path_rejects(raw):
    with pytest.raises(BadRequest) as info:
        rules.normalize_path(raw)
    assert info.value.additional_data == {"path_to_object": raw}
    assert info.value.message


def test_absolute_paths_stay_inside_the_namespace(svc, env, store):
    rules.write_stream(svc, env, "/etc/passwd", io.BytesIO(b"mine"))
    assert (store.root / "default" / "dev" / "etc" / "passwd").read_bytes() == b"mine"
    assert rules.information(svc, env, "etc/passwd")["path"] == "etc/passwd"


def test_store_rechecks_keys_and_symlinks(store, tmp_path):
    for key in ("../x", "a/../../x", "/etc/passwd", "a\\..\\b", "a\0b", "a//b", "",
                f"a/{TMP_PREFIX}1"):
        with pytest.raises(BadRequest):
            store.path_of(key)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("no")
    (store.root / "p").mkdir()
    (store.root / "p" / "link").symlink_to(outside)
    with pytest.raises(BadRequest):
        store.open_read("p/link/secret")
    with pytest.raises(BadRequest):
        store.write("p/link/new", io.BytesIO(b"x"))
    assert not (outside / "new").exists()


# Objects ----------------------------------------------------------------------------------
def test_write_read_info_delete(svc, env, store):
    size = rules.write_stream(svc, env, "a/b.bin", io.BytesIO(b"x" * 3_000_000))
    assert size == 3_000_000
    info = rules.information(svc, env, "a/b.bin")
    assert info["size"] == 3_000_000 and isinstance(info["size"], int)
    assert info["last_modified"].endswith("Z") and len(info["last_modified"]) == 24
    with rules.read_stream(svc, env, "/a/b.bin") as stream:
        assert stream.read() == b"x" * 3_000_000
    assert rules.exists(svc, env, "a/b.bin")
    assert rules.delete(svc, env, "/a/b.bin") == {"path": "a/b.bin"}
    assert not rules.exists(svc, env, "a/b.bin")
    assert not (store.root / "default" / "dev" / "a").exists()  # emptied folders pruned
    with pytest.raises(NotFound):
        rules.delete(svc, env, "a/b.bin")
    with pytest.raises(NotFound):
        rules.information(svc, env, "a/b.bin")
    with pytest.raises(NotFound):
        rules.read_stream(svc, env, "a/b.bin")
    with pytest.raises(NotFound):
        rules.download_url(svc, env, "a/b.bin")


def test_write_is_atomic(store):
    store.write("k", io.BytesIO(b"old"))

    class Failing(io.RawIOBase):
        def __init__(self):
            self.calls = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            self.calls += 1
            if self.calls > 2:
                raise OSError("connection lost")
            buffer[:4] = b"new!"
            return 4

    with pytest.raises(OSError):
        store.write("k", io.BufferedReader(Failing()))
    assert store.open_read("k").read() == b"old"
    assert [p.name for p in store.root.iterdir()] == ["k"]  # no temp file left behind


def test_file_and_folder_name_clash_is_a_conflict(store):
    store.write("a", io.BytesIO(b"1"))
    with pytest.raises(Conflict):
        store.write("a/b", io.BytesIO(b"2"))
    store.write("d/e", io.BytesIO(b"3"))
    with pytest.raises(Conflict):
        store.write("d", io.BytesIO(b"4"))
    with pytest.raises(NotFound):
        store.info("d")


def test_environments_are_isolated(svc, env):
    other = SimpleNamespace(name="prod", project=SimpleNamespace(name="default"))
    rules.write_stream(svc, env, "same.txt", io.BytesIO(b"dev"))
    assert not rules.exists(svc, other, "same.txt")
    assert rules.list_page(svc, other)["items"] == []


# Listing ----------------------------------------------------------------------------------
def test_listing_is_sorted_by_full_key_and_skips_temp_files(store):
    keys = ["p/e/a0", "p/e/a.txt", "p/e/a/b", "p/e/a/c/d", "p/e/a-b", "p/e/b", "p/f/x",
            "p/e/Z", "p/e2/y"]
    for key in keys:
        store.write(key, io.BytesIO(key.encode()))
    (store.root / "p" / "e" / f"{TMP_PREFIX}half").write_bytes(b"partial")
    listed = [info.key for info in store.list("p/e/", None, 100)]
    assert listed == sorted(k for k in keys if k.startswith("p/e/"))
    assert [i.key for i in store.list("p/e/a", None, 100)] == [
        "p/e/a-b", "p/e/a.txt", "p/e/a/b", "p/e/a/c/d", "p/e/a0"]
    assert [i.key for i in store.list("p/e/", "p/e/a.txt", 2)] == ["p/e/a/b", "p/e/a/c/d"]
    assert [i.key for i in store.list("p/e/", "p/e/a/zzz", 10)] == ["p/e/a0", "p/e/b"]
    assert store.list("nothing/", None, 10) == []
    assert list(store.iter_keys("p/f/")) == ["p/f/x"]


def test_list_pages_with_null_token_on_the_last_page(svc, env):
    names = [f"d{i % 3}/f{i:03d}" for i in range(25)]
    for name in names:
        rules.write_stream(svc, env, name, io.BytesIO(b"1"))
    seen, token, pages = [], None, 0
    while pages < 20:
        page = rules.list_page(svc, env, token, limit=10)
        pages += 1
        seen += [item["path"] for item in page["items"]]
        assert all(isinstance(item["size"], int) for item in page["items"])
        token = page["continuation_token"]
        assert token != ""
        if token is None:
            break
    assert pages == 3 and seen == sorted(names)
    exact = rules.list_page(svc, env, None, limit=25)
    assert exact["continuation_token"] is None and len(exact["items"]) == 25
    folder = rules.list_page(svc, env, None, folder_path="/d1/")
    assert [i["path"] for i in folder["items"]] == sorted(n for n in names if n.startswith("d1/"))
    assert rules.list_page(svc, env)["continuation_token"] is None
    with pytest.raises(BadRequest):
        rules.list_page(svc, env, "%%%not-base64")


# Multipart --------------------------------------------------------------------------------
def put_parts(store, key, config, data: bytes, chunk: int, skip=(), corrupt=()):
    count = math.ceil(len(data) / chunk)
    parts = []
    for n in range(1, count + 1):
        url, headers = store.multipart_part(key, config, n, chunk,
                                            len(data) if n == count else None)
        assert headers == {} and url.startswith("http://host:1/signed/part?token=")
        if n in skip:
            continue
        body = data[(n - 1) * chunk: n * chunk]
        if n in corrupt:
            body = body[:-1]
        claims = store.check_token(token_of(url), "put")
        etag = store.write_part(claims, StreamBody(io.BytesIO(body)))
        assert etag.startswith('"') and etag.endswith('"')
        parts.append({"number": n, "metadata": etag})
    return parts


def test_multipart_assembles_in_order(store, tmp_path):
    data = bytes(range(256)) * 41  # 10 496 bytes: parts of 1000, the last one 496
    config = store.multipart_start("p/e/big.bin")
    assert set(config) >= {"upload_id", "key"}
    parts = put_parts(store, "p/e/big.bin", config, data, 1000)
    store.multipart_end("p/e/big.bin", config, parts)
    assert store.open_read("p/e/big.bin").read() == data
    assert not (tmp_path / "uploads" / config["upload_id"]).exists()
    assert [i.key for i in store.list("p/", None, 10)] == ["p/e/big.bin"]


@pytest.mark.parametrize("kwargs, message", [
    ({"skip": (3,)}, "part 3 is missing"),
    ({"corrupt": (2,)}, "part 2 has 999 bytes, expected 1000"),
    ({"corrupt": (11,)}, "part 11 has 495 bytes, expected 496"),
])
def test_multipart_end_names_missing_or_wrong_parts(store, kwargs, message):
    data = b"z" * 10_496
    config = store.multipart_start("p/e/f")
    parts = put_parts(store, "p/e/f", config, data, 1000, **kwargs)
    with pytest.raises(BadRequest) as info:
        store.multipart_end("p/e/f", config, parts)
    assert message in info.value.message
    assert info.value.additional_data["expected_parts"] == 11
    with pytest.raises(NotFound):
        store.info("p/e/f")


def test_multipart_checks_configuration_and_sizes(store):
    config = store.multipart_start("p/e/f")
    with pytest.raises(BadRequest):
        store.multipart_end("p/e/f", config, [])  # no part carried the total size
    with pytest.raises(BadRequest):
        store.multipart_part("p/e/other", config, 1, 10, None)  # config of another key
    with pytest.raises(BadRequest):
        store.multipart_part("p/e/f", dict(config, signature="forged"), 1, 10, None)
    with pytest.raises(BadRequest):
        store.multipart_part("p/e/f", "nope", 1, 10, None)
    with pytest.raises(BadRequest):
        store.multipart_part("p/e/f", config, 0, 10, None)
    with pytest.raises(BadRequest):
        store.multipart_part("p/e/f", config, 1, 0, None)
    url, _ = store.multipart_part("p/e/f", config, 1, 10, None)
    with pytest.raises(PayloadTooLarge):
        store.write_part(store.check_token(token_of(url), "put"),
                         StreamBody(io.BytesIO(b"x" * 11)))
    with pytest.raises(BadRequest):
        store.multipart_part("p/e/f", config, 2, 20, None)  # chunk size changed
    # A part numbered past ceil(size / chunk) is refused at the end.
    store.multipart_part("p/e/f", config, 3, 10, 15)
    with pytest.raises(BadRequest, match="make 2 parts"):
        store.multipart_end("p/e/f", config, [])


def test_stale_uploads_are_collected(store, tmp_path):
    import os
    import time

    old = store.multipart_start("p/e/old")
    folder = tmp_path / "uploads" / old["upload_id"]
    past = time.time() - 25 * 3600
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (past, past))
    fresh = store.multipart_start("p/e/new")
    assert not folder.exists()
    assert (tmp_path / "uploads" / fresh["upload_id"]).exists()
    with pytest.raises(NotFound):
        store.multipart_part("p/e/old", old, 1, 10, None)


# Presigned tokens -------------------------------------------------------------------------
def test_presigned_urls_carry_purpose_bound_tokens(store):
    store.write("p/e/x", io.BytesIO(b"1"))
    get_url = store.presigned_get("p/e/x")
    assert get_url.startswith("http://host:1/signed/object?token=")
    assert store.check_token(token_of(get_url), "get")["key"] == "p/e/x"
    with pytest.raises(InvalidSignature):
        store.check_token(token_of(get_url), "post")  # a GET token cannot upload
    post_url, fields = store.presigned_post("p/e/x")
    # The token is in the URL (checked before the body is read), not in the form fields.
    assert post_url.startswith("http://host:1/signed/upload?token=") and fields == {}
    assert store.check_token(token_of(post_url), "post")["key"] == "p/e/x"
    other = LocalDataStore(store.root, "http://host:1", "another-secret", 60)
    with pytest.raises(InvalidSignature):
        other.check_token(token_of(post_url), "post")


def test_presigned_tokens_expire(store, time_travel):
    token = token_of(store.presigned_get("p/e/x"))
    time_travel(59)
    assert store.check_token(token, "get")
    time_travel(120)
    with pytest.raises(ExpiredSignature):
        store.check_token(token, "get")


def test_signer_tampering_and_expiry(time_travel):
    signer = Signer(SECRET, "salt-a")
    token = signer.sign({"path": "steps/1/code.tgz"})
    assert signer.verify(token, 10) == {"path": "steps/1/code.tgz"}
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (tampered, token + "x", "", "garbage", token.replace(".", "!", 1)):
        with pytest.raises(InvalidSignature):
            signer.verify(bad, 10)
    with pytest.raises(InvalidSignature):
        Signer(SECRET, "salt-b").verify(token, 10)  # another purpose
    time_travel(11)
    with pytest.raises(ExpiredSignature) as info:
        signer.verify(token, 10)
    assert info.value.status_code == 403 and info.value.name == "ExpiredToken"
