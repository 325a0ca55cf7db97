"""Decoding the bodies of step and pipeline creation (form, multipart or JSON)."""

from __future__ import annotations

from flask import request

from ..errors import BadRequest
from .common import unflatten


def creation_body() -> tuple[dict, bytes | None, bool]:
    """(nested fields, archive bytes or None, whether the fields came from a form)."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object")
        return data, None, False
    fields = unflatten(request.form.to_dict())
    archive = request.files.get("step_file")
    return fields, archive.read() if archive is not None else None, True
