"""Execution comparison: the table (groups, filters, sorting, aggregation, differing
columns) and the Visualize tab overlaying the list metrics of chosen executions."""

from __future__ import annotations

from flask import render_template, request, url_for

from ..domain import browse
from ..domain.metrics import AGGREGATIONS
from . import comparison
from .blueprint import bp
from .charts import list_metric_chart
from .context import place

MAX_VISUALIZED = 20


@bp.route("/projects/<project_name>/environments/<environment_name>/compare")
def compare(project_name: str, environment_name: str):
    here = place(project_name, environment_name)
    args = request.args
    groups = [g for g in args.getlist("groups") if g in comparison.GROUPS]
    if not groups and "applied" not in args:
        groups = list(comparison.DEFAULT_GROUPS)
    default_agg = args.get("agg") if args.get("agg") in AGGREGATIONS else "last"
    per_column = {key[4:]: value for key, value in args.items()
                  if key.startswith("agg.") and value in AGGREGATIONS}
    data = browse.comparison_data(here.environment)
    columns, rows = comparison.build(data, groups, default_agg, per_column)
    rows = comparison.filter_rows(rows, args.get("pipeline"), args.get("deployment"),
                                  args.get("status"), args.get("q"))
    sort, descending = args.get("sort"), args.get("dir", "desc") != "asc"
    rows = comparison.sort_rows(rows, columns, sort, descending)
    differ = args.get("differ") == "1"
    shown = comparison.differing(columns, rows) if differ and len(rows) > 1 else columns
    selected = [s for s in args.getlist("sel") if s][:MAX_VISUALIZED]
    view = "visualize" if args.get("view") == "visualize" else "table"
    charts = _charts(data, selected) if view == "visualize" else []

    def link(**changes) -> str:
        merged = {k: args.getlist(k) for k in args}
        merged.update(applied=["1"], groups=groups)
        for key, value in changes.items():
            merged[key] = [] if value is None else [value]
        merged = {k: v for k, v in merged.items() if v}
        return url_for("ui.compare", project_name=project_name,
                       environment_name=environment_name, **merged)

    return render_template(
        "compare.html", columns=shown, all_columns=len(columns), rows=rows, groups=groups,
        group_names=comparison.GROUPS, agg=default_agg, aggregations=AGGREGATIONS,
        sort=sort, descending=descending, differ=differ, selected=selected, view=view,
        charts=charts, link=link, next_aggregation=comparison.next_aggregation,
        sources=browse.execution_sources(here.environment),
        statuses=sorted({r["status"] for r in data}),
        filters={k: args.get(k, "") for k in ("pipeline", "deployment", "status", "q")},
        per_column=per_column, total=len(data), **here.template_args("compare"),
    )


def _charts(data: list[dict], selected: list[str]) -> list[dict]:
    """One chart per list metric; each selected execution is a series."""
    chosen = [e for e in data if e["execution_id"] in selected and e["list_metrics"]]
    names = sorted({n for e in chosen for n in e["list_metrics"]})
    return [list_metric_chart(name, {e["execution_id"]: e["list_metrics"][name]
                                     for e in chosen if name in e["list_metrics"]})
            for name in names]
