"""Steps: creation rules, container configuration resolution, deletion, views."""

from __future__ import annotations

import posixpath

import peewee

from .. import crypto
from ..errors import BadRequest, Conflict, NotFound
from ..orchestrators.base import BuildRequest
from ..store.db import utcnow
from ..store.models import BuildLog, Environment, Execution, Pipeline, Step
from .io_types import parse_declarations
from .names import check_resource_name
from .projects import DEFAULT_SETTINGS, LANGUAGE, SECRET_KEY, SETTING_KEYS
from .repositories import (
    check_deploy_key,
    check_packages,
    check_ref_name,
    check_relative_path,
    check_repository_url,
    included_paths,
)
from .times import iso

CONTAINER_KEYS = set(SETTING_KEYS) | {"local_folder"}
STATUSES = ("creation_pending", "ready", "creation_failed")
# Retries of a failed run: at most MAX_RETRIES, the first after at most MAX_RETRY_DELAY_S
# (the n-th waits retry_delay_s * 2**(n-1): 10 retries of an hour would take 42 days).
MAX_RETRIES = 10
MAX_RETRY_DELAY_S = 3600


def resolve_container_config(sent: object, project_settings: dict) -> dict:
    """A sent value wins, an empty string is an explicit null, an absent key falls back to
    the project's default (contract §3.2)."""
    if sent in (None, ""):
        sent = {}
    if not isinstance(sent, dict):
        raise BadRequest("'container_config' must be an object", {"field": "container_config"})
    unknown = set(sent) - CONTAINER_KEYS
    if unknown:
        raise BadRequest(
            f"Unknown container_config keys: {sorted(unknown)}", {"fields": sorted(unknown)}
        )
    resolved = {}
    for key in SETTING_KEYS:
        if key in sent:
            value = sent[key]
            resolved[key] = None if value == "" else value
        else:
            resolved[key] = project_settings.get(key)
    for key in ("included_folders", "system_dependencies"):
        value = resolved[key]
        if isinstance(value, dict):  # a form-sent list whose indices were not contiguous
            value = list(value.values())
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise BadRequest(f"'container_config.{key}' must be a list of strings")
        resolved[key] = value
    language = resolved["language"]
    if not isinstance(language, str) or not LANGUAGE.fullmatch(language):
        raise BadRequest(
            f"Invalid language {language!r}: use 'python:3.X-slim' or 'python-cuda:3.X-Y.Z'",
            {"field": "container_config.language"},
        )
    for key in ("requirements_path", "dockerfile_path", "repository_url", "repository_branch"):
        if resolved[key] is not None and not isinstance(resolved[key], str):
            raise BadRequest(f"'container_config.{key}' must be a string")
        if key.endswith("_path") and resolved[key] and ".." in resolved[key].split("/"):
            raise BadRequest(f"'container_config.{key}' must stay inside the step's folder")
    for item in resolved["included_folders"] or []:
        check_relative_path(item, "container_config.included_folders")
    check_packages(resolved["system_dependencies"] or [], "container_config.system_dependencies")
    if resolved["repository_url"] is not None:
        check_repository_url(resolved["repository_url"], "container_config.repository_url")
    if resolved["repository_branch"] is not None:
        check_ref_name(resolved["repository_branch"], "container_config.repository_branch")
    # A key sent with the step is checked here; the project's is stored sealed, checked when set.
    if SECRET_KEY in sent and resolved[SECRET_KEY] is not None:
        resolved[SECRET_KEY] = check_deploy_key(resolved[SECRET_KEY],
                                                "container_config.repository_deploy_key")
    return resolved


def python_version(language: str) -> str:
    return language.split(":", 1)[1].split("-", 1)[0]


def check_function_path(value: object) -> str:
    if not isinstance(value, str) or not value.endswith(".py"):
        raise BadRequest("'function_path' must be the path of a .py file", {"field": "function_path"})
    parts = value.lstrip("/").split("/")
    if ".." in parts or "\\" in value:
        raise BadRequest("'function_path' must stay inside the step's folder")
    return value.lstrip("/")


