"""Pipeline metrics (contract §6.9): recorded from executions, read with one filter."""

from __future__ import annotations

import re

from flask import g, request

from ..domain import metrics
from ..errors import BadRequest
from .common import env_blueprint, json_body, ok

blp = env_blueprint("metrics", __name__, "/metrics", "Pipeline metrics")

_FILTER_KEY = re.compile(r"^filters\[([^\]]*)\]$")


@blp.route("/single-value/<name>", methods=["PUT"])
def record_single(name: str):
    return ok(metrics.record_single(g.environment, g.principal, name, json_body()))


@blp.route("/list-values/<name>", methods=["POST"])
def record_list(name: str):
    return ok(metrics.record_list(g.environment, g.principal, name, json_body()))


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"'{name}' must be an integer", {"field": name}) from exc


def _query(kind: str):
    filters: dict[str, str | None] = {}
    for key, value in request.args.items():
        match = _FILTER_KEY.match(key)
        if match:
            filters[match.group(1)] = value
    page = _int_arg("page", 1)
    per_page = _int_arg("items_per_page", metrics.MAX_PAGE)
    return ok(metrics.query(kind, g.environment, filters, page, per_page))


@blp.route("/single-value", methods=["GET"])
def get_metrics():
    return _query("single")


@blp.route("/list-values", methods=["GET"])
def get_list_metrics():
    return _query("list")
