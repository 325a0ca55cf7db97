"""Rebuilding a decoded JSON value with each key and scalar passed through a function: the
one walk behind the service's clean-ups of values it cannot refuse (a step's NaN output, a
NUL in a step's text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def map_leaves(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """`value` with `leaf` applied to every object key and every non-container value."""
    if isinstance(value, dict):
        return {leaf(k): map_leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [map_leaves(item, leaf) for item in value]
    return leaf(value)
