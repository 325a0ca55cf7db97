"""Input/output declarations and the checks their values must pass."""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import BadRequest, PayloadTooLarge
from .names import check_io_name

DATA_TYPES = ("string", "number", "boolean", "json", "array", "file")
MAX_IO_BYTES = 60_000  # the documented 0.06 MB for non-file inputs/outputs together

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise BadRequest(f"'{field}' must be a boolean", {"field": field, "value": value})


def _from_form_text(value: Any) -> Any:
    """Best-effort typing of form-sent nested defaults (they arrive as strings)."""
    if isinstance(value, dict):
        return {k: _from_form_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_form_text(v) for v in value]
    if not isinstance(value, str):
        return value
    if value in ("True", "False"):
        return value == "True"
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):  # "nan", "inf": text, not a number JSON cannot carry
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def _coerce_default(data_type: str, value: Any, from_form: bool, field: str) -> Any:
    if value is None or not from_form:
        return value
    if data_type == "string":
        return value
    if data_type == "number":
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError as exc:
                raise BadRequest(f"'{field}' must be a number", {"field": field}) from exc
            if not math.isfinite(number):
                raise BadRequest(f"'{field}' must be a finite number", {"field": field})
            return int(number) if number.is_integer() else number
        return value
    if data_type == "boolean":
        return _bool(value, field)
    return _from_form_text(value)


def parse_declarations(items: Any, kind: str, from_form: bool) -> list[dict]:
    """Validate a list of Input (kind='inputs') or Output (kind='outputs') declarations."""
    if items is None or items == "":
        return []
    if isinstance(items, dict):
        items = list(items.values())
    if not isinstance(items, list):
        raise BadRequest(f"'{kind}' must be a list", {"field": kind})
    result: list[dict] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"{kind}[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"'{where}' must be an object", {"field": where})
        name = check_io_name(item.get("name"), f"{where}.name")
        if name in seen:
            raise BadRequest(f"Duplicate {kind[:-1]} name '{name}'", {"field": where})
        seen.add(name)
        data_type = item.get("data_type")
        if data_type not in DATA_TYPES:
            raise BadRequest(
                f"'{where}.data_type' must be one of {', '.join(DATA_TYPES)}",
                {"field": f"{where}.data_type", "value": data_type},
            )
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            raise BadRequest(f"'{where}.description' must be a string", {"field": where})
        decl = {"name": name, "data_type": data_type, "description": description or None}
        if kind == "inputs":
            decl["is_required"] = (
                _bool(item["is_required"], f"{where}.is_required")
                if item.get("is_required") not in (None, "")
                else False
            )
            default = _coerce_default(
                data_type, item.get("default_value"), from_form, f"{where}.default_value"
            )
            if default is not None:
                if data_type == "file":
                    raise BadRequest("A file input cannot have a default value", {"field": where})
                check_value(data_type, default, f"{where}.default_value")
            decl["default_value"] = default
        result.append(decl)
    return result


def _number(value: Any) -> bool:
    # NaN and infinities: JSON cannot carry them (the store, the UI and the clients read
    # its JSON); integers past 64 bits are kept exactly.
    return (isinstance(value, int) and not isinstance(value, bool)
            or isinstance(value, float) and math.isfinite(value))


# Built once: every input and output of every execution is checked (a low-latency call's hot
# path built this table for each value).
_FITS = {
    "string": lambda v: isinstance(v, str),
    "number": _number,
    "boolean": lambda v: isinstance(v, bool),
    "json": lambda v: True,
    "array": lambda v: isinstance(v, list),
    "file": lambda v: True,
}
# json.dumps with `separators` builds an encoder per call; the same one, built once.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def check_value(data_type: str, value: Any, name: str) -> Any:
    """Raise BadRequest unless value fits data_type (None is checked by the caller)."""
    if not _FITS[data_type](value):
        got = repr(value) if isinstance(value, float) else type(value).__name__
        raise BadRequest(
            f"Input '{name}' must be of type {data_type}, got {got}",
            {"name": name, "data_type": data_type},
        )
    return value


def check_total_size(values: dict, what: str = "inputs") -> None:
    size = len(_COMPACT.encode(values).encode())
    if size > MAX_IO_BYTES:
        raise PayloadTooLarge(
            f"Non-file {what} take {size} bytes, over the 0.06 MB limit ({MAX_IO_BYTES} bytes)",
            {"size": size, "limit": MAX_IO_BYTES},
        )
