"""Calls from the runner to the Shipyard API (``/api/v1/runner/...``) and to signed URLs."""

from __future__ import annotations

import json
import os
import time

from . import httpclient

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# Bounded retries for calls that must get through (finish, job fetch, uploads):
# waits of 0.2 + 0.4 + 0.8 + 1.6 s between 5 tries, about 3 s in all.
RETRY_DELAYS = (0.2, 0.4, 0.8, 1.6)
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class ApiError(Exception):
    """The API answered with an error status, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def quote(segment: str) -> str:
    """Percent-encode one path segment (urllib.parse costs an import for this one use)."""
    if all(ch in _SAFE for ch in segment):
        return segment
    return "".join(chr(b) if chr(b) in _SAFE else "%%%02X" % b for b in segment.encode("utf-8"))


def _retryable(exc: ApiError) -> bool:
    return exc.status is None or exc.status >= 500 or exc.status in (408, 429)


def with_retries(call, delays=RETRY_DELAYS):
    """Run ``call()``; retry on transport errors, 5xx, 408 and 429 after each delay."""
    for delay in tuple(delays) + (None,):
        try:
            return call()
        except ApiError as exc:
            if delay is None or not _retryable(exc):
                raise
        time.sleep(delay)


def call_json(method: str, url: str, auth: str | None, payload=None, timeout: float = 30.0):
    """One JSON call; returns the decoded body (None when empty). Raises ApiError."""
    headers = dict(JSON_HEADERS)
    if auth:
        headers["Authorization"] = auth
    body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode("utf-8")
    try:
        resp = httpclient.request(method, url, headers=headers, body=body, timeout=timeout)
    except (httpclient.HttpError, ValueError) as exc:
        raise ApiError(str(exc)) from None
    if not resp.ok:
        raise ApiError("%s %s -> HTTP %d: %s" % (method, _short(url), resp.status, resp.text()),
                       resp.status)
    if not resp.body:
        return None
    try:
        return json.loads(resp.body)
    except ValueError:
        return None


def _short(url: str) -> str:
    return url.split("?", 1)[0]


def download(url: str, dest: str, timeout: float = 60.0) -> str | None:
    """GET a signed URL into ``dest`` (streamed). Returns the server-suggested file name.

    No Authorization header: the URL carries its own signature and may point at another
    host (object storage), which must not receive the execution token.
    """
    tmp = dest + ".part"
    try:
        with open(tmp, "wb") as out:
            resp = httpclient.request("GET", url, save_to=out, timeout=timeout, max_redirects=5)
    except (httpclient.HttpError, ValueError, OSError) as exc:
        _unlink(tmp)
        raise ApiError("download of %s failed: %s" % (_short(url), exc)) from None
    if not resp.ok:
        _unlink(tmp)
        raise ApiError("download of %s -> HTTP %d: %s" % (_short(url), resp.status, resp.text()),
                       resp.status)
    os.replace(tmp, dest)
    return _disposition_name(resp.headers.get("content-disposition", ""))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _disposition_name(value: str) -> str | None:
    for part in value.split(";"):
        key, _, val = part.strip().partition("=")
        if key.lower() == "filename" and val:
            return val.strip().strip('"') or None
    return None


class ApiReporter:
    """Everything one execution reports, with its ``ExecutionToken``."""

    def __init__(self, api_url: str | None, token: str | None, execution_id: str) -> None:
        self.api_url = (api_url or "").rstrip("/")
        self.execution_id = execution_id
        self.auth = "ExecutionToken %s" % token if token else None
        self.base = "%s/api/v1/runner/executions/%s" % (self.api_url, quote(execution_id))

    @property
    def enabled(self) -> bool:
        return bool(self.api_url)

    def send_logs(self, lines: list) -> None:
        call_json("POST", self.base + "/logs", self.auth, {"logs": lines}, timeout=10.0)

    def upload_output(self, name: str, path: str) -> None:
        """Streaming PUT of a file output's bytes."""
        url = "%s/outputs/%s" % (self.base, quote(name))
        headers = {"Content-Type": "application/octet-stream"}
        if self.auth:
            headers["Authorization"] = self.auth

        def put():
            try:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    resp = httpclient.request("PUT", url, headers=headers, file=f,
                                              file_size=size, timeout=120.0)
            except httpclient.HttpError as exc:
                raise ApiError(str(exc)) from None
            if not resp.ok:
                raise ApiError("PUT %s -> HTTP %d: %s" % (url, resp.status, resp.text()),
                               resp.status)

        with_retries(put, RETRY_DELAYS[:2])

    def finish(self, payload: dict) -> None:
        with_retries(lambda: call_json("POST", self.base + "/finish", self.auth, payload,
                                       timeout=15.0))

    def download(self, url: str, dest: str) -> str | None:
        return with_retries(lambda: download(url, dest), RETRY_DELAYS[:2])


class DeploymentLogSender:
    """Sends resident-runner lines that belong to no execution (``DeploymentToken``)."""

    def __init__(self, api_url: str, token: str, pod_id: str | None = None) -> None:
        self.url = api_url.rstrip("/") + "/api/v1/runner/deployments/logs"
        self.auth = "DeploymentToken %s" % token
        self.pod_id = pod_id  # which replica printed the lines (SHIPYARD_POD_ID)

    def __call__(self, lines: list) -> None:
        body = {"logs": lines}
        if self.pod_id:
            body["pod_id"] = self.pod_id
        call_json("POST", self.url, self.auth, body, timeout=10.0)


def fetch_job(api_url: str, token: str, execution_id: str) -> dict:
    url = "%s/api/v1/runner/executions/%s/job" % (api_url.rstrip("/"), quote(execution_id))
    return with_retries(lambda: call_json("GET", url, "ExecutionToken %s" % token))
