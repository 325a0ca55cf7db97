"""The OpenAPI document's shared parts: the error body every route answers, the auth
schemes, and Swagger UI served from the npm package installed by the UI's lock file."""

from __future__ import annotations

from pathlib import Path

import marshmallow as ma
from flask import Blueprint, abort, send_from_directory
from flask_smorest import Api

from ..ui.blueprint import vendor_dir


class ErrorSchema(ma.Schema):
    """The body of every 4xx/5xx (contract §1.3)."""

    message = ma.fields.String(required=True)
    name = ma.fields.String(required=True, metadata={"description": "Error class, e.g. NotFound"})
    request_id = ma.fields.String(required=True)
    additional_data = ma.fields.Raw(required=True, allow_none=True,
                                    metadata={"description": "Details (any JSON), or null"})


SECURITY_SCHEMES = {
    "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "Access token from POST /api/v1/auth/refresh."},
    "EndpointToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                      "description": "`EndpointToken <endpoint token>` of the deployment."},
    "EndpointQueryToken": {"type": "apiKey", "in": "query", "name": "token",
                           "description": "The endpoint token, on result URLs."},
    "ExecutionToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                       "description": "`ExecutionToken <token>`: runner callbacks of one "
                                      "execution."},
    "DeploymentToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                        "description": "`DeploymentToken <token>`: a deployment's runners."},
}


class ShipyardApi(Api):
    ERROR_SCHEMA = ErrorSchema


def register_security_schemes(api: Api) -> None:
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
    api.ma_plugin.converter.add_attribute_function(_dict_rules)


def _dict_rules(converter, field: ma.fields.Field, ret: dict, **kwargs) -> dict:
    """What a `fields.Dict` checks, which apispec leaves out: its `Length` counts keys
    (apispec writes minLength, a string's), and its key field's pattern holds for every key
    (`propertyNames`: a JSON Schema keyword OpenAPI 3.0 lacks, so 3.0 tools, schemathesis
    4.32's generator included, ignore it; it is there for readers)."""
    if not isinstance(field, ma.fields.Dict):
        return {}
    extra = {}
    for length, count in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
        if length in ret:
            extra[count] = ret.pop(length)
    if field.key_field is not None:
        pattern = converter.field2pattern(field.key_field).get("pattern")
        if pattern:
            extra["propertyNames"] = {"pattern": pattern}
    return extra


# Swagger UI ---------------------------------------------------------------------------------
SWAGGER_UI_URL = "/api/docs/assets/"
_SWAGGER_FILES = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                  "favicon-32x32.png", "favicon-16x16.png"}

assets = Blueprint("swagger_assets", __name__, url_prefix=SWAGGER_UI_URL.rstrip("/"))


@assets.route("/<name>")
def swagger_asset(name: str):
    if name not in _SWAGGER_FILES:
        abort(404)
    folder = Path(vendor_dir()) / "swagger-ui-dist"
    if not (folder / name).is_file():
        abort(404, description="Swagger UI assets missing: run `make install` (npm ci)")
    return send_from_directory(folder, name, max_age=3600)
