"""JSON as the service reads it from requests: only numbers JSON can carry.

Python's json module also reads `NaN`, `Infinity` and `-Infinity` (not JSON) and turns a
number past the double range (`1e309`) into infinity. Stored, such a value was answered back
as a bare `NaN`/`Infinity`, which strict parsers (JavaScript's JSON.parse in the web UI,
PostgreSQL's jsonb in the sort index) refuse; so they are refused where requests are read."""

from __future__ import annotations

import json
import math
from typing import Any

from flask.json.provider import DefaultJSONProvider

from .errors import BadRequest
from .jsonwalk import map_leaves


class NonFiniteNumber(ValueError):
    """A request's JSON holds a number JSON cannot carry."""

    def __init__(self, token: str) -> None:
        super().__init__(f"{token} is not a JSON number: use a finite number (at most about "
                         "1.8e308 in magnitude) or null")
        self.token = token


def _constant(token: str) -> float:
    raise NonFiniteNumber(token)


def _float(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise NonFiniteNumber(token if len(token) <= 40 else token[:37] + "...")
    return value


# Built once: json.loads given any option builds a decoder per call (most of a small body's
# parse, on every request read as JSON).
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float)


def loads(text: str | bytes) -> Any:
    """`json.loads`, raising NonFiniteNumber (a ValueError) for NaN, ±Infinity and numbers
    past the double range."""
    if isinstance(text, (bytes, bytearray)):
        # As json.loads reads bytes: UTF-8, -16 or -32, told apart by their first bytes.
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    elif not isinstance(text, str):
        raise TypeError(f"the JSON object must be str, bytes or bytearray, "
                        f"not {type(text).__name__}")
    elif text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


def refusal(error: NonFiniteNumber, field: str | None = None) -> BadRequest:
    where = f"'{field}' holds" if field else "The request's JSON holds"
    return BadRequest(f"{where} {error}", {"field": field, "value": error.token})


def refuse_non_finite(body: bytes) -> None:
    """Raise the documented 400 if the body does not parse only because of a number JSON
    cannot carry (other malformed bodies are left to the route's own words)."""
    try:
        loads(body)
    except NonFiniteNumber as error:
        raise refusal(error) from None
    except ValueError:
        return


def holds_nul(value: Any) -> bool:
    """Whether a string of the JSON value (a key or a value) holds a NUL character, which
    PostgreSQL refuses in text and in jsonb."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def without_nul(value: Any) -> Any:
    """The JSON value with every NUL character replaced by U+FFFD: for text a step produced
    (outputs, log lines, errors), which cannot be refused the way a request is."""
    return map_leaves(value, _nul_replaced)


def _nul_replaced(leaf: Any) -> Any:
    return leaf.replace("\x00", "\ufffd") if isinstance(leaf, str) else leaf


class StrictJSONProvider(DefaultJSONProvider):
    """The app's JSON: `request.get_json` refuses non-finite numbers (answers are unchanged)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)
