"""Pipelines, the Deploy wizard, and deployment pages (endpoint URL, token, samples)."""

from __future__ import annotations

import json

from flask import flash, jsonify, redirect, render_template, request, url_for

from ..domain import browse, deployments, envvars, pipelines
from ..domain.access import Role
from ..errors import ShipyardError
from . import views_deployments, wizard
from .blueprint import bp
from .context import place
from .services import services
from .session import current_user

_SAMPLE_VALUES = {"string": "text", "number": 1, "boolean": True, "json": {"key": "value"},
                  "array": [1, 2, 3]}


@bp.route("/projects/<project_name>/environments/<environment_name>/pipelines",
          endpoint="pipelines")
def pipelines_page(project_name: str, environment_name: str):
    here = place(project_name, environment_name)
    return render_template("pipelines.html", pipelines=pipelines.list_pipelines(here.environment),
                           **here.template_args("pipelines"))


@bp.route("/projects/<project_name>/environments/<environment_name>/pipelines/<pipeline_name>")
def pipeline(project_name: str, environment_name: str, pipeline_name: str):
    here = place(project_name, environment_name)
    found = pipelines.get_pipeline(here.environment, pipeline_name)
    shape = pipelines.pipeline_to_dict(found)
    graph = None
    if pipelines.is_multi_step(found):
        from . import graph_svg

        graph = graph_svg.render(shape["steps"], shape["connections"], shape["open_inputs"],
                                 shape["open_outputs"])
    return render_template(
        "pipeline.html", pipeline=shape, step=found.step, graph=graph,
        deployments=deployments.deployments_of_pipeline(found),
        executions=browse.list_executions(here.environment, pipeline_name=pipeline_name, limit=20),
        **here.template_args("pipelines"),
    )


@bp.route("/projects/<project_name>/environments/<environment_name>/pipelines/<pipeline_name>/deploy",
          methods=["GET", "POST"])
def deploy(project_name: str, environment_name: str, pipeline_name: str):
    """Step 1 (GET, POST back with an error, or Back from step 2), then the mapping page:
    editors."""
    here = place(project_name, environment_name, needed=Role.EDITOR)
    found = pipelines.get_pipeline(here.environment, pipeline_name)
    args = here.template_args("pipelines")
    if request.method == "GET":
        values = {"name": f"{pipeline_name}-endpoint"[:63], "execution_rule": "endpoint",
                  "mode": "elastic", "schedule": ""}
        return _step1_page(pipeline_name, values, None, args)
    if request.form.get("back"):
        return _step1_page(pipeline_name, request.form, None, args)
    try:
        values = wizard.step1(request.form)
    except ShipyardError as exc:
        return _step1_page(pipeline_name, request.form, exc.message, args, exc.status_code)
    return _mapping_page(here, pipeline_name, found, values, request.form, None, args)


def _step1_page(pipeline_name: str, values, error: str | None, args: dict, status: int = 200):
    preview = wizard.schedule_preview(values.get("schedule") or "") \
        if values.get("schedule") else None
    return render_template("deploy_step1.html", pipeline_name=pipeline_name, values=values,
                           preview=preview, error=error, **args), status


def _mapping_page(here, pipeline_name, found, values, form, error, args, status: int = 200):
    inputs, outputs = wizard.open_io(found)
    rule = values["execution_rule"]
    rows = {"input": [], "output": []}
    for kind, declared in (("input", inputs), ("output", outputs)):
        for decl in declared:
            field = f"{kind}.{decl['name']}"
            choices = wizard.sources_for(rule, kind, decl["data_type"])
            choice = form.get(f"{field}.source")
            if choice not in choices:
                choice = wizard.default_choice(rule, kind, decl["data_type"])
            rows[kind].append({
                "decl": decl, "field": field, "choices": choices, "choice": choice,
                "values": {key: form.get(f"{field}.{key}", "") for key in
                           ("endpoint", "default", "constant", "environment_variable",
                            "datastore")},
                "required": form.get(f"{field}.required",
                                     "on" if decl.get("is_required") else "")})
    return render_template(
        "deploy_mapping.html", pipeline_name=pipeline_name, values=values, rows=rows,
        variables=[v["name"] for v in envvars.list_variables(here.environment, with_values=False)],
        error=error, **args,
    ), status


@bp.route("/schedule-preview")
def schedule_preview():
    """The Deploy wizard's live reading of a cron schedule: meaning and next runs (JSON)."""
    return jsonify(wizard.schedule_preview(request.args.get("schedule") or ""))


@bp.route("/projects/<project_name>/environments/<environment_name>/pipelines/<pipeline_name>/deploy/create",
          methods=["POST"])
def deploy_create(project_name: str, environment_name: str, pipeline_name: str):
    here = place(project_name, environment_name)
    found = pipelines.get_pipeline(here.environment, pipeline_name)
    args = here.template_args("pipelines")
    try:
        values = wizard.step1(request.form)
    except ShipyardError as exc:
        return _step1_page(pipeline_name, request.form, exc.message, args, exc.status_code)
    try:
        inputs, outputs = wizard.open_io(found)
        body = wizard.deployment_body(pipeline_name, values, inputs, outputs, request.form)
        created = deployments.create_deployment(services(), here.environment, current_user().id,
                                                values["execution_rule"], body)
    except ShipyardError as exc:
        return _mapping_page(here, pipeline_name, found, values, request.form, exc.message, args,
                             exc.status_code)
    flash(f"Deployment '{created.name}' created.", "success")
    return redirect(url_for("ui.deployment", project_name=project_name,
                            environment_name=environment_name, deployment_name=created.name))


