"""flask-smorest wiring shared by every API blueprint: request parsing that fails with our
400 error shape (webargs' default is a 422 in flask-smorest's own shape), and the parts of
each operation's document every route has (auth scheme, error responses)."""

from __future__ import annotations

import typing

import marshmallow as ma
from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from .. import jsontext
from ..errors import BadRequest

# Security requirement objects (docs/openapi.json components.securitySchemes, openapi.py).
BEARER = [{"Bearer": []}]
ENDPOINT_TOKEN = [{"EndpointToken": []}, {"EndpointQueryToken": []}]
EXECUTION_TOKEN = [{"ExecutionToken": []}]
DEPLOYMENT_TOKEN = [{"DeploymentToken": []}]
PUBLIC: list = []


def _first_messages(messages: typing.Any, prefix: str = "") -> list[str]:
    """`{"json": {"a": ["Not a valid integer."]}}` -> ["a: Not a valid integer."]."""
    if isinstance(messages, dict):
        found: list[str] = []
        for key, value in messages.items():
            # The location key (json, form, query) is noise in a message meant for people.
            label = prefix if key in ("json", "form", "querystring", "query", "files",
                                      "json_or_form", "creation", "run", "_schema") else (
                f"{prefix}.{key}" if prefix else str(key))
            found.extend(_first_messages(value, label))
        return found
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix}: {' '.join(messages)}" if prefix else " ".join(messages)]
    if isinstance(messages, list):
        return [m for item in messages for m in _first_messages(item, prefix)]
    return [f"{prefix}: {messages}" if prefix else str(messages)]


class Parser(FlaskParser):
    """Shape errors become BadRequest (400) in the documented error body; the field errors
    ride in additional_data.fields."""

    DEFAULT_VALIDATION_STATUS = 400
    __location_map__ = dict(creation="load_creation", run="load_run",
                            **FlaskParser.__location_map__)

    def handle_error(self, error: ma.ValidationError, req, schema, *, error_status_code,
                     error_headers) -> typing.NoReturn:
        details = _first_messages(error.messages)
        message = "Invalid request: " + "; ".join(details[:5]) if details else "Invalid request"
        raise BadRequest(message, {"fields": error.messages})

    def _handle_invalid_json_error(self, error, req, *args, **kwargs) -> typing.NoReturn:
        raise BadRequest("The request body is not valid JSON")

    def load_creation(self, req, schema: ma.Schema) -> typing.Any:
        """Step and pipeline creation: a JSON object, or bracketed form fields (contract
        §3.2, urlencoded or multipart) decoded into the same nested object."""
        from .common import unflatten

        if is_json_request(req):
            return self.load_json(req, schema)
        return unflatten(req.form.to_dict()) if req.form else core.missing

    def load_run(self, req, schema: ma.Schema) -> typing.Any:
        """A pipeline run: a JSON object, or form fields each holding JSON text (file inputs
        ride beside them as file parts)."""
        if is_json_request(req):
            return self.load_json(req, schema)
        decoded = {}
        for name, raw in req.form.items():
            if name not in schema.fields:
                continue
            try:
                decoded[name] = jsontext.loads(raw)
            except jsontext.NonFiniteNumber as error:
                raise jsontext.refusal(error, name) from None
            except ValueError:
                raise BadRequest(f"'{name}' must be JSON text", {"field": name}) from None
        return decoded


class ApiBlueprint(Blueprint):
    """A flask-smorest blueprint whose operations all document their auth scheme and the
    error statuses every route of the blueprint can answer (beside their own)."""

    ARGUMENTS_PARSER = Parser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "json_or_form": "application/json",
        "creation": "application/json",
        "run": "application/json",
    }

    def __init__(self, *args: typing.Any, security: list | None = None,
                 errors: tuple[int, ...] = (), **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        self.security = security
        self.common_errors = errors
        self._prepare_doc_cbks.append(self._prepare_common_doc)

    def _prepare_common_doc(self, doc: dict, doc_info: dict, **kwargs: typing.Any) -> dict:
        if self.security is not None:
            doc.setdefault("security", self.security)
        responses = doc.setdefault("responses", {})
        present = {str(k) for k in responses}
        for status in self.common_errors:
            if str(status) not in present:
                responses[status] = _STATUS_REFS[status]
        if "default" not in present:
            responses["default"] = "DEFAULT_ERROR"
        return doc


_STATUS_REFS = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "REQUEST_ENTITY_TOO_LARGE",
                500: "INTERNAL_SERVER_ERROR"}


def form_alternatives(description: str, files: dict[str, str] | None = None,
                      any_file: bool = False, urlencoded: bool = True) -> dict:
    """`@blp.doc(**form_alternatives(...))`: the form encodings a route accepts beside the
    JSON body its schema documents."""
    properties = {name: {"type": "string", "format": "binary", "description": text}
                  for name, text in (files or {}).items()}
    multipart = {"type": "object", "description": description, "properties": properties,
                 "additionalProperties": {"type": "string", "format": "binary"} if any_file
                 else {"type": "string"}}
    content = {"multipart/form-data": {"schema": multipart}}
    if urlencoded:
        content["application/x-www-form-urlencoded"] = {"schema": {
            "type": "object", "description": description,
            "additionalProperties": {"type": "string"}}}
    return {"requestBody": {"content": content}}
