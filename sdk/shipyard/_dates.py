"""Date encodings sent to the platform (integer milliseconds since the epoch, §7.5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def to_epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch; a naive datetime is read as local time."""
    if not isinstance(value, datetime):
        raise ValueError("Parameter must be a datetime.datetime object.")  # noqa: TRY004 (as craft-ai-sdk)
    return int(1_000 * value.timestamp())


def logs_query(
    from_datetime: datetime | None, to_datetime: datetime | None, limit: int | None
) -> dict[str, Any]:
    """JSON body of the ``…/logs`` routes: ``{from?, to?, limit?}``."""
    body: dict[str, Any] = {}
    if from_datetime is not None:
        body["from"] = to_epoch_ms(from_datetime)
    if to_datetime is not None:
        body["to"] = to_epoch_ms(to_datetime)
    if limit is not None:
        body["limit"] = limit
    return body
