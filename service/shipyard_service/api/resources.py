"""Resource metrics of the environment's workers (contract §6.10), as JSON or CSV."""

from __future__ import annotations

from flask import Response, request

from ..domain import resources
from .common import env_blueprint, flag, ok

blp = env_blueprint("resource_metrics", __name__, "/resource-metrics", "Resource metrics")


@blp.route("", methods=["GET"])
def resource_metrics():
    """`start`/`end` in ms since the epoch; `download=True` answers CSV (text/csv).
    In the embedded mode every environment shares this machine's worker."""
    start, end = resources.parse_range(request.args.get("start"), request.args.get("end"))
    result = resources.query(start, end, request.args.get("worker") or None)
    if flag("download"):
        return Response(resources.to_csv(result), mimetype="text/csv",
                        headers={"Content-Disposition":
                                 f"attachment; filename=resource_metrics_{start}_{end}.csv"})
    return ok(result)
