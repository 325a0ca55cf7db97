"""Naming rules shared by every resource (URL-safe, so clients never build broken URLs)."""

from __future__ import annotations

import re

from ..errors import BadRequest

# Checked with fullmatch: `$` alone lets a final newline by ("abc\n").
RESOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
IO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
RESOURCE_NAME_RULE = ("use lowercase letters, digits and '-', starting with a letter or digit "
                      "(at most 63 characters)")


def check_resource_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Missing {what}", {"field": what})
    if not RESOURCE_NAME.fullmatch(value):
        raise BadRequest(f"Invalid {what} '{value}': {RESOURCE_NAME_RULE}",
                         {"field": what, "value": value})
    return value


def check_io_name(value: object, what: str = "name") -> str:
    if not isinstance(value, str) or not IO_NAME.fullmatch(value):
        raise BadRequest(
            f"Invalid input/output {what} {value!r}: must be a Python identifier",
            {"field": what, "value": value},
        )
    return value


def check_env_var_name(value: object) -> str:
    if not isinstance(value, str) or not ENV_VAR_NAME.fullmatch(value):
        raise BadRequest(
            f"Invalid environment variable name {value!r}",
            {"field": "name", "value": value},
        )
    return value
