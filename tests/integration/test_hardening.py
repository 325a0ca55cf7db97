"""Issue 13 point 4: hostile input and the protocol details an attacker probes, each
answered as documented, through plain HTTP against the real server."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import stat
import statistics
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import pytest
import requests

from ..archives import path_max_escape
from ..helpers import ROOT, ServerProcess, assert_error, create_step_http, run_and_wait


def test_405_answers_carry_allow(server, api):
    r = requests.delete(server.url + "/api/v1/auth/refresh", timeout=10)
    assert_error(r, 405)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}, r.headers
    r = api.request("PUT", "/steps")
    assert_error(r, 405)
    assert {"GET", "POST"} <= set(r.headers["Allow"].replace(" ", "").split(","))


def test_requests_gunicorn_refuses_itself_get_the_documented_error_shape(server, api):
    """Found by the fuzz (seeded, seed 44): a request line over gunicorn's 4094 bytes was
    answered with gunicorn's HTML page (text/html), not the documented JSON error."""
    r = api.request("GET", "/pipelines", params={"q": "x" * 5000})
    body = assert_error(r, 414, "URITooLong")
    assert r.headers["Content-Type"] == "application/json" and "4094" in body["message"]
    r = requests.get(server.url + "/healthz", headers={"X-Big": "y" * 9000}, timeout=10)
    assert 400 <= r.status_code < 500 and r.headers["Content-Type"] == "application/json"
    assert_error(r, r.status_code)
    # Malformed HTTP, from a raw socket.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", "/healthz")
    conn.putheader("Bad Header", "x")
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 400 and r.getheader("Content-Type") == "application/json"
    assert set(json.loads(r.read())) == {"message", "name", "request_id", "additional_data"}
    conn.close()


