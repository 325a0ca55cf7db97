"""Presigned targets (contract §5 #53–#55, §6.7.6): URLs that authenticate themselves with a
signed token and answer errors in S3's XML shape, never JSON.

    GET  /signed/object?token=…     data-store object download
    POST /signed/upload?token=…     single-part upload: file part `file`
    PUT  /signed/part?token=…       one multipart part (raw body), answers an ETag

Upload tokens ride in the query, so a bad one is refused from the headers alone, before any
of the body is read.
    GET  /signed/artifact?token=…   files under the data dir (step archives)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree

from flask import Blueprint, Response, request, send_file
from werkzeug.datastructures import Range

from ..bodies import file_range, form_file_into, request_body
from ..datastore.local import LocalDataStore
from ..errors import NotFound, PayloadTooLarge, ShipyardError
from ..request_limits import raw_upload
from ..signing import ExpiredSignature, InvalidSignature, Signer
from .common import services

log = logging.getLogger("shipyard.signed")

blp = Blueprint("signed", __name__, url_prefix="/signed")

ARTIFACT_SALT = "shipyard.artifact"
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


class XmlError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def xml_error(status: int, code: str, message: str, **extra: str) -> Response:
    root = ElementTree.Element("Error")
    ElementTree.SubElement(root, "Code").text = code
    ElementTree.SubElement(root, "Message").text = message
    for tag, text in extra.items():
        ElementTree.SubElement(root, tag).text = str(text)
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root)
    return Response(body, status=status, mimetype="application/xml")


@blp.errorhandler(Exception)
def _any_error(exc: Exception) -> Response:
    """Blueprint handlers win over the app's JSON ones for errors raised in these views."""
    if isinstance(exc, XmlError):
        return xml_error(exc.status, exc.code, exc.message, **exc.extra)
    if isinstance(exc, ExpiredSignature):
        return xml_error(403, "ExpiredToken", exc.message)
    if isinstance(exc, InvalidSignature):
        return xml_error(403, "AccessDenied", exc.message)
    if isinstance(exc, NotFound):
        return xml_error(404, "NoSuchKey", exc.message)
    if isinstance(exc, PayloadTooLarge):
        return xml_error(413, "EntityTooLarge", exc.message)
    if isinstance(exc, ShipyardError) and 400 <= exc.status_code < 500:
        return xml_error(exc.status_code, "InvalidRequest", exc.message)
    code = getattr(exc, "code", None)
    if isinstance(code, int) and 400 <= code < 500:  # werkzeug HTTPException (bad form…)
        return xml_error(code, "InvalidRequest", getattr(exc, "description", None) or str(exc))
    log.exception("unexpected error on %s %s", request.method, request.path)
    return xml_error(500, "InternalError", "Internal error while serving the signed URL")


def _local_store() -> LocalDataStore:
    store = services().datastore
    if not isinstance(store, LocalDataStore):
        raise XmlError(400, "InvalidRequest", "This server does not serve data-store objects")
    return store


def _method(*allowed: str) -> None:
    # Routes accept every method so a wrong one still gets an XML error, not the app's JSON.
    if request.method not in allowed:
        raise XmlError(405, "MethodNotAllowed",
                       f"{request.method} is not allowed on this URL")


def _query_token() -> str:
    token = request.args.get("token")
    if not token:
        raise XmlError(403, "AccessDenied", "The URL carries no signature token")
    return token


# Data store ---------------------------------------------------------------------------------
@blp.route("/object", methods=_ALL_METHODS)
def get_object():
    _method("GET", "HEAD")
    store = _local_store()
    claims = store.check_token(_query_token(), "get")
    path = store.path_of(claims["key"])
    if not path.is_file():
        raise XmlError(404, "NoSuchKey", "Object not found", Key=_visible(claims["key"]))
    return _send(path)


@blp.route("/upload", methods=_ALL_METHODS)
@raw_upload
def post_object():
    _method("POST")
    store = _local_store()
    # Only the query's token: one in the form would mean reading the body to find it.
    claims = store.check_token(_query_token(), "post")
    boundary = request.mimetype_params.get("boundary")
    if request.mimetype != "multipart/form-data" or not boundary:
        raise XmlError(400, "InvalidRequest", "The body is not a multipart/form-data form")
    body = request_body(request.environ, request.stream)

    def fill(out) -> int:
        size = form_file_into(body, boundary.encode("latin-1"), out)
        if size is None:  # raised before the object is replaced
            raise XmlError(400, "InvalidRequest", "The form has no file part named 'file'")
        return size

    store.write_with(claims["key"], fill)
    return Response(status=204)


