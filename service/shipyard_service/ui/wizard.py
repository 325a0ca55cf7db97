"""The Deploy wizard's form handling: step 1 (name, rule, mode, schedule) and the mapping
page (one source per input, one destination per output), turned into the JSON body of
contract §6.5.1 that `deployments.create_deployment` takes. No Flask here."""

from __future__ import annotations

import json

from ..domain.deployments import MODES, RULES
from ..domain.names import check_resource_name
from ..domain.schedules import check_schedule
from ..errors import BadRequest

INPUT_SOURCES = {
    "endpoint": "Endpoint input", "constant": "Constant", "environment_variable":
    "Environment variable", "datastore": "Data store file", "is_null": "Null",
}
OUTPUT_DESTINATIONS = {"endpoint": "Endpoint output", "datastore": "Data store file",
                       "is_null": "Null"}
STEP1_FIELDS = ("name", "execution_rule", "mode", "schedule", "description",
                "endpoint_url_path", "enable_parallel_executions",
                "max_parallel_executions_per_pod")


def step1(form) -> dict:
    """The first page's values, checked enough to show the mapping page."""
    values = {key: (form.get(key) or "").strip() for key in STEP1_FIELDS}
    check_resource_name(values["name"], "deployment name")
    if values["execution_rule"] not in RULES:
        raise BadRequest("Choose the execution rule: endpoint or periodic",
                         {"field": "execution_rule"})
    if values["mode"] not in MODES:
        raise BadRequest("Choose the mode: elastic or low_latency", {"field": "mode"})
    if values["execution_rule"] == "periodic":
        values["schedule"] = check_schedule(values["schedule"])
        values["endpoint_url_path"] = ""
    else:
        values["schedule"] = ""
        if values["endpoint_url_path"]:
            check_resource_name(values["endpoint_url_path"], "endpoint URL path")
    return values


def sources_for(rule: str, kind: str) -> dict[str, str]:
    choices = INPUT_SOURCES if kind == "input" else OUTPUT_DESTINATIONS
    if rule == "periodic":
        return {k: v for k, v in choices.items() if k != "endpoint"}
    return dict(choices)


def default_choice(rule: str, kind: str, data_type: str) -> str:
    if rule == "endpoint":
        return "endpoint"
    if kind == "input":
        return "datastore" if data_type == "file" else "constant"
    return "datastore"


def _constant(raw: str, data_type: str, name: str):
    """Form text to a typed constant: strings as typed, the rest as JSON."""
    if data_type == "string":
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"The constant of '{name}' must be JSON text for a {data_type} "
                         "(e.g. 3, true, [1, 2], {\"k\": 1})", {"name": name}) from exc


def mapping_item(kind: str, name: str, data_type: str, choice: str, value: str,
                 required: bool = False) -> dict:
    """One InputSource / OutputDestination dict (contract §7.2)."""
    item: dict = {f"pipeline_{kind}_name": name}
    value = value.strip() if choice != "constant" or data_type != "string" else value
    if choice == "endpoint":
        item[f"endpoint_{kind}_name"] = value or name
        if kind == "input":
            item["is_required"] = required
    elif choice == "constant":
        item["constant_value"] = _constant(value, data_type, name)
    elif choice == "environment_variable":
        if not value:
            raise BadRequest(f"Name the environment variable for '{name}'", {"name": name})
        item["environment_variable_name"] = value
    elif choice == "datastore":
        if not value:
            raise BadRequest(f"Give the data store path for '{name}'", {"name": name})
        item["datastore_path"] = value
    elif choice == "is_null":
        item["is_null"] = True
    else:
        raise BadRequest(f"Unknown mapping choice {choice!r} for '{name}'", {"name": name})
    return item


def deployment_body(pipeline_name: str, values: dict, inputs: list[dict], outputs: list[dict],
                    form) -> dict:
    """The create body from step 1's values and the mapping form."""
    body: dict = {"pipeline_name": pipeline_name, "name": values["name"],
                  "mode": values["mode"]}
    if values["description"]:
        body["description"] = values["description"]
    if values["execution_rule"] == "periodic":
        body["schedule"] = values["schedule"]
    elif values["endpoint_url_path"]:
        body["endpoint_url_path"] = values["endpoint_url_path"]
    if values["mode"] == "low_latency" and values["enable_parallel_executions"] == "on":
        body["enable_parallel_executions"] = True
        if values["max_parallel_executions_per_pod"]:
            try:
                body["max_parallel_executions_per_pod"] = int(
                    values["max_parallel_executions_per_pod"])
            except ValueError as exc:
                raise BadRequest("'max parallel executions' must be a whole number") from exc
    for kind, declared, key in (("input", inputs, "inputs_mapping"),
                                ("output", outputs, "outputs_mapping")):
        body[key] = [
            mapping_item(kind, d["name"], d["data_type"],
                         form.get(f"{kind}.{d['name']}.source") or "",
                         form.get(f"{kind}.{d['name']}.value") or "",
                         form.get(f"{kind}.{d['name']}.required") == "on")
            for d in declared
        ]
    return body
