"""Data store (contract §5 #37–#44, §6.7). Encodings differ per route on purpose: they are
what craft-ai-sdk sends (JSON, query string or form-urlencoded)."""

from __future__ import annotations

from flask import g, request

from ..domain import datastore
from .common import env_blueprint, json_body, ok, services

blp = env_blueprint("datastore", __name__, "/data-store", "Data store")


def _form_field(name: str) -> object:
    """A form-urlencoded field (download, delete); JSON or query string are accepted too."""
    if name in request.form:
        return request.form[name]
    data = request.get_json(silent=True)
    if isinstance(data, dict) and name in data:
        return data[name]
    return request.args.get(name)


@blp.route("/information", methods=["POST"])
@blp.doc(summary="Size and modification date of one object",
         description='JSON body `{"path_to_object": "a/b.csv"}`.')
def information():
    body = json_body()
    return ok(datastore.information(services(), g.environment, body.get("path_to_object")))


@blp.route("/list", methods=["GET"])
@blp.doc(summary="One page of objects, sorted by path",
         description="Query `continuation_token` (from the previous page; null on the last "
                     "page), optional `folder_path`. `include_continuation_token` is accepted "
                     "and tokens are always given.")
def list_objects():
    return ok(datastore.list_page(services(), g.environment,
                                  request.args.get("continuation_token") or None,
                                  request.args.get("folder_path") or None))


@blp.route("/upload", methods=["GET"])
@blp.doc(summary="Presigned POST for a single-part upload",
         description="Query `path_to_object`. POST `fields` then the file part `file` to "
                     "`signed_url`.")
def upload():
    return ok(datastore.upload_start(services(), g.environment,
                                     request.args.get("path_to_object")))


@blp.route("/upload/multipart", methods=["POST"])
@blp.doc(summary="Start a multipart upload",
         description="Returns the upload configuration to send back unchanged.")
def multipart_start():
    body = json_body()
    return ok(datastore.multipart_start(services(), g.environment, body.get("path_to_object")))


@blp.route("/upload/multipart/part", methods=["POST"])
@blp.doc(summary="Presigned PUT for one part",
         description="JSON `path_to_object`, `multipart_upload_configuration`, `chunk_size`, "
                     "`part_number` (from 1), and `size` (total bytes) on the last part.")
def multipart_part():
    return ok(datastore.multipart_part(services(), g.environment, json_body()))


@blp.route("/upload/multipart/end", methods=["POST"])
@blp.doc(summary="Finish a multipart upload",
         description="Checks every part is present with the expected size, then assembles.")
def multipart_end():
    return ok(datastore.multipart_end(services(), g.environment, json_body()))


@blp.route("/download", methods=["POST"])
@blp.doc(summary="Presigned GET for one object",
         description="Form-urlencoded `path_to_object`.")
def download():
    return ok(datastore.download_url(services(), g.environment, _form_field("path_to_object")))


@blp.route("/delete", methods=["DELETE"])
@blp.doc(summary="Delete one object", description="Form-urlencoded `path_to_object`.")
def delete():
    return ok(datastore.delete(services(), g.environment, _form_field("path_to_object")))