@blp.route("/part", methods=_ALL_METHODS)
@raw_upload
def put_part():
    _method("PUT")
    store = _local_store()
    claims = store.check_token(_query_token(), "put")
    etag = store.write_part(claims, request_body(request.environ, request.stream))
    response = Response(status=200)
    response.headers["ETag"] = etag
    return response


def _send(path: Path) -> Response:
    """A file: whole (send_file), or the one byte range a GET asks for (the SDK's parallel
    downloads), sent from its offset. werkzeug's own range handling reads and drops every
    byte before the range, 8 KiB at a time, and sends the rest from Python."""
    byte_range = request.range if request.method == "GET" else None
    if byte_range is None or len(byte_range.ranges) != 1 or "If-Range" in request.headers:
        return send_file(path, mimetype="application/octet-stream", as_attachment=True,
                         download_name=path.name, conditional=True, etag=False)
    try:
        file = open(path, "rb")  # noqa: SIM115 (closed by the WSGI server with the body)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise XmlError(404, "NoSuchKey", "The file no longer exists") from None
    try:
        response = _range_response(path, file, byte_range)
    except BaseException:
        file.close()
        raise
    return response


def _range_response(path: Path, file: BinaryIO, byte_range: Range) -> Response:
    stat = os.fstat(file.fileno())
    size = stat.st_size
    # Names this version of the file (a new object is a new file, renamed over the old):
    # the ranges of one download carry it in If-Match, so none comes from a newer object.
    etag = f'"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{size:x}"'
    span = byte_range.range_for_length(size)
    if span is None:
        raise XmlError(416, "InvalidRange", "The requested range is not satisfiable",
                       ActualObjectSize=str(size))
    if request.headers.get("If-Match", etag) not in (etag, "*"):
        raise XmlError(412, "PreconditionFailed", "The object changed since the download "
                       "began (If-Match)", Condition="If-Match")
    start, stop = span
    file.seek(start)
    response = Response(file_range(request.environ, file, stop - start), status=206,
                        mimetype="application/octet-stream", direct_passthrough=True)
    response.headers["Content-Length"] = str(stop - start)
    response.headers["Content-Range"] = byte_range.to_content_range_header(size)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = etag
    response.headers.set("Content-Disposition", "attachment", filename=path.name)
    return response


def _visible(key: str) -> str:
    # Hide the `{project}/{environment}/` namespace, as the API does.
    parts = key.split("/", 2)
    return parts[2] if len(parts) == 3 else key


# Artifacts ----------------------------------------------------------------------------------
def _artifact_signer() -> Signer:
    return Signer(services().settings.load_or_create_secret(), ARTIFACT_SALT)


def artifact_url(relative_path: str) -> str:
    """An absolute presigned GET URL for a file under settings.data_dir (e.g.
    `steps/<id>/code.tgz`), valid for settings.signed_url_lifetime_s."""
    settings = services().settings
    token = _artifact_signer().sign({"path": str(relative_path)})
    return f"{settings.public_url}/signed/artifact?token={token}"


@blp.route("/artifact", methods=_ALL_METHODS)
def get_artifact():
    _method("GET", "HEAD")
    settings = services().settings
    claims = _artifact_signer().verify(_query_token(), settings.signed_url_lifetime_s)
    relative = claims.get("path")
    if not isinstance(relative, str) or not relative or os.path.isabs(relative):
        raise XmlError(403, "AccessDenied", "The signature is not valid for this request")
    root = Path(settings.data_dir).resolve()
    path = (root / relative).resolve()
    # The path is signed by us, but resolving guards against symlinks leading elsewhere.
    if not path.is_relative_to(root) or path == root:
        raise XmlError(403, "AccessDenied", "The signed path is outside the data folder")
    if not path.is_file():
        raise XmlError(404, "NoSuchKey", "The file no longer exists")
    return _send(path)


@blp.route("/", defaults={"rest": ""}, methods=_ALL_METHODS)
@blp.route("/<path:rest>", methods=_ALL_METHODS)
def unknown(rest: str):
    raise XmlError(404, "InvalidRequest", "No such signed URL")
