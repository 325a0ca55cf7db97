"""Data store (contract §5 #37–#44, §6.7). Encodings differ per route on purpose: they are
what craft-ai-sdk sends (JSON, query string or form-urlencoded)."""

from __future__ import annotations

from flask import g

from ..domain import datastore
from .common import env_blueprint, ok, services
from .schemas.datastore import (
    Deleted,
    EndBody,
    ListQuery,
    MultipartConfiguration,
    ObjectInfo,
    Page,
    PartBody,
    PathBody,
    PathQuery,
    PresignedPart,
    PresignedPost,
)
from .schemas.steps import SignedUrl

blp = env_blueprint("datastore", __name__, "/data-store", "Data store")

# Download and delete are form-encoded by craft-ai-sdk; a JSON body is accepted too.
_FORM_OR_JSON = {"requestBody": {"content": {"application/json": {"schema": PathBody}}}}


@blp.route("/information", methods=["POST"])
@blp.arguments(PathBody)
@blp.response(200, ObjectInfo)
@blp.doc(summary="Size and modification date of one object",
         description='JSON body `{"path_to_object": "a/b.csv"}`.')
def information(body: dict):
    return ok(datastore.information(services(), g.environment, body["path_to_object"]))


@blp.route("/list", methods=["GET"])
@blp.arguments(ListQuery, location="query")
@blp.response(200, Page)
@blp.doc(summary="One page of objects, sorted by path",
         description="Query `continuation_token` (from the previous page; null on the last "
                     "page), optional `folder_path`. `include_continuation_token` is accepted "
                     "and tokens are always given.")
def list_objects(args: dict):
    return ok(datastore.list_page(services(), g.environment,
                                  args.get("continuation_token") or None,
                                  args.get("folder_path") or None))


@blp.route("/upload", methods=["GET"])
@blp.arguments(PathQuery, location="query")
@blp.response(200, PresignedPost)
@blp.doc(summary="Presigned POST for a single-part upload",
         description="Query `path_to_object`. POST `fields` then the file part `file` to "
                     "`signed_url`.")
def upload(args: dict):
    return ok(datastore.upload_start(services(), g.environment, args["path_to_object"]))


@blp.route("/upload/multipart", methods=["POST"])
@blp.arguments(PathBody)
@blp.response(200, MultipartConfiguration)
@blp.doc(summary="Start a multipart upload",
         description="Returns the upload configuration to send back unchanged.")
def multipart_start(body: dict):
    return ok(datastore.multipart_start(services(), g.environment, body["path_to_object"]))


@blp.route("/upload/multipart/part", methods=["POST"])
@blp.arguments(PartBody)
@blp.response(200, PresignedPart)
@blp.doc(summary="Presigned PUT for one part",
         description="JSON `path_to_object`, `multipart_upload_configuration`, `chunk_size`, "
                     "`part_number` (from 1), and `size` (total bytes) on the last part.")
def multipart_part(body: dict):
    return ok(datastore.multipart_part(services(), g.environment, body))


@blp.route("/upload/multipart/end", methods=["POST"])
@blp.arguments(EndBody)
@blp.response(200, ObjectInfo)
@blp.doc(summary="Finish a multipart upload",
         description="Checks every part is present with the expected size, then assembles.")
def multipart_end(body: dict):
    return ok(datastore.multipart_end(services(), g.environment, body))


@blp.route("/download", methods=["POST"])
@blp.arguments(PathBody, location="json_or_form", content_type="application/x-www-form-urlencoded")
@blp.response(200, SignedUrl)
@blp.doc(**_FORM_OR_JSON)
@blp.doc(summary="Presigned GET for one object",
         description="Form-urlencoded `path_to_object`.")
def download(body: dict):
    return ok(datastore.download_url(services(), g.environment, body["path_to_object"]))


@blp.route("/delete", methods=["DELETE"])
@blp.arguments(PathBody, location="json_or_form", content_type="application/x-www-form-urlencoded")
@blp.response(200, Deleted)
@blp.doc(**_FORM_OR_JSON)
@blp.doc(summary="Delete one object", description="Form-urlencoded `path_to_object`.")
def delete(body: dict):
    return ok(datastore.delete(services(), g.environment, body["path_to_object"]))
