"""A pipeline's graph drawn as plain SVG on the server: steps in columns by depth (a step
sits one column right of its deepest upstream step), connections as curves, open inputs
and outputs as labels on the left and right of their steps. With statuses (an execution),
each step is coloured by its status and links to its own panel."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape

BOX_W, BOX_H = 170, 46
GAP_X, GAP_Y = 90, 24
PAD_X, PAD_Y = 120, 20


def _layers(step_names: list[str], upstream: dict[str, set[str]]) -> dict[str, int]:
    depth: dict[str, int] = {}

    def of(name: str, seen: tuple = ()) -> int:
        if name not in depth:
            ups = [u for u in upstream.get(name, ()) if u not in seen]
            depth[name] = 1 + max((of(u, (*seen, name)) for u in ups), default=-1)
        return depth[name]

    for name in step_names:
        of(name)
    return depth


def render(step_names: list[str], connections: list[dict], open_inputs: list[dict],
           open_outputs: list[dict], statuses: dict[str, str] | None = None,
           link: Callable[[str], str] | None = None, selected: str | None = None) -> Markup:
    upstream: dict[str, set[str]] = {name: set() for name in step_names}
    for c in connections:
        upstream.setdefault(c["target"].split(".")[0], set()).add(c["source"].split(".")[0])
    depth = _layers(step_names, upstream)
    columns: dict[int, list[str]] = {}
    for name in step_names:
        columns.setdefault(depth[name], []).append(name)
    rows = max(len(v) for v in columns.values())
    place = {}
    for column, names in columns.items():
        offset = (rows - len(names)) * (BOX_H + GAP_Y) / 2
        for row, name in enumerate(names):
            place[name] = (PAD_X + column * (BOX_W + GAP_X),
                           PAD_Y + offset + row * (BOX_H + GAP_Y))
    width = PAD_X * 2 + len(columns) * (BOX_W + GAP_X) - GAP_X
    height = PAD_Y * 2 + rows * (BOX_H + GAP_Y) - GAP_Y
    parts = [f'<svg class="pipeline-graph" xmlns="http://www.w3.org/2000/svg" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
             f'role="img" aria-label="Pipeline graph">']
    drawn = set()
    for c in connections:
        source, target = c["source"].split(".")[0], c["target"].split(".")[0]
        if (source, target) in drawn or source not in place or target not in place:
            continue
        drawn.add((source, target))
        labels = ", ".join(f"{x['source'].split('.', 1)[1]} → {x['target'].split('.', 1)[1]}"
                           for x in connections if x["source"].startswith(source + ".")
                           and x["target"].startswith(target + "."))
        (x1, y1), (x2, y2) = place[source], place[target]
        x1, y1, x2, y2 = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        middle = (x1 + x2) / 2
        parts.append(f'<path class="edge" data-source="{escape(source)}" '
                     f'data-target="{escape(target)}" d="M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} '
                     f'{middle:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" fill="none" stroke="#8a94a6" '
                     f'stroke-width="1.5"><title>{escape(labels)}</title></path>')
    for item in open_inputs:
        x, y = place[item["step_name"]]
        parts.append(f'<text class="open-input" x="{x - 8:.0f}" y="{y + 14:.0f}" '
                     f'text-anchor="end" font-size="11" fill="#4b5563">{escape(item["input_name"])} ▸'
                     f'</text>')
    for item in open_outputs:
        x, y = place[item["step_name"]]
        parts.append(f'<text class="open-output" x="{x + BOX_W + 8:.0f}" y="{y + BOX_H - 8:.0f}" '
                     f'font-size="11" fill="#4b5563">▸ {escape(item["output_name"])}</text>')
    for name in step_names:
        x, y = place[name]
        status = (statuses or {}).get(name)
        # Colours by status come from app.css ([data-status]), so the live page only
        # changes the attribute.
        fill = "#ffffff"
        stroke = "#111827" if name == selected else "#6b7280"
        node = (f'<g class="step-node" data-step="{escape(name)}"'
                f'{f" data-status={chr(34)}{escape(status)}{chr(34)}" if status else ""}>'
                f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" '
                f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if name == selected else 1}"/>'
                f'<text x="{x + 10:.0f}" y="{y + 20:.0f}" font-size="13" font-weight="600" '
                f'fill="#111827">{escape(name)}</text>')
        if statuses is not None:
            node += (f'<text class="step-status" x="{x + 10:.0f}" y="{y + 37:.0f}" '
                     f'font-size="11" fill="#374151">{escape(status or "")}</text>')
        node += "</g>"
        if link is not None:
            node = f'<a href="{escape(link(name))}">{node}</a>'
        parts.append(node)
    parts.append("</svg>")
    return Markup("".join(parts))
