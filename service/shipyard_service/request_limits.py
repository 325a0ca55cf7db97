"""Limits every request meets before its handler runs: no NUL in its URL, body size (except
the streamed uploads) and JSON nesting. Without them an unauthenticated caller could make the server
read a body of any size, and deeply nested JSON ended in a RecursionError (a 500)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, request

from .config import Settings
from .errors import BadRequest, PayloadTooLarge
from .jsontext import holds_nul, refuse_non_finite

View = TypeVar("View", bound=Callable[..., Any])


def streamed_upload(view: View) -> View:
    """Marks a route whose body is a file streamed to disk: no size limit here (the
    route or its store bounds what it keeps)."""
    view.streamed_upload = True  # type: ignore[attr-defined]
    return view


def raw_upload(view: View) -> View:
    """A streamed upload whose body is never JSON, whatever its Content-Type says: nothing
    reads it before the view (which checks its signature first)."""
    view.raw_upload = True  # type: ignore[attr-defined]
    return streamed_upload(view)


def too_deep(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than `limit` levels (without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _nul_field(value: Any) -> str:
    """The top-level field of a JSON body holding a NUL (its name is what the 400 names)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if holds_nul(key) or holds_nul(item):
                return key
    return "body"


def nesting_error(limit: int) -> BadRequest:
    return BadRequest(f"The request's JSON nests more than {limit} levels deep",
                      {"max_depth": limit})


def install(app: Flask, settings: Settings) -> None:
    @app.before_request
    def _limit_request() -> None:
        req = request._get_current_object()  # type: ignore[attr-defined]  # once, not per use
        if "\x00" in req.path or b"%00" in req.query_string:
            # PostgreSQL refuses NUL in text (a 500 wherever a name or filter reached it).
            field = next((k for k, v in req.args.items(multi=True)
                          if "\x00" in k or "\x00" in v), "url")
            raise BadRequest("NUL characters (%00) are not allowed in URLs",
                             {"field": field, field: req.args.get(field, req.path)})
        view = app.view_functions.get(req.endpoint or "")
        if getattr(view, "raw_upload", False):
            return  # the view checks who sends it before reading a byte
        is_json = req.is_json
        if getattr(view, "streamed_upload", False) and not is_json:
            return  # files streamed to disk; a JSON body (endpoint inputs) is read whole
        limit = settings.max_request_bytes
        length = req.content_length
        if length is None:
            # A body sent without a length (chunked) is bounded as it is read. One with a
            # length is read by the server up to it, checked here: werkzeug's bounded
            # stream around it would only add its layers to every read.
            req.max_content_length = limit
        elif length > limit:
            raise PayloadTooLarge(f"The request body is over the {limit} bytes limit",
                                  {"size": length, "limit": limit})
        if is_json:
            head = req.get_data(cache=True)[:4]
            if b"\x00" in head or head[:2] in (b"\xff\xfe", b"\xfe\xff"):
                # UTF-16/32 (which json.loads detects): RFC 8259 requires UTF-8 between
                # systems, the routes' own parsers read only that, and the \u0000 search
                # below would miss its spread-out bytes.
                raise BadRequest("JSON request bodies must be encoded in UTF-8",
                                 {"field": "body"})
            # Parsed through the request's JSON cache, so a route reading get_json (the
            # endpoint trigger, on the low-latency path) does not parse the body again.
            try:
                value = req.get_json(silent=True)
            except RecursionError:
                raise nesting_error(settings.max_json_depth) from None
            if value is None:
                # Empty or malformed: the route answers it in its own words, unless only a
                # NaN/Infinity spoiled it (the webargs parser would read those).
                try:
                    refuse_non_finite(req.get_data(cache=True))
                except RecursionError:
                    raise nesting_error(settings.max_json_depth) from None
                return
            if too_deep(value, settings.max_json_depth):
                raise nesting_error(settings.max_json_depth)
            # A NUL can only be written \u0000 in JSON: the byte search spares the walk.
            # Runner callbacks carry what step code produced: the domain replaces NULs there
            # (executions.finish, logs.checked_entries) instead of failing the execution.
            if (b"\\u0000" in req.get_data(cache=True) and req.blueprint != "runner"
                    and holds_nul(value)):
                field = _nul_field(value)
                raise BadRequest("NUL characters (\\u0000) are not allowed in the request's "
                                 "text (the store cannot keep them)",
                                 {"field": field, field: value.get(field)
                                  if isinstance(value, dict) else None})
