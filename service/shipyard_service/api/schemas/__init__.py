"""Request and response shapes of the HTTP API (marshmallow), one module per resource.

Request bodies keep unknown keys (INCLUDE): clients newer than 0.60.0 send keys we may not
know yet, and the domain decides what it uses. Response schemas describe what we return;
they never restrict extra keys (clients read pass-through objects)."""

from __future__ import annotations

import math
import re
import typing

import marshmallow as ma
from marshmallow import fields

from ...domain.names import RESOURCE_NAME

# MAX_INT: bigger integers are shape errors, not database errors.
from ...store.db import MAX_INT  # noqa: F401  (re-exported to the schema modules)


class Body(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class Query(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE


class Out(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE


class AnyJson(fields.Raw):
    """Any JSON value, null included."""

    def __init__(self, **kwargs: typing.Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)


class Scalar(fields.Field):
    """A string, or a finite number given as such (stored as its decimal text)."""

    default_error_messages = {"invalid": "Must be a string or a number."}

    def __init__(self, **kwargs: typing.Any) -> None:
        kwargs.setdefault("metadata", {"anyOf": [{"type": "string"}, {"type": "number"}]})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("invalid")
        return str(value)


class FormInteger(fields.Integer):
    """An integer: a JSON integer, or its decimal digits as form text (every leaf of a form
    is text). Floats and booleans are refused, not truncated."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


def epoch_ms(**kwargs: typing.Any) -> fields.Float:
    return fields.Float(allow_nan=False, allow_none=True,
                        metadata={"description": "Milliseconds since the epoch"}, **kwargs)


class LogsQuery(Body):
    """The body of every `…/logs` POST: a time window in ms since the epoch and a limit."""

    start = epoch_ms(data_key="from", load_default=None)
    end = epoch_ms(data_key="to", load_default=None)
    limit = fields.Integer(strict=True, validate=ma.validate.Range(min=0, max=MAX_INT),
                           allow_none=True, load_default=None)


class LogLine(Out):
    timestamp = fields.String(required=True)
    message = fields.String(required=True)
    stream = fields.String()


class Name(Out):
    name = fields.String(required=True)


def matching(regex: re.Pattern | str, rule: str, **kwargs: typing.Any) -> fields.String:
    """A string the domain holds to `regex`: the document shows the same pattern (so a
    generated request the document allows is one the API accepts), and a miss is a 400
    naming the rule."""
    return fields.String(validate=ma.validate.Regexp(regex, error=rule), **kwargs)


def whole(regex: re.Pattern) -> str:
    r"""A domain rule checked with `fullmatch`, as a document pattern: `(?![\s\S])` ends the
    text in Python and ECMA alike, where a final `$` would let a newline by in Python (so
    Python-based generators such as schemathesis would send "abc\n")."""
    return regex.pattern.removesuffix("$") + r"(?![\s\S])"


def resource_name(**kwargs: typing.Any) -> fields.String:
    """A project, environment, step, pipeline or deployment name: documented with the
    pattern domain/names.check_resource_name holds it to, and checked there (its 400 names
    the field as the UI and the SDKs show it)."""
    return fields.String(metadata={"pattern": whole(RESOURCE_NAME)}, **kwargs)


def non_blank(**kwargs: typing.Any) -> fields.String:
    """Text that must hold something besides whitespace (Python's, as the domain strips)."""
    return matching(r"\s*\S", "Must not be blank.", **kwargs)
