"""Monitoring: single metrics of a deployment (or pipeline) over time, and resource
metrics per worker plus the cumulated series, with over-use cards and CSV download."""

from __future__ import annotations

from flask import Response, render_template, request

from ..domain import browse, metrics, resources
from .blueprint import bp
from .charts import time_chart, to_ms
from .context import place
from .daterange import PRESETS, from_args

_RESOURCE_CHARTS = (("cpu_usage", "CPU", "%", 100), ("ram_usage", "RAM", "%", 100),
                    ("disk_usage", "Disk", "%", 100), ("gpu_usage", "GPU", "%", 100),
                    ("vram_usage", "VRAM", "%", 100),
                    ("network_input_usage", "Network in per sample", "bytes", None),
                    ("network_output_usage", "Network out per sample", "bytes", None))


@bp.route("/projects/<project_name>/environments/<environment_name>/monitoring/pipeline-metrics")
def pipeline_metrics(project_name: str, environment_name: str):
    here = place(project_name, environment_name)
    sources = browse.execution_sources(here.environment)
    span = from_args(request.args, "7d")
    deployment = request.args.get("deployment") or None
    pipeline = request.args.get("pipeline") or None
    if not deployment and not pipeline and sources["deployments"]:
        deployment = sources["deployments"][0]["name"]
    charts, latest = [], []
    if deployment or pipeline:
        scope = ("deployment_name", deployment) if deployment else ("pipeline_name", pipeline)
        series = metrics.single_series(here.environment, scope[0], scope[1], span.start, span.end)
        for name, points in sorted(series.items()):
            charts.append(time_chart(name, {name: [(to_ms(t), v) for t, v, _ in points]},
                                     x_range=(span.start_ms, span.end_ms)))
            latest.append({"name": name, "count": len(points), "value": points[-1][1],
                           "at": points[-1][0], "execution_id": points[-1][2]})
    return render_template("pipeline_metrics.html", sources=sources, deployment=deployment,
                           pipeline=pipeline, span=span, presets=PRESETS, charts=charts,
                           latest=latest, **here.template_args("pipeline_metrics"))


def _resource_query():
    span = from_args(request.args, "1h")
    worker = request.args.get("worker") or None
    return span, worker, resources.query(span.start_ms, span.end_ms, worker)


@bp.route("/projects/<project_name>/environments/<environment_name>/monitoring/resources")
def resource_metrics(project_name: str, environment_name: str):
    here = place(project_name, environment_name)
    span, worker, result = _resource_query()
    charts = []
    for key, title, unit, y_max in _RESOURCE_CHARTS:
        entries = result["metrics"].get(key)
        if entries is None:
            continue  # GPU charts only where a GPU exists
        charts.append(time_chart(title, {e["metric"]["worker"]: e["values"] for e in entries},
                                 unit, y_max, x_range=(span.start_ms, span.end_ms)))
    return render_template(
        "resources.html", span=span, presets=PRESETS, worker=worker,
        workers=[*resources.workers(), resources.CUMULATED], charts=charts,
        cards=resources.overuse_cards(result), totals=result["additional_data"],
        **here.template_args("resources"),
    )


@bp.route("/projects/<project_name>/environments/<environment_name>/monitoring/resources.csv")
def resource_metrics_csv(project_name: str, environment_name: str):
    place(project_name, environment_name)
    span, worker, result = _resource_query()
    name = f"resource_metrics_{span.start_field}_{span.end_field}".replace(":", "")
    return Response(resources.to_csv(result), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}.csv"})
