"""Homepage (projects), project settings, environments and their variables."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, request, url_for

from ..domain import access, browse, envvars, projects, resources
from ..domain.access import Role
from ..domain.steps import LANGUAGE
from ..errors import BadRequest, ShipyardError
from .blueprint import bp
from .context import caller, place
from .services import services

_TEXT_SETTINGS = ("language", "repository_url", "repository_branch", "requirements_path",
                  "dockerfile_path")
_LIST_SETTINGS = ("included_folders", "system_dependencies")


def _flash_outcome(action: Callable[[], object], success: str) -> None:
    """Run a form's action: its error, or the success message, for the next page."""
    try:
        action()
    except ShipyardError as exc:
        flash(exc.message, "error")
    else:
        flash(success, "success")


def _languages(current: str | None = None) -> list[str]:
    found = services().orchestrator.available_languages() or [projects.DEFAULT_PYTHON]
    if current and current not in found:
        found = [current, *found]
    return found


def _settings_from_form(form, keep_deploy_key: bool) -> dict:
    """Text fields (empty = none), lists one item per line; the deploy key is write-only."""
    values: dict = {}
    for key in _TEXT_SETTINGS:
        raw = (form.get(key) or "").strip()
        values[key] = raw or None
    if not values["language"] or not LANGUAGE.fullmatch(values["language"]):
        raise BadRequest("Choose a Python version (python:3.X-slim)", {"field": "language"})
    for key in _LIST_SETTINGS:
        values[key] = [line.strip() for line in (form.get(key) or "").splitlines() if line.strip()]
    if not values["included_folders"]:
        raise BadRequest("Give at least one folder to include ('/' for everything)",
                         {"field": "included_folders"})
    key = (form.get("repository_deploy_key") or "").strip()
    if key or not keep_deploy_key:
        values["repository_deploy_key"] = key or None
    return values


@bp.route("/")
def home():
    who = caller()
    return render_template("home.html", projects=browse.list_projects(access.visible_projects(who)),
                           can_create=who.is_admin, nav="home")


@bp.route("/projects/new", methods=["GET", "POST"])
def new_project():
    access.require_platform_admin(caller(), "Creating projects")
    form = request.form
    if request.method == "POST":
        try:
            settings = _settings_from_form(form, keep_deploy_key=False)
            project = projects.create_project((form.get("name") or "").strip(), settings)
        except ShipyardError as exc:
            return render_template("project_form.html", mode="new", form=form, error=exc.message,
                                   languages=_languages(), nav="home"), exc.status_code
        flash(f"Project '{project.name}' created. Create its first environment.", "success")
        return redirect(url_for("ui.environments", project_name=project.name))
    defaults = dict(projects.DEFAULT_SETTINGS)
    return render_template("project_form.html", mode="new", form=_as_form(defaults),
                           error=None, languages=_languages(), nav="home")


def _as_form(settings: dict) -> dict:
    form = {k: settings.get(k) or "" for k in _TEXT_SETTINGS}
    for key in _LIST_SETTINGS:
        form[key] = "\n".join(settings.get(key) or [])
    return form


@bp.route("/projects/<project_name>/")
def project_home(project_name: str):
    place(project_name)  # a non-member gets the 404 page, not a redirect
    return redirect(url_for("ui.environments", project_name=project_name))


@bp.route("/projects/<project_name>/settings", methods=["GET", "POST"])
def project_settings(project_name: str):
    here = place(project_name, needed=Role.ADMIN if request.method == "POST" else None)
    project = here.project
    error = None
    form = _as_form(project.settings)
    if request.method == "POST":
        form = request.form
        try:
            projects.update_project_settings(project, _settings_from_form(form, keep_deploy_key=True))
        except ShipyardError as exc:
            error = exc.message
        else:
            flash("Settings saved. They apply to steps created from now on.", "success")
            return redirect(url_for("ui.project_settings", project_name=project_name))
    return render_template(
        "project_form.html", mode="edit", form=form, error=error,
        languages=_languages(project.settings.get("language")),
        has_deploy_key=bool(project.settings.get("repository_deploy_key")),
        **here.template_args("settings"),
    ), (400 if error else 200)


@bp.route("/projects/<project_name>/environments", methods=["GET", "POST"])
def environments(project_name: str):
    here = place(project_name, needed=Role.ADMIN if request.method == "POST" else None)
    if request.method == "POST":
        name = (request.form.get("name") or "").strip()
        _flash_outcome(lambda: projects.create_environment(here.project, name),
                       f"Environment '{name}' created.")
        return redirect(url_for("ui.environments", project_name=project_name))
    rows = [{"environment": env, "counts": browse.environment_counts(env),
             "url": services().environment_url(project_name, env.name)}
            for env in here.environments]
    return render_template("environments.html", rows=rows, workers=resources.workers(),
                           **here.template_args("environments"))


@bp.route("/projects/<project_name>/environments/<environment_name>/")
def environment(project_name: str, environment_name: str):
    here = place(project_name, environment_name)
    return render_template(
        "environment.html",
        variables=envvars.list_variables(here.environment, with_values=here.may_see_secrets),
        counts=browse.environment_counts(here.environment), workers=_worker_rows(),
        **here.template_args("environments"),
    )


def _worker_rows() -> list[dict]:
    """Each worker with its latest reading (the last 10 minutes)."""
    import time

    now = int(time.time() * 1000)
    result = resources.query(now - 600_000, now)
    rows = []
    for entry in result["metrics"]["cpu_usage"]:
        worker = entry["metric"]["worker"]
        if worker == resources.CUMULATED:
            continue
        ram = next((e["values"] for e in result["metrics"]["ram_usage"]
                    if e["metric"]["worker"] == worker), [])
        rows.append({"name": worker, "cpu": entry["values"][-1][1] if entry["values"] else None,
                     "ram": ram[-1][1] if ram else None})
    return rows


@bp.route("/projects/<project_name>/environments/<environment_name>/variables",
          methods=["POST"])
def set_variable(project_name: str, environment_name: str):
    here = place(project_name, environment_name)
    name = (request.form.get("name") or "").strip()
    _flash_outcome(lambda: envvars.upsert(services(), here.environment,
                                          {name: request.form.get("value") or ""}),
                   f"Variable '{name}' saved.")
    return redirect(url_for("ui.environment", project_name=project_name,
                            environment_name=environment_name) + "#variables")


@bp.route("/projects/<project_name>/environments/<environment_name>/variables/<name>/delete",
          methods=["POST"])
def delete_variable(project_name: str, environment_name: str, name: str):
    here = place(project_name, environment_name)
    _flash_outcome(lambda: envvars.delete(services(), here.environment, name),
                   f"Variable '{name}' deleted.")
    return redirect(url_for("ui.environment", project_name=project_name,
                            environment_name=environment_name) + "#variables")


_PAGES = {"pipelines": "ui.pipelines", "deployments": "ui.deployments", "tracking": "ui.tracking",
          "compare": "ui.compare", "pipeline_metrics": "ui.pipeline_metrics",
          "resources": "ui.resource_metrics"}


@bp.route("/projects/<project_name>/switch")
def switch_environment(project_name: str):
    """The environment picker: the same kind of page, in the chosen environment."""
    here = place(project_name, request.args.get("environment") or "")
    endpoint = _PAGES.get(request.args.get("page") or "", "ui.environment")
    return redirect(url_for(endpoint, project_name=project_name,
                            environment_name=here.environment.name))
