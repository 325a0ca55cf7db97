"""The Deploy wizard's form handling: step 1 (name, rule, mode, schedule) and the mapping
page (one source per input, one destination per output), turned into the JSON body of
contract §6.5.1 that `deployments.create_deployment` takes. No Flask here."""

from __future__ import annotations

import datetime as dt
import math

from .. import jsontext
from ..domain.deployments import MODES, RULES
from ..domain.mappings import ALLOWED, allowed_for_type
from ..domain.names import check_resource_name
from ..domain.pipelines import pipeline_io
from ..domain.schedules import check_schedule, describe, next_runs
from ..errors import BadRequest

INPUT_SOURCES = {
    "endpoint": "Endpoint input", "constant": "Constant", "environment_variable":
    "Environment variable", "datastore": "Data store file", "is_null": "None",
}
OUTPUT_DESTINATIONS = {"endpoint": "Endpoint output", "datastore": "Data store file",
                       "is_null": "None"}
STEP1_FIELDS = ("name", "execution_rule", "mode", "schedule", "description",
                "endpoint_url_path", "enable_parallel_executions",
                "max_parallel_executions_per_pod")


def schedule_preview(expr: str, count: int = 5) -> dict:
    """What a cron expression means and its next runs (UTC), as the user types it."""
    try:
        expr = check_schedule(expr)
    except BadRequest as exc:
        return {"valid": False, "message": exc.message}
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return {"valid": True, "schedule": expr, "description": describe(expr),
            "next_runs": [t.strftime("%Y-%m-%d %H:%M UTC") for t in next_runs(expr, now, count)]}


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


def open_io(pipeline) -> tuple[list[dict], list[dict]]:
    """The pipeline inputs and outputs the deployment maps (each {name, data_type, ...}).
    The one place the wizard learns them from: a multi-step pipeline's open I/O too."""
    return pipeline_io(pipeline)


def sources_for(rule: str, kind: str, data_type: str) -> dict[str, str]:
    """The sources (or destinations) the rule and the type allow, per the seeds' tables."""
    choices = INPUT_SOURCES if kind == "input" else OUTPUT_DESTINATIONS
    return {key: label for key, label in choices.items()
            if key in ALLOWED[rule] and allowed_for_type(key, data_type)}


def default_choice(rule: str, kind: str, data_type: str) -> str:
    allowed = sources_for(rule, kind, data_type)
    for key in ("endpoint", "datastore" if data_type == "file" else "constant", "is_null"):
        if key in allowed:
            return key
    return next(iter(allowed))


def typed_value(raw: str, data_type: str, name: str):
    """Form text to a value of the declared type (constants, endpoint default values)."""
    try:
        if data_type == "string":
            return raw
        if data_type == "number":
            number = float(raw)
            if not math.isfinite(number):  # "nan", "inf": JSON cannot carry them
                raise ValueError(raw)
            return int(number) if number.is_integer() and "." not in raw and "e" not in raw.lower() \
                else number
        if data_type == "boolean":
            if raw.strip().lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.strip().lower() == "true"
        return jsontext.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"The value of '{name}' must be a {data_type}"
                         + (" (JSON text)" if data_type in ("json", "array") else ""),
                         {"name": name, "data_type": data_type}) from exc


def mapping_item(kind: str, name: str, data_type: str, rule: str, form) -> dict:
    """One InputSource / OutputDestination dict (contract §7.2) from the fields of the
    chosen source: `{kind}.{name}.source`, then `.endpoint` (+ `.default`, `.required`),
    `.constant`, `.environment_variable` or `.datastore`."""
    field = f"{kind}.{name}"
    choice = form.get(f"{field}.source") or ""
    if choice not in sources_for(rule, kind, data_type):
        raise BadRequest(f"'{name}' ({data_type}) cannot come from {choice or 'nowhere'!r} in an "
                         f"{rule} deployment", {"name": name})
    raw = form.get(f"{field}.{choice}") or ""
    item: dict = {f"pipeline_{kind}_name": name}
    if choice == "endpoint":
        item[f"endpoint_{kind}_name"] = raw.strip() or name
        if kind == "input":
            item["is_required"] = form.get(f"{field}.required") == "on"
            default = form.get(f"{field}.default") or ""
            if default.strip() and data_type != "file":
                item["default_value"] = typed_value(default, data_type, name)
    elif choice == "constant":
        if raw == "" and data_type != "string":
            raise BadRequest(f"Give the constant value of '{name}'", {"name": name})
        item["constant_value"] = typed_value(raw, data_type, name)
    elif choice == "environment_variable":
        if not raw.strip():
            raise BadRequest(f"Name the environment variable for '{name}'", {"name": name})
        item["environment_variable_name"] = raw.strip()
    elif choice == "datastore":
        if not raw.strip():
            raise BadRequest(f"Give the data store path for '{name}'", {"name": name})
        item["datastore_path"] = raw.strip()
    else:
        item["is_null"] = True
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
        body[key] = [mapping_item(kind, d["name"], d["data_type"], values["execution_rule"], form)
                     for d in declared]
    return body
