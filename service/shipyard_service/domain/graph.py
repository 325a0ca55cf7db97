"""The rules of a pipeline's graph of steps. Pure: names and declarations in, a checked
`Graph` (or a BadRequest naming the fault) out; no store, no I/O.

A connection carries one step's output to another step's input ("prepare.dataset" ->
"train.dataset"). Open inputs are the inputs no connection feeds: one open name used by
several steps feeds all of them (their types must agree). Open outputs are the outputs no
connection consumes; their names must be unique, since callers read them by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any

from ..errors import BadRequest


@dataclass(frozen=True)
class Connection:
    source_step: str
    source_output: str
    target_step: str
    target_input: str

    @property
    def source(self) -> str:
        return f"{self.source_step}.{self.source_output}"

    @property
    def target(self) -> str:
        return f"{self.target_step}.{self.target_input}"

    def as_dict(self) -> dict:
        return {"source": self.source, "target": self.target}


@dataclass
class Graph:
    step_names: list[str]
    connections: list[Connection]
    # step -> the steps it waits for
    upstream: dict[str, set[str]]
    # (step, input) -> the connection feeding it
    feeds: dict[tuple[str, str], Connection]
    # unique by name: {"name", "data_type", "is_required", "default_value", "steps": [...]}
    open_inputs: list[dict] = field(default_factory=list)
    # {"name", "data_type", "step_name"}
    open_outputs: list[dict] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # a topological order

    def downstream(self, step: str) -> set[str]:
        """Every step that depends on `step`, directly or not."""
        found: set[str] = set()
        todo = [step]
        while todo:
            current = todo.pop()
            for other, ups in self.upstream.items():
                if current in ups and other not in found:
                    found.add(other)
                    todo.append(other)
        return found


def check_step_names(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v
                                                           for v in value):
        raise BadRequest("'step_names' must be a non-empty list of step names",
                         {"field": "step_names"})
    seen: set[str] = set()
    for name in value:
        if name in seen:
            raise BadRequest(f"Step '{name}' is listed twice in 'step_names'",
                             {"field": "step_names", "step_name": name})
        seen.add(name)
    return value


def _endpoint(value: Any, role: str, index: int) -> tuple[str, str]:
    if not isinstance(value, str) or value.count(".") != 1 or value.startswith(".") \
            or value.endswith("."):
        what = "output" if role == "source" else "input"
        raise BadRequest(f"Connection {index}: '{role}' must read 'step_name.{what}_name'",
                         {"field": "connections", "index": index, role: value})
    step, name = value.split(".")
    return step, name


def parse_connections(value: Any) -> list[tuple[str, str]]:
    """[(source, target)] from a list of {"source", "target"} objects (or pairs)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest("'connections' must be a list of {\"source\", \"target\"} objects",
                         {"field": "connections"})
    pairs = []
    for index, item in enumerate(value):
        if isinstance(item, dict) and set(item) == {"source", "target"}:
            pairs.append((item["source"], item["target"]))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            pairs.append((item[0], item[1]))
        else:
            raise BadRequest(f"Connection {index} must be an object with 'source' and 'target'",
                             {"field": "connections", "index": index})
    return pairs


