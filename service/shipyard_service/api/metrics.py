"""Pipeline metrics: recorded from executions, read with one filter."""

from __future__ import annotations

from flask import g, request

from ..domain import metrics
from ..errors import BadRequest
from .common import env_blueprint, json_body, ok

blp = env_blueprint("metrics", __name__, "/metrics", "Pipeline metrics")


@blp.route("/single-value/<name>", methods=["PUT"])
def record_single(name: str):
    metrics.record_single(g.environment, g.principal, name, json_body())
    return ok({"name": name})


@blp.route("/list-values/<name>", methods=["POST"])
def record_list(name: str):
    metrics.record_list(g.environment, g.principal, name, json_body())
    return ok({"name": name})


def _query(kind: str):
    filters = {key: request.args.get(f"filters[{key}]") for key in ("name", *metrics.SCOPES)}
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("items_per_page", 5000))
    except ValueError as exc:
        raise BadRequest("'page' and 'items_per_page' must be integers") from exc
    return ok(metrics.query(kind, g.environment, filters, page, per_page))


@blp.route("/single-value", methods=["GET"])
def get_metrics():
    return _query("single")


@blp.route("/list-values", methods=["GET"])
def get_list_metrics():
    return _query("list")
