"""The deployment page's own actions and live data: readable mappings, next runs of a
periodic deployment, delete (confirmed by typing the name), edit of what the API lets
change (schedule, constant values, data store paths), and the live JSON the page polls
(status, health, pods, new log lines)."""

from __future__ import annotations

import datetime as dt

from flask import flash, jsonify, redirect, request, url_for

from ..domain import browse, deployments, schedules
from ..domain.access import Role
from ..errors import BadRequest, ShipyardError
from . import wizard
from .blueprint import bp
from .context import place
from .services import services
from .session import current_user

_BASE = "/projects/<project_name>/environments/<environment_name>/deployments/<deployment_name>"
LOG_LINES = 300


def readable(item: dict, kind: str) -> dict:
    """One mapping as a table row: where the value comes from (or goes), in words."""
    if "endpoint_input_name" in item or "endpoint_output_name" in item:
        detail = item.get(f"endpoint_{kind}_name")
        notes = []
        if kind == "input":
            notes.append("required" if item.get("is_required") else "optional")
            if item.get("default_value") is not None:
                notes.append(f"default {shown_value(item['default_value'])}")
        return {"source": f"Endpoint {kind}", "detail": detail, "notes": ", ".join(notes),
                "editable": None}
    if "constant_value" in item:
        return {"source": "Constant", "detail": shown_value(item["constant_value"]), "notes": "",
                "editable": "constant"}
    if "environment_variable_name" in item:
        return {"source": "Environment variable", "detail": item["environment_variable_name"],
                "notes": "", "editable": None}
    if "datastore_path" in item:
        return {"source": "Data store file", "detail": item["datastore_path"], "notes": "",
                "editable": "datastore"}
    return {"source": "None", "detail": "", "notes": "", "editable": None}


def shown_value(value) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def page_extras(found, body: dict) -> dict:
    """What the deployment template shows beside the API's view of the deployment."""
    extras: dict = {"log_lines": browse.deployment_log_lines(found, None, LOG_LINES),
                    "inputs": [dict(m, **readable(m, "input")) for m in body["inputs_mapping"]],
                    "outputs": [dict(m, **readable(m, "output"))
                                for m in body["outputs_mapping"]],
                    "next_runs": []}
    if body.get("schedule") and body.get("is_enabled"):
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        extras["next_runs"] = schedules.next_runs(body["schedule"], now, 5)
    return extras


def _back(project_name: str, environment_name: str, deployment_name: str, anchor: str = ""):
    return redirect(url_for("ui.deployment", project_name=project_name,
                            environment_name=environment_name,
                            deployment_name=deployment_name) + anchor)


@bp.route(_BASE + "/delete", methods=["POST"])
def deployment_delete(project_name: str, environment_name: str, deployment_name: str):
    here = place(project_name, environment_name, needed=Role.EDITOR)
    found = deployments.get_deployment(here.environment, deployment_name)
    if (request.form.get("confirm") or "").strip() != found.name:
        flash(f"Type the deployment name '{found.name}' to confirm its deletion.", "error")
        return _back(project_name, environment_name, deployment_name, "#delete-deployment")
    deployments.delete_deployment(services(), found)
    flash(f"Deployment '{found.name}' and its executions deleted.", "success")
    return redirect(url_for("ui.deployments", project_name=project_name,
                            environment_name=environment_name))


def edit_body(found, body: dict, form) -> dict:
    """The update the edit form asks for: only what changed, only what the API allows."""
    changes: dict = {}
    schedule = (form.get("schedule") or "").strip()
    if found.execution_rule == "periodic" and schedule and schedule != found.schedule:
        changes["schedule"] = schedule
    for kind, key in (("input", "inputs_mapping"), ("output", "outputs_mapping")):
        edited = []
        for item in body[key]:
            name = item[f"pipeline_{kind}_name"]
            what = readable(item, kind)["editable"]
            raw = form.get(f"{kind}.{name}.{what}") if what else None
            if raw is None:
                continue
            if what == "constant":
                value = wizard.typed_value(raw, item["data_type"], name)
                if value != item["constant_value"]:
                    edited.append({f"pipeline_{kind}_name": name, "constant_value": value})
            elif raw.strip() and raw.strip() != item["datastore_path"]:
                edited.append({f"pipeline_{kind}_name": name, "datastore_path": raw.strip()})
        if edited:
            changes[key] = edited
    return changes


@bp.route(_BASE + "/edit", methods=["POST"])
def deployment_edit(project_name: str, environment_name: str, deployment_name: str):
    here = place(project_name, environment_name, needed=Role.EDITOR)
    found = deployments.get_deployment(here.environment, deployment_name)
    body = deployments.deployment_to_dict(services(), found)
    try:
        changes = edit_body(found, body, request.form)
        if not changes:
            raise BadRequest("Nothing changed.")
        deployments.update_deployment(services(), found, current_user().id, changes)
    except ShipyardError as exc:
        flash(exc.message, "error")
    else:
        flash("Deployment updated: " + ", ".join(sorted(changes)) + ".", "success")
    return _back(project_name, environment_name, deployment_name, "#edit-deployment")


@bp.route(_BASE + "/live")
def deployment_live(project_name: str, environment_name: str, deployment_name: str):
    """Polled by the page: status, health, pods, and the log lines after `after`."""
    here = place(project_name, environment_name)
    found = deployments.get_deployment(here.environment, deployment_name)
    status, health, pods = deployments.current_status(services(), found)
    try:
        after = int(request.args.get("after") or 0)
    except ValueError as exc:
        raise BadRequest("'after' must be a log line id", {"field": "after"}) from exc
    return jsonify({"status": status, "health": health, "pods": pods,
                    "is_enabled": found.is_enabled,
                    "logs": browse.deployment_log_lines(found, after, LOG_LINES)})
