"""Log lines shared by executions, deployments and step builds: checking what runners send,
and reading a time window back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import BadRequest
from ..store.db import utcnow
from .times import parse_iso

MAX_BATCH = 10_000
MAX_MESSAGE = 100_000


def checked_entries(entries: Any) -> list[dict]:
    """Runner log batches: [{timestamp, stream, message, pod_id?}] -> rows' common columns."""
    if not isinstance(entries, list):
        raise BadRequest("'logs' must be a list")
    rows = []
    for entry in entries[:MAX_BATCH]:
        if not isinstance(entry, dict) or not isinstance(entry.get("message"), str):
            raise BadRequest("Each log needs a 'message' string")
        try:
            stamp = parse_iso(entry["timestamp"]) if entry.get("timestamp") else utcnow()
        except (TypeError, ValueError) as exc:
            raise BadRequest("Invalid log timestamp") from exc
        stream = entry.get("stream") if entry.get("stream") in ("stdout", "stderr") else "stdout"
        # A NUL a step printed: PostgreSQL refuses it in text (U+FFFD, as a terminal shows it).
        message = entry["message"][:MAX_MESSAGE].replace("\x00", "\ufffd")
        rows.append({"timestamp": stamp, "stream": stream, "message": message,
                     "pod_id": entry.get("pod_id")})
    return rows


def window(query, model, start: dt.datetime | None, end: dt.datetime | None,
           limit: int | None):
    """Lines between start and end (inclusive), oldest first, at most `limit`."""
    if start is not None:
        query = query.where(model.timestamp >= start)
    if end is not None:
        query = query.where(model.timestamp <= end)
    query = query.order_by(model.timestamp, model.id)
    return query.limit(limit) if limit else query


def tail(query, model, limit: int) -> list:
    """The last `limit` rows of a log query, oldest first (a page opening on a long log)."""
    return list(reversed(list(query.order_by(model.id.desc()).limit(limit))))


def since(query, model, after_id: int, limit: int) -> list:
    """Rows written after the row `after_id`, oldest first: what a live page appends."""
    return list(query.where(model.id > after_id).order_by(model.id).limit(limit))
