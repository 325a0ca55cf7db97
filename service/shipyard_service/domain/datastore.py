"""Data-store rules: object paths, per-environment namespaces, and the operations of
contract §6.7 on top of the DataStore interface (`svc.datastore`).

Every environment owns the key prefix `{project}/{environment}/`; callers and API responses
only ever see paths without it.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import BinaryIO

from ..errors import BadRequest, NotFound
from ..store.models import Environment
from .times import iso

PAGE_SIZE = 1000
MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255  # a file name on common file systems
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize_path(path: object, field: str = "path_to_object") -> str:
    """The canonical object path: no leading '/', no '.', '..' or empty segments."""
    if not isinstance(path, str) or not path.strip():
        raise BadRequest(f"'{field}' is required", {field: path})

    def bad(reason: str) -> BadRequest:
        return BadRequest(f"Invalid object path {path!r}: {reason}", {field: path})

    if _CONTROL.search(path):
        raise bad("control characters are not allowed")
    if "\\" in path:
        raise bad("backslashes are not allowed, use '/'")
    if _DRIVE.match(path):
        raise bad("Windows drive letters are not allowed")
    normalized = path.lstrip("/")
    if not normalized:
        raise bad("the path is empty")
    if len(normalized.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise bad(f"longer than {MAX_PATH_BYTES} bytes")
    for segment in normalized.split("/"):
        if segment == "":
            raise bad("empty path segments ('//' or a trailing '/') are not allowed")
        if segment in (".", ".."):
            raise bad(f"'{segment}' segments are not allowed")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise bad(f"a path segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return normalized


def namespace(environment: Environment) -> str:
    return f"{environment.project.name}/{environment.name}/"


def _key(environment: Environment, path: object, field: str = "path_to_object") -> tuple[str, str]:
    """(normalised path, store key)."""
    normalized = normalize_path(path, field)
    return normalized, namespace(environment) + normalized


def _item(prefix: str, info) -> dict:
    return {"path": info.key[len(prefix):], "last_modified": iso(info.last_modified),
            "size": int(info.size)}


# Contract §6.7 operations ------------------------------------------------------------------
def information(svc, environment: Environment, path: object) -> dict:
    _, key = _key(environment, path)
    return _item(namespace(environment), svc.datastore.info(key))


def encode_token(last_path: str) -> str:
    return base64.urlsafe_b64encode(last_path.encode("utf-8", "surrogatepass")).decode("ascii")


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise BadRequest("Invalid 'continuation_token'", {"continuation_token": token}) from None


def list_page(svc, environment: Environment, continuation_token: str | None = None,
              folder_path: str | None = None, limit: int = PAGE_SIZE) -> dict:
    """One page of objects sorted by path. The token is the last path of the page (opaque
    to clients) and null on the last page: 0.74.7 loops forever on ""."""
    prefix = namespace(environment)
    search = prefix
    if folder_path and folder_path.strip("/"):
        search = prefix + normalize_path(folder_path.rstrip("/"), "folder_path") + "/"
    start_after = None
    if continuation_token:
        start_after = prefix + decode_token(continuation_token)
    found = svc.datastore.list(search, start_after, limit + 1)
    page = found[:limit]
    items = [_item(prefix, info) for info in page]
    more = len(found) > limit
    return {"items": items, "continuation_token": encode_token(items[-1]["path"]) if more
            else None}


def upload_start(svc, environment: Environment, path: object) -> dict:
    _, key = _key(environment, path)
    url, fields = svc.datastore.presigned_post(key)
    return {"signed_url": url, "fields": dict(fields)}


def multipart_start(svc, environment: Environment, path: object) -> dict:
    _, key = _key(environment, path)
    return svc.datastore.multipart_start(key)


def _int_field(body: dict, name: str, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{name}' must be an integer", {name: value})
    return value


def multipart_part(svc, environment: Environment, body: dict) -> dict:
    """`body` is the JSON of contract §6.7.4 (`size` only on the last part)."""
    _, key = _key(environment, body.get("path_to_object"))
    url, headers = svc.datastore.multipart_part(
        key, body.get("multipart_upload_configuration"), _int_field(body, "part_number"),
        _int_field(body, "chunk_size"), _int_field(body, "size", required=False))
    return {"signed_url": url, "headers": dict(headers)}


def multipart_end(svc, environment: Environment, body: dict) -> dict:
    path, key = _key(environment, body.get("path_to_object"))
    parts = body.get("parts")
    if parts is not None and not isinstance(parts, list):
        raise BadRequest("'parts' must be a list", {"parts": parts})
    svc.datastore.multipart_end(key, body.get("multipart_upload_configuration"), parts or [])
    return information(svc, environment, path)


def download_url(svc, environment: Environment, path: object) -> dict:
    # Checked here so a missing object is a JSON 404 rather than an XML error later.
    _, key = _key(environment, path)
    svc.datastore.info(key)
    return {"signed_url": svc.datastore.presigned_get(key)}


def delete(svc, environment: Environment, path: object) -> dict:
    normalized, key = _key(environment, path)
    svc.datastore.delete(key)
    return {"path": normalized}


# Helpers for other domain code (executions' datastore mappings) -----------------------------
def read_stream(svc, environment: Environment, path: object) -> BinaryIO:
    """An open binary stream of the object; the caller closes it. NotFound when missing."""
    _, key = _key(environment, path)
    return svc.datastore.open_read(key)


def write_stream(svc, environment: Environment, path: object, stream: BinaryIO) -> int:
    _, key = _key(environment, path)
    return svc.datastore.write(key, stream)


def exists(svc, environment: Environment, path: object) -> bool:
    _, key = _key(environment, path)
    try:
        svc.datastore.info(key)
    except NotFound:
        return False
    return True
