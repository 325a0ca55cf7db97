"""Where each input comes from and where each output goes (contract §7.2, §7.3)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import BadRequest

INPUT_SOURCES = ("endpoint_input_name", "constant_value", "environment_variable_name",
                 "is_null", "datastore_path")
OUTPUT_DESTINATIONS = ("endpoint_output_name", "is_null", "datastore_path")
MAPPING_TYPE = {
    "endpoint_input_name": "endpoint", "endpoint_output_name": "endpoint",
    "constant_value": "constant", "environment_variable_name": "environment_variable",
    "is_null": "is_null", "datastore_path": "datastore",
}

# Which sources each execution rule accepts (the seeds' compatibility table).
ALLOWED = {
    "run": {"constant", "environment_variable", "datastore", "is_null"},
    "endpoint": {"endpoint", "constant", "environment_variable", "datastore", "is_null"},
    "periodic": {"constant", "environment_variable", "datastore", "is_null"},
}


def allowed_for_type(mapping_type: str, data_type: str) -> bool:
    """The seeds' type rule: data store -> only files; constant and environment variable ->
    only values (string, number, ...); endpoint and none -> both."""
    if mapping_type == "datastore":
        return data_type == "file"
    if mapping_type in ("constant", "environment_variable"):
        return data_type != "file"
    return True


def _parse(items: Any, kind: str, declared: list[dict], rule: str) -> dict[str, dict]:
    """Return {pipeline io name: {"mapping_type", "mapping_value"}} after every rule check."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise BadRequest(f"'{kind}' must be a list of mappings", {"field": kind})
    io = "input" if kind == "inputs_mapping" else "output"
    choices = INPUT_SOURCES if io == "input" else OUTPUT_DESTINATIONS
    by_name = {d["name"]: d for d in declared}
    result: dict[str, dict] = {}
    for index, item in enumerate(items):
        where = f"{kind}[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"'{where}' must be an object", {"field": where})
        name = item.get(f"pipeline_{io}_name", item.get(f"step_{io}_name"))
        if not isinstance(name, str) or name not in by_name:  # a list or object: unhashable
            raise BadRequest(
                f"'{where}' names unknown pipeline {io} {name!r}",
                {"field": where, "known": sorted(by_name)},
            )
        if name in result:
            raise BadRequest(f"Pipeline {io} '{name}' is mapped twice", {"field": where})
        sources = [key for key in choices if key in item and item[key] is not None]
        if item.get("is_null") is False:
            sources.remove("is_null")
        if not sources and io == "input":
            # The seed: an InputSource naming no source is an endpoint input (of the same
            # name); a run takes it from the run's inputs, as if unmapped.
            if rule == "run":
                continue
            if rule == "endpoint":
                item = {**item, "endpoint_input_name": name}
                sources = ["endpoint_input_name"]
        if len(sources) != 1:
            raise BadRequest(
                f"'{where}' needs exactly one of {', '.join(choices)}", {"field": where}
            )
        key = sources[0]
        mapping_type = MAPPING_TYPE[key]
        if mapping_type not in ALLOWED[rule]:
            raise BadRequest(
                f"A {mapping_type} mapping is not allowed for the {rule} execution rule",
                {"field": where, "rule": rule},
            )
        data_type = by_name[name]["data_type"]
        value = item[key]
        if not allowed_for_type(mapping_type, data_type):
            raise BadRequest(
                f"A {mapping_type} mapping cannot carry the {data_type} {io} '{name}': the data "
                "store takes files only, constants and environment variables values only",
                {"field": where, "data_type": data_type, "mapping_type": mapping_type})
        if mapping_type == "constant":
            from .io_types import check_value

            check_value(data_type, value, name)
        if mapping_type in ("endpoint", "environment_variable", "datastore") and (
            not isinstance(value, str) or not value
        ):
            raise BadRequest(f"'{where}.{key}' must be a non-empty string", {"field": where})
        mapping_value = {key: value}
        if mapping_type == "endpoint" and io == "input":
            declared_input = by_name[name]
            mapping_value["is_required"] = bool(item.get("is_required", declared_input.get("is_required")))
            mapping_value["default_value"] = item.get("default_value", declared_input.get("default_value"))
        result[name] = {"mapping_type": mapping_type, "mapping_value": mapping_value}
    return result


def parse_input_mappings(items: Any, declared: list[dict], rule: str) -> dict[str, dict]:
    return _parse(items, "inputs_mapping", declared, rule)


def parse_output_mappings(items: Any, declared: list[dict], rule: str) -> dict[str, dict]:
    return _parse(items, "outputs_mapping", declared, rule)


def expand_datastore_path(template: str, execution_id: str, now: dt.datetime) -> str:
    """Placeholders of output paths: {execution_id}, {date} (YYYYMMDD), {date_time}."""
    return (
        template.replace("{execution_id}", execution_id)
        .replace("{date_time}", now.strftime("%Y%m%d_%H%M%S"))
        .replace("{date}", now.strftime("%Y%m%d"))
    )
