"""Execution comparison: one page of the table (filters, sort and page applied in the
store, columns picked by group or one by one, differing columns) and the Visualize tab
overlaying the list metrics of chosen executions. The whole view lives in the URL."""

from __future__ import annotations

from flask import render_template, request, url_for

from ..domain import browse
from ..domain import comparison as store_comparison
from ..domain.cursors import Cursor
from ..domain.metrics import AGGREGATIONS, for_executions
from . import comparison
from .blueprint import bp
from .charts import list_metric_chart
from .context import place
from .paging import Paging

MAX_VISUALIZED = 20


@bp.route("/projects/<project_name>/environments/<environment_name>/compare")
def compare(project_name: str, environment_name: str):
    here = place(project_name, environment_name)
    env = here.environment
    args = request.args
    groups = [g for g in args.getlist("groups") if g in comparison.GROUPS]
    if not groups and "applied" not in args:
        groups = list(comparison.DEFAULT_GROUPS)
    picked = [k for k in args.getlist("cols") if k]
    default_agg = args.get("agg") if args.get("agg") in AGGREGATIONS else "last"
    per_column = {key[4:]: value for key, value in args.items()
                  if key.startswith("agg.") and value in AGGREGATIONS}
    filters = store_comparison.Filters(args.get("pipeline") or None,
                                       args.get("deployment") or None,
                                       args.get("status") or None, args.get("q") or None)
    candidates = comparison.candidates(store_comparison.available_columns(env, filters))
    sort = args.get("sort") or None
    if sort and sort not in {c.key for c in candidates}:
        sort = None  # a column hidden by the filter: back to newest first
    descending = args.get("dir", "desc") != "asc"
    paging = Paging.from_args(args)
    sort_agg = per_column.get(sort.partition(":")[2], default_agg) if sort else default_agg
    # A "Next" link carries where its page starts (a keyset cursor): every next page
    # costs the same, however deep.
    after = Cursor.decode(args["after"]) if args.get("after") else None
    found = store_comparison.page_of(env, filters, sort, descending, paging.page,
                                     paging.per_page, sort_agg, after)
    paging = paging.with_total(found.total)
    executions = [browse.with_io(e) for e in found.executions]
    values = store_comparison.page_values(env, [e["execution_id"] for e in executions])
    columns, rows = comparison.build(executions, values,
                                     comparison.chosen(candidates, groups, picked),
                                     default_agg, per_column)
    differ = args.get("differ") == "1"
    shown = comparison.differing(columns, rows) if differ and len(rows) > 1 else columns
    selected = [s for s in args.getlist("sel") if s][:MAX_VISUALIZED]
    view = "visualize" if args.get("view") == "visualize" else "table"
    charts = _charts(env, selected) if view == "visualize" else []

    def link(**changes) -> str:
        merged = {k: args.getlist(k) for k in args if k != "after"}  # Next sets its own
        merged.update(applied=["1"], groups=groups)
        for key, value in changes.items():
            merged[key] = [] if value is None else [str(value)]
        merged = {k: v for k, v in merged.items() if v}
        return url_for("ui.compare", project_name=project_name,
                       environment_name=environment_name, **merged)

    return render_template(
        "compare.html", columns=shown, candidates=candidates, all_columns=len(candidates),
        rows=rows, groups=groups, picked=set(picked), group_names=comparison.GROUPS,
        agg=default_agg, aggregations=AGGREGATIONS, sort=sort, descending=descending,
        differ=differ, selected=selected, view=view, charts=charts, link=link,
        next_aggregation=comparison.next_aggregation, paging=paging,
        page_sizes=store_comparison.PAGE_SIZES, sources=browse.execution_sources(env),
        statuses=store_comparison.statuses(),
        filters={k: args.get(k, "") for k in ("pipeline", "deployment", "status", "q")},
        per_column=per_column, catching_up=found.catching_up,
        next_after=found.next_after.encode() if found.next_after else None,
        **here.template_args("compare"),
    )


def _charts(environment, selected: list[str]) -> list[dict]:
    """One chart per list metric; each selected execution is a series."""
    found = for_executions(environment, selected)
    lists = {e: found[e]["list"] for e in selected if found[e]["list"]}
    names = sorted({n for values in lists.values() for n in values})
    return [list_metric_chart(name, {e: values[name] for e, values in lists.items()
                                     if name in values})
            for name in names]