def create_step(svc, environment: Environment, user_id: str, data: dict,
                archive: bytes | None, from_form: bool, internal: bool = False,
                name_field: str = "step_name") -> Step:
    """Validate, store the code, and queue the build. Nothing is stored when a check fails."""
    name = check_resource_name(data.get(name_field), name_field)
    if Step.select().where(
        (Step.environment == environment) & (Step.name == name) & (Step.internal == internal)
    ).exists():
        raise Conflict(f"Step '{name}' already exists", {name_field: name})
    function_path = check_function_path(data.get("function_path"))
    function_name = data.get("function_name")
    if not isinstance(function_name, str) or not function_name.isidentifier():
        raise BadRequest("'function_name' must be a Python identifier", {"field": "function_name"})
    description = data.get("description") or None
    if description is not None and not isinstance(description, str):
        raise BadRequest("'description' must be a string", {"field": "description"})
    cache_results = data.get("cache_results")
    if cache_results is not None and not isinstance(cache_results, bool):
        raise BadRequest("'cache_results' must be true or false", {"field": "cache_results"})
    inputs = parse_declarations(data.get("inputs"), "inputs", from_form)
    outputs = parse_declarations(data.get("outputs"), "outputs", from_form)
    config = resolve_container_config(data.get("container_config"),
                                      {**DEFAULT_SETTINGS, **environment.project.settings})
    deploy_key = config.pop(SECRET_KEY, None)  # used to fetch, never stored with the step
    origin, fetched = "local", None
    if archive is None:
        origin = "git_repository"
        fetched = _fetch_from_git(svc, config, deploy_key, function_path)
        archive = fetched.archive
        if config["repository_branch"] is None:
            config["repository_branch"] = fetched.branch  # the default branch it resolved to
    from ..artifacts import files_hash, inspect_archive

    inspect_archive(archive, svc.settings.max_step_folder_bytes,
                    svc.settings.max_step_archive_members)
    try:
        step = Step.create(
            environment=environment, name=name, function_path=function_path,
            function_name=function_name, description=description, inputs=inputs,
            outputs=outputs, container_config=config, origin=origin,
            commit_id=fetched.commit_id if fetched else None,
            internal=internal, created_by=user_id,
            # Shapes and bounds checked by the request schema (api/schemas/steps.py).
            max_retries=data.get("max_retries") or 0,
            retry_delay_s=data.get("retry_delay_s") or 0,
            cache_results=bool(cache_results), code_hash=files_hash(archive),
        )
    except peewee.IntegrityError as exc:
        raise Conflict(f"Step '{name}' already exists", {name_field: name}) from exc
    if fetched is not None:
        record_build_log(step.id, f"Fetched {config['repository_url']} at "
                         f"{config['repository_branch']} (commit {fetched.commit_id}): "
                         f"{len(fetched.files)} files, {fetched.size} bytes")
    code_dir = svc.artifacts.store_step_archive(step.id, archive)
    svc.orchestrator.build_step(
        BuildRequest(
            step_id=step.id, code_dir=code_dir, language=config["language"],
            requirements_path=config["requirements_path"],
            system_dependencies=config["system_dependencies"] or [],
            dockerfile_path=config["dockerfile_path"], function_path=function_path,
        )
    )
    return step


def _fetch_from_git(svc, config: dict, deploy_key: str | None, function_path: str):
    """The step's files from its repository (origin git_repository, contract §6.2.1)."""
    url = config["repository_url"]
    if url is None:
        raise BadRequest(
            "The step has no code: give container_config.local_folder, or a repository_url "
            "(in container_config or in the project settings)",
            {"field": "container_config.repository_url"}, name="NoStepCode",
        )
    if not deploy_key:
        raise BadRequest(
            f"A deploy key is needed to read {url}: give container_config.repository_deploy_key "
            "or set the project's deploy key",
            {"field": "container_config.repository_deploy_key"},
        )
    if crypto.is_sealed(deploy_key):
        deploy_key = crypto.open_sealed(deploy_key)
    required = {function_path: ("function file", "FunctionFileNotFound")}
    if config["requirements_path"]:
        path = posixpath.normpath(config["requirements_path"].lstrip("/"))
        required.setdefault(path, ("requirements file (requirements_path)",
                                   "RequirementsFileNotFound"))
    from ..sources import fetch_git_code

    return fetch_git_code(svc.settings, url, config["repository_branch"], deploy_key,
                          included_paths(config["included_folders"]), required,
                          svc.settings.max_step_folder_bytes)


