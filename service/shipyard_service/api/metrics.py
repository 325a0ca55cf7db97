"""Pipeline metrics (contract §6.9): recorded from executions, read with one filter."""

from __future__ import annotations

import re

from flask import Response, g, request

from ..domain import metrics
from .common import env_blueprint, ok
from .schemas.metrics import (
    NAME_PARAMETER,
    ListBody,
    ListMetricsQuery,
    ListPage,
    ListRecorded,
    MetricsQuery,
    SingleBody,
    SinglePage,
    SingleRecorded,
    page_of,
)

blp = env_blueprint("metrics", __name__, "/metrics", "Pipeline metrics")

_FILTER_KEY = re.compile(r"^filters\[([^\]]*)\]$")


@blp.route("/single-value/<name>", methods=["PUT"], parameters=NAME_PARAMETER)
@blp.arguments(SingleBody)
@blp.response(200, SingleRecorded)
def record_single(body: dict, name: str):
    return ok(metrics.record_single(g.environment, g.principal, name, body))


@blp.route("/list-values/<name>", methods=["POST"], parameters=NAME_PARAMETER)
@blp.arguments(ListBody)
@blp.response(200, ListRecorded)
def record_list(body: dict, name: str):
    return ok(metrics.record_list(g.environment, g.principal, name, body))


def _query(kind: str, args: dict):
    # Every `filters[...]` key reaches the domain, which refuses the ones it does not know.
    filters = {m.group(1): value for key, value in request.args.items()
               if (m := _FILTER_KEY.match(key))}
    # The page's JSON is made in the domain (list values spliced in as stored).
    build = metrics.query_columns_json if args["format"] == "columns" else metrics.query_json
    return Response(build(kind, g.environment, filters, args["page"], args["items_per_page"]),
                    mimetype="application/json")


@blp.route("/single-value", methods=["GET"])
@blp.arguments(MetricsQuery, location="query")
@blp.response(200, page_of(SinglePage))
def get_metrics(args: dict):
    return _query("single", args)


@blp.route("/list-values", methods=["GET"])
@blp.arguments(ListMetricsQuery, location="query")
@blp.response(200, page_of(ListPage))
def get_list_metrics(args: dict):
    return _query("list", args)