def build_graph(step_names: list[str], declarations: dict[str, dict],
                pairs: list[tuple[str, str]]) -> Graph:
    """`declarations`: step name -> {"inputs": [...], "outputs": [...]} as steps store them."""
    step_names = check_step_names(step_names)
    connections: list[Connection] = []
    feeds: dict[tuple[str, str], Connection] = {}
    consumed: set[tuple[str, str]] = set()
    upstream: dict[str, set[str]] = {name: set() for name in step_names}
    for index, (raw_source, raw_target) in enumerate(pairs):
        source_step, output = _endpoint(raw_source, "source", index)
        target_step, input_name = _endpoint(raw_target, "target", index)
        for step in (source_step, target_step):
            if step not in upstream:
                raise BadRequest(f"Connection {index}: step '{step}' is not in 'step_names'",
                                 {"field": "connections", "index": index, "step_name": step})
        outputs = {o["name"]: o for o in declarations[source_step]["outputs"]}
        inputs = {i["name"]: i for i in declarations[target_step]["inputs"]}
        if output not in outputs:
            raise BadRequest(f"Connection {index}: step '{source_step}' has no output '{output}'",
                             {"field": "connections", "index": index, "source": raw_source,
                              "outputs": sorted(outputs)})
        if input_name not in inputs:
            raise BadRequest(
                f"Connection {index}: step '{target_step}' has no input '{input_name}'",
                {"field": "connections", "index": index, "target": raw_target,
                 "inputs": sorted(inputs)})
        out_type, in_type = outputs[output]["data_type"], inputs[input_name]["data_type"]
        if out_type != in_type:
            raise BadRequest(
                f"Connection {index}: '{raw_source}' is a {out_type}, '{raw_target}' "
                f"takes a {in_type}",
                {"field": "connections", "index": index, "source": raw_source,
                 "target": raw_target})
        if (target_step, input_name) in feeds:
            raise BadRequest(f"Input '{raw_target}' is fed by two connections",
                             {"field": "connections", "target": raw_target})
        connection = Connection(source_step, output, target_step, input_name)
        connections.append(connection)
        feeds[(target_step, input_name)] = connection
        consumed.add((source_step, output))
        upstream[target_step].add(source_step)
    try:
        order = list(TopologicalSorter(upstream).static_order())
    except CycleError as exc:
        cycle = list(exc.args[1])  # in the direction data flows, first step repeated last
        raise BadRequest(f"The connections make a cycle: {' -> '.join(cycle)}",
                         {"field": "connections", "cycle": cycle}) from None
    open_inputs: dict[str, dict] = {}
    for step in step_names:
        for decl in declarations[step]["inputs"]:
            if (step, decl["name"]) in feeds:
                continue
            known = open_inputs.get(decl["name"])
            if known is None:
                open_inputs[decl["name"]] = {
                    "name": decl["name"], "data_type": decl["data_type"],
                    "is_required": bool(decl.get("is_required")),
                    "default_value": decl.get("default_value"), "steps": [step]}
                continue
            if known["data_type"] != decl["data_type"]:
                raise BadRequest(
                    f"Open input '{decl['name']}' is a {known['data_type']} for step "
                    f"'{known['steps'][0]}' and a {decl['data_type']} for step '{step}'",
                    {"input_name": decl["name"], "steps": [known["steps"][0], step]})
            known["steps"].append(step)
            known["is_required"] = known["is_required"] or bool(decl.get("is_required"))
            if known["default_value"] is None:
                known["default_value"] = decl.get("default_value")
    open_outputs: dict[str, dict] = {}
    for step in step_names:
        for decl in declarations[step]["outputs"]:
            if (step, decl["name"]) in consumed:
                continue
            if decl["name"] in open_outputs:
                first = open_outputs[decl["name"]]["step_name"]
                raise BadRequest(
                    f"Steps '{first}' and '{step}' both leave an open output named "
                    f"'{decl['name']}': connect one of them or rename it",
                    {"output_name": decl["name"], "steps": [first, step]})
            open_outputs[decl["name"]] = {"name": decl["name"], "data_type": decl["data_type"],
                                          "step_name": step}
    return Graph(step_names=list(step_names), connections=connections, upstream=upstream,
                 feeds=feeds, open_inputs=list(open_inputs.values()),
                 open_outputs=list(open_outputs.values()), order=order)


def as_declarations(graph: Graph) -> tuple[list[dict], list[dict]]:
    """The open I/O as the pipeline's own input and output declarations (what mappings,
    runs and deployments check against, exactly like a single step's)."""
    inputs = [{k: v for k, v in item.items() if k != "steps"} for item in graph.open_inputs]
    outputs = [{"name": o["name"], "data_type": o["data_type"]} for o in graph.open_outputs]
    return inputs, outputs