def rebuild_where_missing(is_built) -> int:
    """Ready steps whose environment `is_built(env_key)` denies go back to pending, so the
    next start rebuilds them (a restored data folder has no environments)."""
    missing = [step.id for step in Step.select(Step.id, Step.env_key).where(Step.status == "ready")
               if not step.env_key or not is_built(step.env_key)]
    if missing:
        Step.update(status="creation_pending").where(Step.id.in_(missing)).execute()
    return len(missing)


def rebuild_pending(svc) -> int:
    """After a restart, builds that were under way start again."""
    count = 0
    for step in Step.select().where(Step.status == "creation_pending"):
        config = step.container_config
        svc.orchestrator.build_step(
            BuildRequest(
                step_id=step.id, code_dir=svc.artifacts.step_code_dir(step.id),
                language=config["language"], requirements_path=config.get("requirements_path"),
                system_dependencies=config.get("system_dependencies") or [],
                dockerfile_path=config.get("dockerfile_path"), function_path=step.function_path,
            )
        )
        count += 1
    return count


def get_step(environment: Environment, name: str) -> Step:
    step = Step.get_or_none(
        (Step.environment == environment) & (Step.name == name) & (Step.internal == False)  # noqa: E712
    )
    if step is None:
        raise NotFound(f"Step '{name}' not found", {"step_name": name})
    return step


def list_steps(environment: Environment) -> list[dict]:
    query = Step.select().where((Step.environment == environment) & (Step.internal == False))  # noqa: E712
    return [
        {
            "step_name": s.name, "status": s.status, "created_at": iso(s.created_at),
            "updated_at": iso(s.updated_at), "origin": s.origin,
            "repository_url": s.container_config.get("repository_url"),
            "repository_branch": s.container_config.get("repository_branch"),
            "commit_id": s.commit_id,
        }
        for s in query.order_by(Step.created_at)
    ]


def step_parameters(step: Step) -> dict:
    return {
        "function_path": step.function_path,
        "function_name": step.function_name,
        "description": step.description,
        "inputs": step.inputs,
        "outputs": step.outputs,
        "container_config": step.container_config,
        "max_retries": step.max_retries,
        "retry_delay_s": step.retry_delay_s,
        "cache_results": step.cache_results,
    }


def creation_info(step: Step) -> dict:
    return {
        "created_at": iso(step.created_at),
        "updated_at": iso(step.updated_at),
        "created_by": step.created_by,
        "updated_by": step.created_by,
        "commit_id": step.commit_id,
        "status": step.status,
        "origin": step.origin,
        "error": step.error,
    }


def step_to_dict(step: Step) -> dict:
    return {
        "parameters": {"step_name": step.name, **step_parameters(step)},
        "creation_info": creation_info(step),
    }


def delete_step(svc, step: Step, force: bool) -> dict:
    from ..store.models import PipelineStep
    from .pipelines import delete_pipeline_cascade

    pipelines = list(Pipeline.select().where(
        (Pipeline.step == step)
        | Pipeline.id.in_(PipelineStep.select(PipelineStep.pipeline).where(
            PipelineStep.step == step))))
    if pipelines and not force:
        raise Conflict(
            f"Step '{step.name}' is used by pipelines; delete them first or force the deletion",
            {"pipelines": [p.name for p in pipelines]},
        )
    for pipeline in pipelines:
        delete_pipeline_cascade(svc, pipeline)
    BuildLog.delete().where(BuildLog.step == step).execute()
    Execution.update(step_name=None).where(
        (Execution.environment == step.environment_id) & (Execution.step_name == step.name)
    ).execute()
    step.delete_instance()
    svc.artifacts.delete_step(step.id)
    return {"step_name": step.name}


def build_logs(step: Step, start, end, limit) -> list[dict]:
    from .logs import window

    query = window(BuildLog.select().where(BuildLog.step == step), BuildLog, start, end, limit)
    return [{"timestamp": iso(r.timestamp), "message": r.message} for r in query]


def record_build_log(step_id: int, message: str) -> None:
    BuildLog.create(step=step_id, message=message[:10000])


def record_build_done(step_id: int, env_key: str | None, error: str | None) -> None:
    Step.update(
        status="ready" if error is None else "creation_failed",
        env_key=env_key, error=error, updated_at=utcnow(),
    ).where(Step.id == step_id).execute()