def test_form_field_names_the_fuzz_found_are_400s(api):
    """Found by the seeded fuzz (seed 55), each a 500: a form key "¹" (str.isdigit is true,
    int() fails) and a multipart part whose name cannot be read (werkzeug gives None)."""
    for kind in ("steps", "pipelines"):
        r = api.request("POST", f"/{kind}", data="%C2%B9=.exe",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_error(r, 400)
        r = api.request("POST", f"/{kind}", data={"x[¹]": "a", "x[0]": "b", "step_name": "s"})
        assert_error(r, 400)
        # (The fuzz's name ended in a backslash escaping its closing quote.)
        nameless = b"--XX\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--XX--\r\n"
        r = api.request("POST", f"/{kind}", data=nameless,
                        headers={"Content-Type": "multipart/form-data; boundary=XX"})
        body = assert_error(r, 400, "BadRequest")
        assert "no name" in body["message"], body


def test_path_max_symlink_chain_archive_is_a_clear_400(server, api):
    """The CVE-2025-4517 archive (tests/archives.py) aimed at the data folder: refused
    before anything is stored, nothing written anywhere."""
    archive = path_max_escape(3, "pwned.txt")  # steps/<id>/code -> the data folder
    before = sorted(p.name for p in server.data_dir.iterdir())
    r = api.request("POST", "/steps", data={"step_name": "cve-4517", "function_path": "main.py",
                                            "function_name": "run"},
                    files={"step_file": ("step_file", archive)})
    body = assert_error(r, 400, "BadRequest")
    assert "symbolic link" in body["message"], body
    assert not (server.data_dir / "pwned.txt").exists()
    assert sorted(p.name for p in server.data_dir.iterdir()) == before
    assert_error(api.request("GET", "/steps/cve-4517"), 404)


# The three 500s of the issue ------------------------------------------------------------------
OUT_CODE = "def run():\n    return {'o': 1}\n"
OUT_FIELDS = {"outputs[0][name]": "o", "outputs[0][data_type]": "number"}


def test_mapping_names_that_are_objects_or_lists_are_400s(api):
    create_step_http(api, "mapped", {"main.py": OUT_CODE}, kind="pipelines", fields=OUT_FIELDS)
    for bad in ({"x": 1}, ["o"], [[1]]):
        mapping = [{"pipeline_output_name": bad, "endpoint_output_name": "o"}]
        r = api.request("POST", "/pipelines/mapped/run",
                        data={"json_inputs": "{}", "outputs_mapping": json.dumps(
                            [{"pipeline_output_name": bad, "is_null": True}])})
        assert_error(r, 400, "BadRequest")
        r = api.request("POST", "/endpoints", json={"pipeline_name": "mapped", "name": "m-ep",
                                                    "outputs_mapping": mapping})
        assert_error(r, 400, "BadRequest")
        r = api.request("POST", "/endpoints", json={
            "pipeline_name": "mapped", "name": "m-ep",
            "inputs_mapping": [{"pipeline_input_name": bad, "endpoint_input_name": "x"}]})
        assert_error(r, 400, "BadRequest")
    r = api.request("POST", "/endpoints", json={"pipeline_name": "mapped", "name": "m-ep"})
    assert r.status_code == 201, r.text
    r = api.request("PATCH", "/deployments/m-ep", json={
        "outputs_mapping": [{"pipeline_output_name": {"a": 1}, "endpoint_output_name": "o"}]})
    assert_error(r, 400, "BadRequest")


def test_limits_and_pages_beyond_64_bits_are_400s(api):
    create_step_http(api, "counted", {"main.py": OUT_CODE}, kind="pipelines", fields=OUT_FIELDS)
    execution_id, out = run_and_wait(api, "counted")
    assert out.status_code == 200, out.text
    for huge in (2 ** 64, 2 ** 63, -1, 10 ** 30):
        for path in (f"/executions/{execution_id}/logs", "/pipelines/counted/logs"):
            r = api.request("POST", path, json={"limit": huge})
            assert_error(r, 400)
        for query in (f"page={huge}", f"items_per_page={huge}"):
            for kind in ("single-value", "list-values"):
                assert_error(api.request("GET", f"/metrics/{kind}?{query}"), 400)
    for path in (f"/executions/{execution_id}/logs", "/pipelines/counted/logs"):
        assert api.request("POST", path, json={"limit": 2 ** 63 - 1}).status_code == 200


def test_deeply_nested_json_is_a_400_even_unauthenticated(server, api):
    deep = "[" * 100_000 + "]" * 100_000
    r = requests.post(server.url + "/api/v1/auth/refresh", data=deep,
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert_error(r, 400, "BadRequest")
    nested: object = "x"
    for _ in range(100):
        nested = {"k": nested}
    r = requests.post(server.url + "/api/v1/auth/refresh", json={"refresh_token": nested},
                      timeout=30)
    assert_error(r, 400, "BadRequest")
    r = api.request("PUT", "/environment-variables", data=deep,
                    headers={"Content-Type": "application/json"})
    assert_error(r, 400, "BadRequest")
    create_step_http(api, "nested", {"main.py": "def run(j):\n    return {}\n"},
                     kind="pipelines",
                     fields={"inputs[0][name]": "j", "inputs[0][data_type]": "json"})
    r = api.request("POST", "/pipelines/nested/run", data={"json_inputs": '{"j": ' + deep + "}"})
    assert_error(r, 400, "BadRequest")
    r = api.request("POST", "/pipelines/nested/run", json={"json_inputs": {"j": nested}})
    assert_error(r, 400, "BadRequest")
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200


# Request size ----------------------------------------------------------------------------------
class _Answer:
    """The part of a requests.Response that assert_error reads."""

    def __init__(self, status_code: int, text: str) -> None:
        self.status_code, self.text = status_code, text

    def json(self) -> dict:
        return json.loads(self.text)


def _headers_only(url: str, method: str, path: str, length: int | None, headers: dict,
                  raw_body: bytes = b"") -> _Answer:
    """Announce a body of `length` bytes and send none of it (or only `raw_body`, as is): the
    answer must come from the headers alone. Sending the whole body races the server's early
    answer: a server closing with unread bytes resets the connection, and the client may lose
    the 413 (seen once in a long run)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, parts.path + path)
        sized = {"Content-Length": str(length)} if length is not None else {}
        for name, value in {**headers, **sized}.items():
            conn.putheader(name, value)
        conn.endheaders(raw_body or None)
        answer = conn.getresponse()
        return _Answer(answer.status, answer.read().decode())
    finally:
        conn.close()


def test_request_bodies_are_bounded_except_streamed_uploads(server, api):
    big = b"x" * (16 * 1024 * 1024 + 1)
    r = _headers_only(server.url, "POST", "/api/v1/auth/refresh", len(big),
                      {"Content-Type": "application/json"})
    assert_error(r, 413)

    # No Content-Length: never read (gunicorn does not mark chunked input as terminated, so
    # Werkzeug reads none of it) and answered as an empty body.
    r = _headers_only(server.url, "POST", "/api/v1/auth/refresh", None,
                      {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                      raw_body=b"2\r\n{}\r\n0\r\n\r\n")
    assert r.status_code in (400, 413) and assert_error(r, r.status_code)
    r = _headers_only(api.env_url, "PUT", "/api/v1/environment-variables", len(big),
                      {"Content-Type": "application/json", "Authorization": f"Bearer {api.token()}"})
    assert_error(r, 413)
    # A file input of a run is a streamed upload: past the limit, it still goes through.
    create_step_http(api, "sized", {"main.py": "import os\ndef run(f):\n"
                                    "    return {'n': os.path.getsize(f['path'])}\n"},
                     kind="pipelines",
                     fields={"inputs[0][name]": "f", "inputs[0][data_type]": "file",
                             "outputs[0][name]": "n", "outputs[0][data_type]": "number"})
    _, out = run_and_wait(api, "sized", files={"f": ("big.bin", big)})
    assert out.status_code == 200, out.text
    assert [o["value"] for o in out.json()["outputs"]] == [len(big)]


@pytest.mark.skipif(
    os.environ.get("SHIPYARD_TEST_BACKEND") == "postgres-s3",
    reason="the local data store's signed routes; on S3 the URL is the S3 server's own "
           "(moto, which checks no signature)")
def test_signed_uploads_refuse_a_bad_token_before_reading_the_body(server, api):
    """A presigned upload's token is checked from the headers alone: 1 GB announced, nothing
    sent, and a bad or missing token is still answered 403 at once (the server used to read
    the whole form, or a JSON-typed part, before looking at the token)."""
    url = api.request("GET", "/data-store/upload",
                      params={"path_to_object": "early/403.bin"}).json()["signed_url"]
    path = urlsplit(url).path + "?" + urlsplit(url).query
    bad = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    multipart = {"Content-Type": "multipart/form-data; boundary=x"}
    big = 1024 ** 3
    for method, target, headers in [
        ("POST", bad, multipart),
        ("POST", "/signed/upload", multipart),  # no token at all
        ("PUT", bad.replace("/signed/upload", "/signed/part"), {}),
        # JSON-typed: not read as JSON before the view either (a length under the limit).
        ("PUT", bad.replace("/signed/upload", "/signed/part"),
         {"Content-Type": "application/json"}),
        ("POST", bad, {"Content-Type": "application/json"}),
    ]:
        length = 1_000_000 if "json" in headers.get("Content-Type", "") else big
        r = _headers_only(server.url, method, target, length, headers)
        assert r.status_code == 403, (method, target, r.status_code, r.text[:300])
        assert "<Code>AccessDenied</Code>" in r.text, r.text[:300]
    # The good token still uploads, and the object is there.
    assert requests.post(url, files={"file": ("f.bin", b"kept")}, timeout=30).status_code == 204
    back = api.request("POST", "/data-store/download", data={"path_to_object": "early/403.bin"})
    assert requests.get(back.json()["signed_url"], timeout=30).content == b"kept"


# Web UI ----------------------------------------------------------------------------------------
def _ui_login(url: str, email: str, password: str) -> requests.Response:
    """The login form, cookie sent back by hand (a Secure one would not go over http)."""
    page = requests.get(url + "/ui/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    cookie = _session_cookie(page).split(";")[0]
    return requests.post(url + "/ui/login", data={"csrf_token": token, "email": email,
                                                  "password": password, "next": ""},
                         headers={"Cookie": cookie}, allow_redirects=False, timeout=30)


def _session_cookie(response: requests.Response) -> str:
    [cookie] = [v for k, v in response.raw.headers.items()
                if k.lower() == "set-cookie" and v.startswith("session=")]
    return cookie


def test_ui_session_cookie_attributes(server):
    creds = server.credentials
    r = _ui_login(server.url, creds["admin_email"], creds["admin_password"])
    assert r.status_code == 302, r.text[:300]
    cookie = _session_cookie(r)
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert "httponly" in attributes and attributes["samesite"] == "SameSite=Lax"
    assert "secure" not in attributes  # plain http here
    expires = parsedate_to_datetime(attributes["expires"].split("=", 1)[1])
    lifetime = expires - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(hours=11, minutes=55) < lifetime <= dt.timedelta(hours=12, minutes=1)


def test_ui_session_cookie_is_secure_behind_https(tmp_path):
    server = ServerProcess(tmp_path / "data",
                           env={"SHIPYARD_PUBLIC_URL": "https://shipyard.example"}).start()
    try:
        creds = server.credentials
        r = _ui_login(server.url, creds["admin_email"], creds["admin_password"])
        assert r.status_code == 302, r.text[:300]
        assert "secure" in [p.strip().lower() for p in _session_cookie(r).split(";")]
    finally:
        server.stop()


def test_ui_pages_send_security_headers(server):
    creds = server.credentials
    session = requests.Session()
    pages = [session.get(server.url + "/ui/login", timeout=10)]
    token = re.search(r'name="csrf_token" value="([^"]+)"', pages[0].text).group(1)
    session.post(server.url + "/ui/login", data={"csrf_token": token, "next": "",
                                                 "email": creds["admin_email"],
                                                 "password": creds["admin_password"]},
                 timeout=30)
    pages += [session.get(server.url + "/ui/", timeout=10),
              session.get(server.url + "/ui/parameters", timeout=10)]
    for page in pages:
        assert page.status_code == 200, page.url
        csp = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
        # No inline handler the policy would block, on any template.
        assert not re.search(r"\son(change|click|submit)=", page.text)
    templates = ROOT / "service" / "shipyard_service" / "ui" / "templates"
    for template in templates.glob("*.html"):
        assert not re.search(r"\son[a-z]+=|<style|\sstyle=", template.read_text()), template


# Endpoint tokens -------------------------------------------------------------------------------
PEEK = '''
import os, requests

def run(name):
    token = requests.post(os.environ["SHIPYARD_CONTROL_URL"] + "/api/v1/auth/refresh",
                          json={"refresh_token": os.environ["SHIPYARD_SDK_TOKEN"]},
                          timeout=30).json()["access_token"]
    headers = {"Authorization": "Bearer " + token}
    base = os.environ["SHIPYARD_ENVIRONMENT_URL"] + "/api/v1"
    got = requests.get(base + "/deployments/" + name, headers=headers, timeout=30)
    regen = requests.post(base + "/endpoints/" + name + "/generate-new-token", headers=headers,
                          timeout=30)
    return {"seen": {"status": got.status_code, "keys": sorted(got.json())},
            "regenerate": regen.status_code}
'''


def test_execution_tokens_cannot_read_endpoint_tokens(api):
    create_step_http(api, "peek", {"main.py": PEEK}, kind="pipelines", fields={
        "inputs[0][name]": "name", "inputs[0][data_type]": "string",
        "outputs[0][name]": "seen", "outputs[0][data_type]": "json",
        "outputs[1][name]": "regenerate", "outputs[1][data_type]": "number"})
    token = "a-user-chosen-token-" + "x" * 280  # sealed: past 255 characters (TEXT column)
    r = api.request("POST", "/endpoints", json={"pipeline_name": "peek", "name": "peek-ep",
                                                "endpoint_token": token})
    assert r.status_code == 201 and r.json()["endpoint_token"] == token, r.text
    assert api.request("GET", "/deployments/peek-ep").json()["endpoint_token"] == token
    _, out = run_and_wait(api, "peek", {"name": "peek-ep"})
    assert out.status_code == 200, out.text
    values = {o["pipeline_output_name"]: o["value"] for o in out.json()["outputs"]}
    assert values["seen"]["status"] == 200
    assert "endpoint_token" not in values["seen"]["keys"] and "name" in values["seen"]["keys"]
    assert values["regenerate"] == 403
    assert api.request("GET", "/deployments/peek-ep").json()["endpoint_token"] == token


def test_database_and_key_files_are_owner_only(server, api):
    assert api.request("GET", "/steps").status_code == 200  # the database is in use
    data = server.data_dir
    files = ["shipyard.db", "shipyard.db-wal", "shipyard.db-shm", "secret.key",
             "encryption.key", "credentials.json"]
    present = [name for name in files if (data / name).exists()]
    assert {"shipyard.db", "secret.key", "encryption.key", "credentials.json"} <= set(present) \
        or os.environ.get("SHIPYARD_TEST_BACKEND") == "postgres-s3"
    for name in present:
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name


def test_logins_are_throttled_and_unknown_emails_take_as_long(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        creds = server.credentials
        admin, password = creds["admin_email"], creds["admin_password"]
        # Alternated, so that a busy machine slows both kinds alike.
        known, unknown = [], []
        for i in range(4):
            known.append(_ui_login(server.url, admin, f"wrong-password-{i}"))
            unknown.append(_ui_login(server.url, f"nobody{i}@example.com", "wrong-password"))
        assert {r.status_code for r in known + unknown} == {401}
        ratio = (statistics.median(r.elapsed.total_seconds() for r in unknown)
                 / statistics.median(r.elapsed.total_seconds() for r in known))
        assert 0.5 < ratio < 2, ratio  # was ~1/20: the hash was only checked for known emails
        # Per account: the 5th failure locks it, even for the right password.
        assert _ui_login(server.url, admin, "wrong-password-5").status_code == 401
        locked = _ui_login(server.url, admin, password)
        assert locked.status_code == 429 and "Too many failed logins" in locked.text
        # Per address: 20 failures from here (9 so far), then every login from it waits.
        for i in range(11):
            assert _ui_login(server.url, f"spray{i}@example.com", "x" * 8).status_code == 401
        assert _ui_login(server.url, "other@example.com", "x" * 8).status_code == 429
        # Counted in the store: a restart (or another API process) forgets nothing.
        server.stop()
        server.start()
        assert _ui_login(server.url, admin, password).status_code == 429
    finally:
        server.stop()
