"""Data store through HTTP (contract §6.7): the JSON routes with Bearer auth, and the
presigned targets under /signed with their XML errors.

One in-process app per module, served twice: Flask's test client, and a real werkzeug
server on a free loopback port (signed URLs are absolute at public_url, so plain
`requests` calls reach them exactly as the client would).
"""

from __future__ import annotations

import io
import json
import math
import threading
from types import SimpleNamespace
from urllib.parse import urlparse
from xml.etree import ElementTree

import itsdangerous.timed
import pytest
import requests
from shipyard_service.app import close_app, create_app
from shipyard_service.config import Settings

from ..helpers import assert_error, free_port

TIMEOUT = 30


class Live:
    def __init__(self, app, base: str, env_url: str, token: str):
        self.app, self.base, self.env_url, self.token = app, base, env_url, token
        self.client = app.test_client()
        self.env_path = urlparse(env_url).path + "/api/v1"

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def http(self, method: str, path: str, **kwargs) -> requests.Response:
        """A real HTTP call to {env}/api/v1{path} with the bearer token."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return requests.request(method, self.env_url + "/api/v1" + path, headers=headers,
                                timeout=TIMEOUT, allow_redirects=False, **kwargs)

    def local(self, method: str, path: str, **kwargs):
        """The same call through Flask's test client."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.client.open(self.env_path + path, method=method, headers=headers, **kwargs)

    @property
    def services(self):
        return self.app.extensions["shipyard"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from werkzeug.serving import make_server

    data_dir = tmp_path_factory.mktemp("datastore-api")
    port = free_port()
    app = create_app(Settings(data_dir=data_dir, port=port))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        creds = json.loads((data_dir / "credentials.json").read_text())
        base = f"http://127.0.0.1:{port}"
        r = requests.post(base + "/api/v1/auth/refresh",
                          json={"refresh_token": creds["sdk_token"]}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        yield Live(app, base, creds["environment_url"], r.json()["access_token"])
    finally:
        server.shutdown()
        thread.join(10)
        close_app(app)


def xml_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert "xml" in response.headers["Content-Type"]
    root = ElementTree.fromstring(response.content)
    children = {child.tag: child.text for child in root}
    assert children["Code"] == code and children["Message"], children
    return children


def upload_single(live: Live, path: str, data: bytes) -> None:
    r = live.http("GET", "/data-store/upload", params={"path_to_object": path})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["fields"], dict)
    assert body["signed_url"].startswith(live.base + "/signed/")
    # What the client sends: fields first, then the `file` part, no auth header.
    up = requests.post(body["signed_url"], data=body["fields"],
                       files={"file": ("file", io.BytesIO(data))}, timeout=TIMEOUT)
    assert 200 <= up.status_code < 300, up.text


def upload_multipart(live: Live, path: str, data: bytes, chunk: int,
                     skip_put: int | None = None) -> requests.Response:
    r = live.http("POST", "/data-store/upload/multipart", json={"path_to_object": path})
    assert r.status_code == 200, r.text
    config = r.json()
    assert isinstance(config, dict)
    count = math.ceil(len(data) / chunk)
    parts = []
    for n in range(1, count + 1):
        body = {"path_to_object": path, "multipart_upload_configuration": config,
                "chunk_size": chunk, "part_number": n}
        if n == count:
            body["size"] = len(data)
        signed = live.http("POST", "/data-store/upload/multipart/part", json=body)
        assert signed.status_code == 200, signed.text
        target = signed.json()
        assert isinstance(target["headers"], dict)
        if n == skip_put:
            parts.append({"number": n})
            continue
        put = requests.put(target["signed_url"], data=data[(n - 1) * chunk: n * chunk],
                           headers=target["headers"], timeout=TIMEOUT)
        assert put.status_code == 200 and put.headers["ETag"].startswith('"')
        parts.append({"number": n, "metadata": put.headers["ETag"]})
    return live.http("POST", "/data-store/upload/multipart/end",
                     json={"path_to_object": path, "multipart_upload_configuration": config,
                           "parts": parts})


def list_all(live: Live) -> list[dict]:
    """Every item, following continuation tokens as the client does (bounded)."""
    items, token = [], None
    for _ in range(100):
        query = {"include_continuation_token": "t"}
        if token:
            query["continuation_token"] = token
        r = live.http("GET", "/data-store/list", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        token = page["continuation_token"]
        assert token != ""
        if token is None:
            return items
    raise AssertionError("the listing never ended")


def download(live: Live, path: str) -> bytes:
    r = live.http("POST", "/data-store/download", data={"path_to_object": path})
    assert r.status_code == 200, r.text
    got = requests.get(r.json()["signed_url"], timeout=TIMEOUT)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/octet-stream"
    return got.content


# Round trips ------------------------------------------------------------------------------
def test_single_part_upload_info_list_download_delete(live):
    data = b"a,b\n1,2\n" * 50_000
    upload_single(live, "/round/trip.csv", data)
    info = live.http("POST", "/data-store/information", json={"path_to_object": "round/trip.csv"})
    assert info.status_code == 200
    body = info.json()
    assert body["path"] == "round/trip.csv" and body["size"] == len(data)
    assert body["last_modified"].endswith("Z")
    assert {"path": "round/trip.csv", "size": len(data),
            "last_modified": body["last_modified"]} in list_all(live)
    assert download(live, "round/trip.csv") == data
    spec = live.client.get("/api/openapi.json").get_json()
    assert any(p.endswith("/data-store/upload/multipart/end") for p in spec["paths"])
    deleted = live.http("DELETE", "/data-store/delete", data={"path_to_object": "round/trip.csv"})
    assert deleted.status_code == 200 and deleted.json() == {"path": "round/trip.csv"}
    for r in (
        live.http("POST", "/data-store/information", json={"path_to_object": "round/trip.csv"}),
        live.http("POST", "/data-store/download", data={"path_to_object": "round/trip.csv"}),
        live.http("DELETE", "/data-store/delete", data={"path_to_object": "round/trip.csv"}),
    ):
        assert_error(r, 404, "NotFound")


def test_multipart_upload_assembles_parts(live):
    data = bytes(range(256)) * 30  # 7 680 bytes: 7 parts of 1 024 and one of 512
    end = upload_multipart(live, "big/model.bin", data, 1024)
    assert end.status_code == 200, end.text
    assert end.json()["size"] == len(data)
    assert download(live, "big/model.bin") == data


def test_multipart_end_fails_when_a_put_was_lost(live):
    end = upload_multipart(live, "big/broken.bin", b"q" * 5000, 1024, skip_put=3)
    body = assert_error(end, 400, "BadRequest")
    assert "part 3 is missing" in body["message"]
    info = live.http("POST", "/data-store/information", json={"path_to_object": "big/broken.bin"})
    assert_error(info, 404)


def test_overwrite_replaces_content(live):
    upload_single(live, "over.txt", b"first")
    upload_single(live, "over.txt", b"second")
    assert download(live, "over.txt") == b"second"


def test_list_pages_through_the_test_client(live):
    store = live.services.datastore
    for i in range(1003):
        store.write(f"default/dev/many/{i:05d}", io.BytesIO(b"."))
    names, token = [], None
    for _ in range(10):
        query = "?include_continuation_token=t"
        if token:
            query += "&" + requests.compat.urlencode({"continuation_token": token})
        r = live.local("GET", "/data-store/list" + query)
        assert r.status_code == 200
        page = r.get_json()
        assert len(page["items"]) <= 1000
        names += [item["path"] for item in page["items"]]
        token = page["continuation_token"]
        assert token != ""
        if token is None:
            break
    many = [n for n in names if n.startswith("many/")]
    assert many == [f"many/{i:05d}" for i in range(1003)]
    assert names == sorted(names)
    r = live.local("GET", "/data-store/list?continuation_token=%25%25bad")
    assert r.status_code == 400 and r.get_json()["name"] == "BadRequest"


def test_form_and_json_encodings_through_the_test_client(live):
    r = live.local("GET", "/data-store/upload?path_to_object=tc/x.bin")
    fields = r.get_json()["fields"]
    signed = urlparse(r.get_json()["signed_url"])
    up = live.client.post(signed.path + "?" + signed.query,
                          data={**fields, "file": (io.BytesIO(b"xyz"), "file")},
                          content_type="multipart/form-data")
    assert up.status_code == 204
    r = live.local("POST", "/data-store/download", data={"path_to_object": "tc/x.bin"})
    url = urlparse(r.get_json()["signed_url"])
    got = live.client.get(url.path + "?" + url.query)
    assert got.status_code == 200 and got.data == b"xyz"
    r = live.local("DELETE", "/data-store/delete", data={"path_to_object": "/tc/x.bin"})
    assert r.status_code == 200 and r.get_json() == {"path": "tc/x.bin"}


# Errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["../x", "a/../../x", "a\\..\\b", "a\x00b", "", "C:/x"])
def test_bad_paths_are_400_json(live, path):
    calls = [
        live.http("POST", "/data-store/information", json={"path_to_object": path}),
        live.http("GET", "/data-store/upload", params={"path_to_object": path}),
        live.http("POST", "/data-store/upload/multipart", json={"path_to_object": path}),
        live.http("POST", "/data-store/download", data={"path_to_object": path}),
        live.http("DELETE", "/data-store/delete", data={"path_to_object": path}),
    ]
    for r in calls:
        body = assert_error(r, 400, "BadRequest")
        assert "path_to_object" in body["additional_data"]


def test_missing_auth_is_401(live):
    for method, path in (("POST", "/data-store/information"), ("GET", "/data-store/list"),
                         ("GET", "/data-store/upload?path_to_object=x"),
                         ("POST", "/data-store/download"), ("DELETE", "/data-store/delete")):
        r = requests.request(method, live.env_url + "/api/v1" + path, timeout=TIMEOUT)
        assert_error(r, 401, "Unauthorized")
    assert_error(live.http("GET", "/data-store/list", headers={"Authorization": "Bearer x.y.z"}),
                 401)


def test_signed_url_errors_are_xml(live, monkeypatch):
    upload_single(live, "signed/a.txt", b"hello")
    url = live.http("POST", "/data-store/download",
                    data={"path_to_object": "signed/a.txt"}).json()["signed_url"]
    assert requests.get(url, timeout=TIMEOUT).content == b"hello"
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    xml_error(requests.get(tampered, timeout=TIMEOUT), 403, "AccessDenied")
    xml_error(requests.get(url.split("?")[0], timeout=TIMEOUT), 403, "AccessDenied")
    xml_error(requests.post(url, timeout=TIMEOUT), 405, "MethodNotAllowed")
    xml_error(requests.get(live.base + "/signed/nothing-here", timeout=TIMEOUT), 404,
              "InvalidRequest")
    # A download token cannot be used to upload.
    token = url.split("token=")[1]
    xml_error(requests.post(live.base + "/signed/upload", params={"token": token},
                            files={"file": ("file", b"evil")}, timeout=TIMEOUT),
              403, "AccessDenied")
    # A token in the form only is not looked for (that would mean reading the body first).
    post = live.http("GET", "/data-store/upload", params={"path_to_object": "signed/c"}).json()
    form_token = post["signed_url"].split("token=")[1]
    xml_error(requests.post(live.base + "/signed/upload", data={"token": form_token},
                            files={"file": ("file", b"late")}, timeout=TIMEOUT),
              403, "AccessDenied")
    post = live.http("GET", "/data-store/upload", params={"path_to_object": "signed/b"}).json()
    xml_error(requests.post(post["signed_url"], data=post["fields"], timeout=TIMEOUT), 400,
              "InvalidRequest")
    # Expired: move itsdangerous' clock past the lifetime (the server runs in-process).
    lifetime = live.services.settings.signed_url_lifetime_s
    import time as real_time

    monkeypatch.setattr(itsdangerous.timed, "time",
                        SimpleNamespace(time=lambda: real_time.time() + lifetime + 5))
    xml_error(requests.get(url, timeout=TIMEOUT), 403, "ExpiredToken")
    monkeypatch.undo()
    live.http("DELETE", "/data-store/delete", data={"path_to_object": "signed/a.txt"})
    missing = xml_error(requests.get(url, timeout=TIMEOUT), 404, "NoSuchKey")
    assert missing["Key"] == "signed/a.txt"


def test_part_put_over_the_chunk_size_is_refused(live):
    config = live.http("POST", "/data-store/upload/multipart",
                       json={"path_to_object": "parts/x"}).json()
    target = live.http("POST", "/data-store/upload/multipart/part",
                       json={"path_to_object": "parts/x", "multipart_upload_configuration": config,
                             "chunk_size": 10, "part_number": 1}).json()
    xml_error(requests.put(target["signed_url"], data=b"x" * 11, timeout=TIMEOUT), 413,
              "EntityTooLarge")
    bad = live.http("POST", "/data-store/upload/multipart/part",
                    json={"path_to_object": "parts/other", "multipart_upload_configuration": config,
                          "chunk_size": 10, "part_number": 1})
    assert_error(bad, 400, "BadRequest")
    bad = live.http("POST", "/data-store/upload/multipart/part",
                    json={"path_to_object": "parts/x", "multipart_upload_configuration": config,
                          "chunk_size": "10", "part_number": 1})
    assert_error(bad, 400, "BadRequest")


def test_artifact_urls(live):
    from shipyard_service.api.signed import artifact_url

    data_dir = live.services.settings.data_dir
    archive = data_dir / "steps" / "4242" / "code.tgz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"\x1f\x8b archive")
    with live.app.app_context():
        url = artifact_url("steps/4242/code.tgz")
        escape = artifact_url("../outside.txt")
        missing = artifact_url("steps/4243/code.tgz")
    assert url.startswith(live.base + "/signed/")
    got = requests.get(url, timeout=TIMEOUT)
    assert got.status_code == 200 and got.content == b"\x1f\x8b archive"
    xml_error(requests.get(escape, timeout=TIMEOUT), 403, "AccessDenied")
    xml_error(requests.get(missing, timeout=TIMEOUT), 404, "NoSuchKey")
    xml_error(requests.get(url[:-4] + "abcd", timeout=TIMEOUT), 403, "AccessDenied")
    # A data-store token is not an artifact token (different salt).
    ds = live.http("GET", "/data-store/upload", params={"path_to_object": "x"}).json()
    xml_error(requests.get(live.base + "/signed/artifact?token=" + ds["signed_url"].split("token=")[1],
                           timeout=TIMEOUT), 403, "AccessDenied")