@bp.route("/projects/<project_name>/environments/<environment_name>/deployments",
          endpoint="deployments")
def deployments_page(project_name: str, environment_name: str):
    here = place(project_name, environment_name)
    return render_template("deployments.html",
                           deployments=deployments.list_deployments(here.environment),
                           **here.template_args("deployments"))


@bp.route("/projects/<project_name>/environments/<environment_name>/deployments/<deployment_name>")
def deployment(project_name: str, environment_name: str, deployment_name: str):
    here = place(project_name, environment_name)
    found = deployments.get_deployment(here.environment, deployment_name)
    body = deployments.deployment_to_dict(services(), found)
    if not here.may_see_secrets:
        body["endpoint_token"] = "(shown to editors and admins)"
    samples = None
    endpoint_url = None
    if body["execution_rule"] == "endpoint":
        endpoint_url = f"{here.env_url}/endpoints/{body['endpoint_url_path']}"
        samples = _samples(endpoint_url, body)
    return render_template(
        "deployment.html", deployment=body, endpoint_url=endpoint_url, samples=samples,
        executions=browse.list_executions(here.environment, deployment_name=deployment_name,
                                          limit=20),
        **views_deployments.page_extras(found, body), **here.template_args("deployments"),
    )


def _samples(url: str, body: dict) -> dict:
    """Copy-paste calls of the endpoint: curl, Python (requests), JavaScript (fetch). The
    trigger answers 303 to the results URL, so clients that follow redirects get the
    outputs in one call (curl needs -L and no -X POST, or it would POST the redirect)."""
    token = body["endpoint_token"]
    inputs = {m["endpoint_input_name"]: _SAMPLE_VALUES.get(m["data_type"], "value")
              for m in body["inputs_mapping"]
              if "endpoint_input_name" in m and m["data_type"] != "file"}
    files = [m["endpoint_input_name"] for m in body["inputs_mapping"]
             if "endpoint_input_name" in m and m["data_type"] == "file"]
    data = json.dumps(inputs)
    auth = f"Authorization: EndpointToken {token}"
    if files:
        curl = f'curl -L "{url}" \\\n  -H "{auth}" \\\n  -F "{files[0]}=@path/to/file"'
        py_call = f'files={{"{files[0]}": open("path/to/file", "rb")}}'
        js = (f'const form = new FormData();\nform.append("{files[0]}", fileInput.files[0]);\n'
              f'const response = await fetch("{url}", {{\n  method: "POST",\n'
              f'  headers: {{"Authorization": "EndpointToken {token}"}},\n  body: form,\n}});\n')
    else:
        curl = (f'curl -L "{url}" \\\n  -H "{auth}" \\\n'
                f'  -H "Content-Type: application/json" \\\n  -d \'{data}\'')
        py_call = f"json={data}"
        js = (f'const response = await fetch("{url}", {{\n  method: "POST",\n'
              f'  headers: {{"Authorization": "EndpointToken {token}", '
              f'"Content-Type": "application/json"}},\n'
              f'  body: JSON.stringify({data}),\n}});\n')
    python = (f'import requests\n\n'
              f'response = requests.post(\n    "{url}",\n'
              f'    headers={{"Authorization": "EndpointToken {token}"}},\n    {py_call},\n)\n'
              f'print(response.json())  # {{"outputs": {{...}}}} (the 303 is followed)')
    javascript = (js + 'console.log(await response.json());  // {"outputs": {...}}')
    return {"curl": curl, "python": python, "javascript": javascript}


@bp.route("/projects/<project_name>/environments/<environment_name>/deployments/<deployment_name>/token",
          methods=["POST"])
def deployment_token(project_name: str, environment_name: str, deployment_name: str):
    here = place(project_name, environment_name)
    found = deployments.get_deployment(here.environment, deployment_name)
    deployments.new_endpoint_token(services(), found)
    flash("New endpoint token generated: the previous one no longer works.", "success")
    return redirect(url_for("ui.deployment", project_name=project_name,
                            environment_name=environment_name, deployment_name=deployment_name))


@bp.route("/projects/<project_name>/environments/<environment_name>/deployments/<deployment_name>/enabled",
          methods=["POST"])
def deployment_enabled(project_name: str, environment_name: str, deployment_name: str):
    here = place(project_name, environment_name)
    found = deployments.get_deployment(here.environment, deployment_name)
    enable = request.form.get("enable") == "1"
    deployments.update_deployment(services(), found, current_user().id, {"is_enabled": enable})
    flash(f"Deployment {'enabled' if enable else 'disabled'}.", "success")
    return redirect(url_for("ui.deployment", project_name=project_name,
                            environment_name=environment_name, deployment_name=deployment_name))
