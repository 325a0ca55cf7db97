"""URL converters of the API's routes."""

from __future__ import annotations

from werkzeug.routing import BaseConverter


class UserIdConverter(BaseConverter):
    """A user id: any one path segment except `me`, which names `/users/me`. Without it
    `/users/me` also matched `/users/<user_id>`, so OPTIONS and 405s listed that rule's
    methods too (PATCH)."""

    regex = r"(?!me$)[^/]+"


def register_converters(app, api) -> None:
    """On the app (routing) and on the OpenAPI document (a plain string parameter)."""
    app.url_map.converters["user_id"] = UserIdConverter
    api.register_converter(UserIdConverter, _string_parameter)


def _string_parameter(converter: BaseConverter) -> dict:
    return {"type": "string", "minLength": 1, "pattern": f"^{UserIdConverter.regex}$"}
