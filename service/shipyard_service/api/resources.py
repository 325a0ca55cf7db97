"""Resource metrics of the environment's workers (contract §6.10), as JSON or CSV."""

from __future__ import annotations

from flask import Response

from ..domain import resources
from .common import env_blueprint, ok
from .schemas.resources import RangeQuery, ResourceMetrics

blp = env_blueprint("resource_metrics", __name__, "/resource-metrics", "Resource metrics")


@blp.route("", methods=["GET"])
@blp.arguments(RangeQuery, location="query")
@blp.response(200, ResourceMetrics)
@blp.alt_response(200, schema={"type": "string"}, content_type="text/csv", success=True,
                  description="With download=True")
def resource_metrics(args: dict):
    """`start`/`end` in ms since the epoch; `download=True` answers CSV (text/csv).
    In the embedded mode every environment shares this machine's worker."""
    start, end = resources.parse_range(args["start"], args["end"])
    result = resources.query(start, end, args.get("worker") or None)
    if args["download"]:
        return Response(resources.to_csv(result), mimetype="text/csv",
                        headers={"Content-Disposition":
                                 f"attachment; filename=resource_metrics_{start}_{end}.csv"})
    return ok(result)
