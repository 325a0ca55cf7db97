"""Flatten nested data into bracketed form fields (API contract §3.2).

``{"a": {"b": [1, None]}}`` becomes ``[("a[b][0]", "1"), ("a[b][1]", "")]``:

* only plain ``dict`` and ``list`` are expanded (0-based list indexes);
* an empty dict or list produces no field at all;
* ``None`` becomes an empty string, booleans ``"True"``/``"False"``;
* enumeration members become their value, everything else ``str(value)``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Tuple

Field = Tuple[str, str]


def leaf_text(value: Any) -> str:
    """Text sent for a non-container value."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def flatten(value: Any, prefix: str | None = None) -> list[Field]:
    """Return the ordered ``(field name, text)`` pairs for ``value``.

    At the top level (``prefix`` is None), ``value`` must be a dict; its keys are the
    field names.
    """
    fields: list[Field] = []
    if type(value) is dict:
        for key, item in value.items():
            name = str(key) if prefix is None else f"{prefix}[{key}]"
            fields.extend(flatten(item, name))
    elif type(value) is list:
        if prefix is None:
            raise TypeError("The top-level value to flatten must be a dict.")
        for index, item in enumerate(value):
            fields.extend(flatten(item, f"{prefix}[{index}]"))
    else:
        if prefix is None:
            raise TypeError("The top-level value to flatten must be a dict.")
        fields.append((prefix, leaf_text(value)))
    return fields
