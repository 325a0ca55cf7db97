"""Data store (contract §6.7)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from ...domain.datastore import MAX_PATH_BYTES
from . import MAX_INT, Body, Out, Query

_COUNT = ma.validate.Range(min=0, max=MAX_INT)


# domain/datastore.normalize_path as a pattern: not blank, no control character, backslash
# or drive letter, and '/'-separated segments none empty, '.' or '..' (its byte limits, of
# the path and of each segment, are not stated). Documented only: normalize_path checks, and
# its 400 names the path (additional_data.path_to_object); tests/unit/test_object_path_pattern
# holds the two equal. `(?![\s\S])` ends the text in Python and ECMA alike ('$' would let a
# final newline by in Python).
_CHAR = r"[^\x00-\x1f\x7f\\/]"
_SEGMENT = rf"(?:\.{{0,2}}[^\x00-\x1f\x7f\\/.]{_CHAR}*|\.{{3}}{_CHAR}*)"
OBJECT_PATH = rf"^(?![A-Za-z]:)(?=[\s\S]*\S)/*{_SEGMENT}(?:/{_SEGMENT})*(?![\s\S])"


def _object_path(**kwargs) -> fields.String:
    # Bytes, not characters: no maxLength (which counts characters).
    return fields.String(metadata={"example": "data/train.csv", "pattern": OBJECT_PATH,
                                   "description": f"At most {MAX_PATH_BYTES} bytes (UTF-8)"},
                         **kwargs)


class PathBody(Body):
    path_to_object = _object_path(required=True)


class PathQuery(Query):
    path_to_object = _object_path(required=True)


class ListQuery(Query):
    continuation_token = fields.String(allow_none=True,
                                       metadata={"description": "From the previous page"})
    folder_path = fields.String(allow_none=True)
    include_continuation_token = fields.Boolean(
        metadata={"description": "Accepted (0.60.0 sends it); tokens are always given"})


class PartBody(PathBody):
    multipart_upload_configuration = fields.Dict(required=True, metadata={
        "description": "As answered by the start call, sent back unchanged"})
    part_number = fields.Integer(strict=True, required=True,
                                 validate=ma.validate.Range(min=1, max=10_000))
    chunk_size = fields.Integer(strict=True, required=True,
                                validate=ma.validate.Range(min=1, max=MAX_INT))
    size = fields.Integer(strict=True, allow_none=True, validate=_COUNT,
                          metadata={"description": "Total bytes, on the last part"})


class EndBody(PathBody):
    multipart_upload_configuration = fields.Dict(required=True)
    parts = fields.List(fields.Raw(allow_none=False), allow_none=True)


class ObjectInfo(Out):
    path = fields.String(required=True)
    last_modified = fields.String(required=True)
    size = fields.Integer(required=True)


class Page(Out):
    items = fields.List(fields.Nested(ObjectInfo), required=True)
    continuation_token = fields.String(required=True, allow_none=True,
                                       metadata={"description": "null on the last page"})


class PresignedPost(Out):
    signed_url = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields", required=True,
                          metadata={"description": "Form fields to POST with the file part"})


class MultipartConfiguration(Out):
    """Opaque: sent back unchanged with each part and at the end."""


class PresignedPart(Out):
    signed_url = fields.String(required=True)
    headers = fields.Dict(required=True)


class Deleted(Out):
    path = fields.String(required=True)
