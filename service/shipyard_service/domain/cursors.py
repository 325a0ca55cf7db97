"""Keyset cursors of the comparison's pages: where the last row of a page sits in its
order, so that the next page starts right after it (an index seek) instead of stepping
over every row before it (OFFSET costs in proportion to the depth: 9 s at 400,000)."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import peewee
from peewee import Tuple

from ..errors import BadRequest
from ..store.db import database
from ..store.models import Execution

# By creation date; by a stored sort key's value; past the valued rows, among those
# without a value (by date).
REGIONS = ("t", "v", "n")
MAX_TEXT = 2_000


@dataclass(frozen=True)
class Cursor:
    region: str
    created_at: dt.datetime
    execution_id: str
    value: Any = None

    @classmethod
    def after_row(cls, region: str, execution_id: str, created_at: Any,
                  value: Any = None) -> Cursor:
        """From a row as the store returned it (a date or its text)."""
        if not isinstance(created_at, dt.datetime):
            created_at = dt.datetime.fromisoformat(str(created_at))
        return cls(region, created_at, execution_id, value)

    def encode(self) -> str:
        parts = [self.region, self.created_at.isoformat(" "), self.execution_id]
        if self.region == "v":
            parts.append(self.value)
        return json.dumps(parts, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor of a page link; BadRequest for anything else."""
        try:
            if len(text) > MAX_TEXT:
                raise ValueError("too long")
            parts = json.loads(text)
            region, created_at, execution_id, *rest = parts
            value = rest[0] if rest else None
            if (region not in REGIONS or not isinstance(execution_id, str)
                    or len(rest) != (region == "v")
                    or (region == "v" and not _sortable(value))):
                raise ValueError("not a cursor")
            return cls(region, dt.datetime.fromisoformat(created_at), execution_id, value)
        except (ValueError, TypeError) as exc:
            raise BadRequest("'after' is not a page cursor", {"field": "after"}) from exc

    def _value(self):
        if isinstance(database.obj, peewee.SqliteDatabase):
            return peewee.Value(self.value)
        return peewee.Cast(peewee.Value(json.dumps(self.value)), "jsonb")

    def by_date(self, ascending: bool):
        """Rows after this one in creation order."""
        row = Tuple(Execution.created_at, Execution.execution_id)
        mark = Tuple(self.created_at, self.execution_id)
        return row > mark if ascending else row < mark

    def beyond(self, value, created_at, execution_id, descending: bool):
        """Rows after this one in a value's order (ties by date and id in the same
        direction): one row-value comparison, which both databases read as a range of
        the key's index (a seek to this row, however many share its value)."""
        row = Tuple(value, created_at, execution_id)
        mark = Tuple(self._value(), self.created_at, self.execution_id)
        return row < mark if descending else row > mark


def _sortable(value: Any) -> bool:
    if isinstance(value, bool | int | str):
        return True
    return isinstance(value, float) and math.isfinite(value)
