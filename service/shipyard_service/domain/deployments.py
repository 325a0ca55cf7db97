"""Deployments: a pipeline behind an endpoint or a schedule, elastic or low-latency."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from typing import Any

import peewee

from .. import crypto
from ..errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from ..orchestrators.base import DeploymentSpec
from ..store import prepared
from ..store.db import utcnow
from ..store.models import Deployment, DeploymentLog, Environment, Execution, Pipeline, ScheduleTick
from . import executions, lifecycle, schedules
from .auth import hash_token, new_secret
from .mappings import MAPPING_TYPE, parse_input_mappings, parse_output_mappings
from .names import check_resource_name
from .pipelines import get_pipeline, is_multi_step, not_ready, pipeline_io, steps_of
from .times import iso

MODES = ("elastic", "low_latency")
RULES = ("endpoint", "periodic")
STATUSES = ("creation_pending", "up", "creation_failed", "down_retrying", "standby", "disabled")
RAM = re.compile(r"^\d+(\.\d+)?(KiB|MiB|GiB)$")
MAX_REPLICAS = 8
_FIELDS = {"pipeline_name", "name", "mode", "description", "enable_parallel_executions",
           "max_parallel_executions_per_pod", "ram_request", "gpu_request", "schedule",
           "endpoint_url_path", "inputs_mapping", "outputs_mapping", "replicas",
           "execution_timeout_s", "endpoint_token", "use_cache"}


def _bool(body: dict, key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"'{key}' must be a boolean", {"field": key})
    return value


def _int(body: dict, key: str, default: int | None, low: int, high: int) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"'{key}' must be an integer from {low} to {high}", {"field": key})
    return value


def _completed(decl: dict, maps: dict, rule: str, kind: str) -> dict:
    """One declared input/output with its mapping: given, or the endpoint one by default."""
    mapping = maps.get(decl["name"])
    if mapping is None:
        if rule == "periodic":
            raise BadRequest(
                f"A periodic deployment must map every {kind}: '{decl['name']}' is not mapped",
                {f"pipeline_{kind}_name": decl["name"]})
        value = {f"endpoint_{kind}_name": decl["name"]}
        if kind == "input":
            value.update(is_required=decl.get("is_required", False),
                         default_value=decl.get("default_value"))
        mapping = {"mapping_type": "endpoint", "mapping_value": value}
    return {f"pipeline_{kind}_name": decl["name"], **mapping}


def _complete_mappings(declared_in: list[dict], declared_out: list[dict], rule: str,
                       in_maps: dict, out_maps: dict) -> tuple[list, list]:
    """Auto-map what the endpoint rule leaves unmapped; periodic needs everything mapped."""
    inputs = [_completed(decl, in_maps, rule, "input") for decl in declared_in]
    outputs = [_completed(decl, out_maps, rule, "output") for decl in declared_out]
    types = {d["name"]: d["data_type"] for d in declared_in + declared_out}
    for kind, items, key in (("input", inputs, "pipeline_input_name"),
                             ("output", outputs, "pipeline_output_name")):
        endpoint = [i for i in items if i["mapping_type"] == "endpoint"]
        names = [i["mapping_value"][f"endpoint_{kind}_name"] for i in endpoint]
        if len(names) != len(set(names)):
            raise BadRequest(f"Two pipeline {kind}s use the same endpoint {kind} name")
        files = [i for i in endpoint if types[i[key]] == "file"]
        if len(files) > 1:
            raise BadRequest(f"At most one file {kind} can be mapped to the endpoint",
                             {"file_" + kind + "s": [i[key] for i in files]})
    return inputs, outputs


def create_deployment(svc, environment: Environment, user_id: str, rule: str,
                      body: dict) -> Deployment:
    if rule not in RULES:
        raise BadRequest(f"Unknown execution rule {rule!r}")
    unknown = set(body) - _FIELDS
    if unknown:
        raise BadRequest(f"Unknown fields: {sorted(unknown)}", {"fields": sorted(unknown)})
    name = check_resource_name(body.get("name"), "name")
    pipeline_name = body.get("pipeline_name")
    if not isinstance(pipeline_name, str):
        raise BadRequest("'pipeline_name' is required", {"field": "pipeline_name"})
    pipeline = get_pipeline(environment, pipeline_name)
    waiting = not_ready(pipeline)
    if waiting is not None:
        raise BadRequest(f"Pipeline '{pipeline_name}' is not ready "
                         f"(step '{waiting.name}' status {waiting.status})")
    mode = body.get("mode", "elastic")
    if mode not in MODES:
        raise BadRequest("'mode' must be 'elastic' or 'low_latency'", {"field": "mode"})
    if mode == "low_latency" and any(s.container_config.get("dockerfile_path")
                                     for s in steps_of(pipeline)):
        raise BadRequest("Low-latency mode is not available for steps built from a dockerfile")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise BadRequest("'description' must be a string", {"field": "description"})
    parallel = _bool(body, "enable_parallel_executions", False)
    use_cache = _bool(body, "use_cache", True) if body.get("use_cache") is not None else True
    max_parallel = _int(body, "max_parallel_executions_per_pod", 6, 1, 256)
    replicas = _int(body, "replicas", 1, 1, MAX_REPLICAS)
    ram = body.get("ram_request")
    if ram is not None and (not isinstance(ram, str) or not RAM.fullmatch(ram)):
        raise BadRequest("'ram_request' looks like '512MiB' or '1GiB'", {"field": "ram_request"})
    gpu = _int(body, "gpu_request", None, 0, 16)
    if mode == "elastic" and (ram is not None or gpu):
        raise BadRequest("'ram_request' and 'gpu_request' are for low_latency deployments")
    schedule = None
    url_path = None
    token = None
    if rule == "periodic":
        schedule = schedules.check_schedule(body.get("schedule"))
        if body.get("endpoint_url_path") is not None:
            raise BadRequest("'endpoint_url_path' is for endpoint deployments")
    else:
        if body.get("schedule") is not None:
            raise BadRequest("'schedule' is for periodic deployments", {"field": "schedule"})
        url_path = check_resource_name(body.get("endpoint_url_path") or name, "endpoint_url_path")
        if url_path == "v1":
            raise BadRequest("'v1' is reserved and cannot be an endpoint URL path")
        token = body.get("endpoint_token") or secrets.token_urlsafe(32)
        if not isinstance(token, str) or len(token) < 16:
            raise BadRequest("'endpoint_token' must be a string of at least 16 characters")
    declared_in, declared_out = pipeline_io(pipeline)
    in_maps = parse_input_mappings(body.get("inputs_mapping"), declared_in, rule)
    out_maps = parse_output_mappings(body.get("outputs_mapping"), declared_out, rule)
    inputs, outputs = _complete_mappings(declared_in, declared_out, rule, in_maps, out_maps)
    if Deployment.select().where((Deployment.environment == environment)
                                 & (Deployment.name == name)).exists():
        raise Conflict(f"Deployment '{name}' already exists", {"name": name})
    if url_path and Deployment.select().where(
            (Deployment.environment == environment)
            & (Deployment.endpoint_url_path == url_path)).exists():
        raise Conflict(f"Endpoint path '{url_path}' is already used", {"endpoint_url_path": url_path})
    try:
        deployment = Deployment.create(
            environment=environment, name=name, pipeline=pipeline, execution_rule=rule,
            mode=mode, description=description, endpoint_url_path=url_path,
            endpoint_token=crypto.seal(token) if token else None, schedule=schedule,
            inputs_mapping=inputs,
            outputs_mapping=outputs, enable_parallel_executions=parallel, use_cache=use_cache,
            max_parallel_executions_per_pod=max_parallel, replicas=replicas, ram_request=ram,
            gpu_request=gpu, status="up" if mode == "elastic" else "creation_pending",
            created_by=user_id, updated_by=user_id, last_tick_at=utcnow(),
        )
    except peewee.IntegrityError as exc:
        raise Conflict(f"Deployment '{name}' already exists", {"name": name}) from exc
    apply(svc, deployment)
    return deployment


def _runner_token(deployment: Deployment) -> str:
    """The deployment's runner token: made once, kept sealed, the same for every process."""
    from .. import crypto

    if deployment.runner_token_sealed:
        return crypto.open_sealed(deployment.runner_token_sealed)
    token = new_secret("dep")
    # Only the first writer wins, so concurrent API processes end up with one token.
    Deployment.update(runner_token_hash=hash_token(token),
                      runner_token_sealed=crypto.seal(token)).where(
        (Deployment.id == deployment.id) & Deployment.runner_token_sealed.is_null()).execute()
    stored = Deployment.get_by_id(deployment.id).runner_token_sealed
    return crypto.open_sealed(stored)


def specs_for(svc, deployment: Deployment) -> list[DeploymentSpec]:
    """One spec; a multi-step pipeline in low-latency mode has one per step (each step its
    own resident runners)."""
    pipeline = deployment.pipeline
    if deployment.mode == "low_latency" and is_multi_step(pipeline):
        return [spec_for(svc, deployment, step, step.name) for step in steps_of(pipeline)]
    return [spec_for(svc, deployment)]


def spec_for(svc, deployment: Deployment, step=None,
             step_name: str | None = None) -> DeploymentSpec:
    token = _runner_token(deployment)
    env = deployment.environment
    step = step or deployment.pipeline.step
    return DeploymentSpec(
        deployment_id=deployment.id, name=deployment.name, project=env.project.name,
        environment=env.name, execution_rule=deployment.execution_rule, mode=deployment.mode,
        schedule=deployment.schedule, is_enabled=deployment.is_enabled,
        generation=deployment.generation, env_key=step.env_key or "",
        code_dir=svc.artifacts.step_code_dir(step.id), function_path=step.function_path,
        function_name=step.function_name,
        max_parallel=(deployment.max_parallel_executions_per_pod
                      if deployment.enable_parallel_executions else 1),
        replicas=deployment.replicas,
        environment_url=svc.environment_url(env.project.name, env.name),
        control_url=svc.settings.public_url, runner_token=token,
        ram_request=deployment.ram_request, gpu_request=deployment.gpu_request,
        step_name=step_name,
    )


def apply(svc, deployment: Deployment) -> None:
    """Make the backend match the stored deployment."""
    svc.endpoints.forget_deployments()
    if deployment.execution_rule == "periodic" or deployment.mode == "low_latency":
        for spec in specs_for(svc, deployment):
            svc.orchestrator.ensure_deployment(spec)
    svc.events.notify(f"deployment:{deployment.id}")


def restore_all(svc) -> int:
    """At start-up: schedules and resident runners come back; missed ticks are caught up."""
    count = 0
    now = utcnow()
    for deployment in Deployment.select():
        apply(svc, deployment)
        count += 1
        if deployment.execution_rule == "periodic" and deployment.is_enabled:
            tick = schedules.missed_tick(deployment.schedule, deployment.last_tick_at or
                                         deployment.created_at, now)
            if tick is not None:
                schedule_fired(svc, deployment.id, tick)
    return count


def get_deployment(environment: Environment, name: str) -> Deployment:
    deployment = (Deployment.select(Deployment, Pipeline).join(Pipeline)
                  .where((Deployment.environment == environment) & (Deployment.name == name))
                  .first())
    if deployment is None:
        raise NotFound(f"Deployment '{name}' not found", {"deployment_name": name})
    return deployment


def current_status(svc, deployment: Deployment) -> tuple[str, str, list[dict]]:
    """(status, health, pods): what is true now, asked of the backend for resident runners."""
    if not deployment.is_enabled:
        return "disabled", "Disabled", []
    if deployment.mode != "low_latency":
        return deployment.status, "Ready" if deployment.status == "up" else "Unhealthy", []
    state = svc.orchestrator.deployment_state(deployment.id)
    if state.status != deployment.status:
        Deployment.update(status=state.status, status_detail=state.detail).where(
            Deployment.id == deployment.id).execute()
    return state.status, state.health, [{"pod_id": p.pod_id, "status": p.status}
                                        for p in state.pods]


def _mapping_view(items: list[dict], types: dict, kind: str) -> list[dict]:
    view = []
    for item in items:
        name = item[f"pipeline_{kind}_name"]
        decl = types[name]
        entry = {f"pipeline_{kind}_name": name, "data_type": decl["data_type"],
                 "description": decl.get("description")}
        entry.update(item["mapping_value"])
        view.append(entry)
    return view


def deployment_to_dict(svc, deployment: Deployment, with_token: bool = True) -> dict:
    """`with_token=False` for an execution's token: step code reads no endpoint token."""
    declared_in, declared_out = pipeline_io(deployment.pipeline)
    types = {d["name"]: d for d in declared_in + declared_out}
    status, health, pods = current_status(svc, deployment)
    body = {
        "name": deployment.name, "mode": deployment.mode,
        "pipeline": {"name": deployment.pipeline.name},
        "execution_rule": deployment.execution_rule,
        "inputs_mapping": _mapping_view(deployment.inputs_mapping, types, "input"),
        "outputs_mapping": _mapping_view(deployment.outputs_mapping, types, "output"),
        "status": status, "is_enabled": deployment.is_enabled,
        "use_cache": deployment.use_cache,
        "description": deployment.description,
        "created_at": iso(deployment.created_at), "created_by": deployment.created_by,
        "updated_at": iso(deployment.updated_at), "updated_by": deployment.updated_by,
    }
    if deployment.execution_rule == "endpoint":
        body.update(endpoint_url_path=deployment.endpoint_url_path)
        if with_token:
            body.update(endpoint_token=endpoint_token(deployment))
    else:
        body.update(schedule=deployment.schedule,
                    human_readable_schedule=schedules.describe(deployment.schedule))
    if deployment.mode == "low_latency":
        body.update(enable_parallel_executions=deployment.enable_parallel_executions,
                    max_parallel_executions_per_pod=deployment.max_parallel_executions_per_pod,
                    replicas=deployment.replicas, pods=pods, deployment_health=health,
                    ram_request=deployment.ram_request, gpu_request=deployment.gpu_request)
        if deployment.status_detail and status in ("creation_failed", "down_retrying"):
            body["status_detail"] = deployment.status_detail
    return body


def list_deployments(environment: Environment) -> list[dict]:
    query = (Deployment.select(Deployment, Pipeline).join(Pipeline)
             .where(Deployment.environment == environment).order_by(Deployment.created_at))
    return [{"name": d.name, "pipeline_name": d.pipeline.name, "execution_rule": d.execution_rule,
             "mode": d.mode, "is_enabled": d.is_enabled, "status": d.status,
             "created_at": iso(d.created_at)} for d in query]


def deployments_of_pipeline(pipeline: Pipeline) -> list[dict]:
    return [{"name": d.name, "execution_rule": d.execution_rule}
            for d in Deployment.select().where(Deployment.pipeline == pipeline)]


def update_deployment(svc, deployment: Deployment, user_id: str, body: dict) -> Deployment:
    allowed = {"is_enabled", "schedule", "inputs_mapping", "outputs_mapping"}
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"Only {sorted(allowed)} can be updated", {"fields": sorted(unknown)})
    changes: dict[str, Any] = {"updated_at": utcnow(), "updated_by": user_id}
    if not body:  # `update_deployment(name)`: reload the resident runners
        changes["generation"] = deployment.generation + 1
        if deployment.mode == "low_latency":
            changes["status"] = "creation_pending"
    if "is_enabled" in body:
        changes["is_enabled"] = _bool(body, "is_enabled", True)
    if "schedule" in body:
        if deployment.execution_rule != "periodic":
            raise BadRequest("Only periodic deployments have a schedule")
        changes["schedule"] = schedules.check_schedule(body["schedule"])
    for key, kind in (("inputs_mapping", "input"), ("outputs_mapping", "output")):
        if key in body:
            changes[key] = _updated_mappings(getattr(deployment, key), body[key], kind)
    Deployment.update(changes).where(Deployment.id == deployment.id).execute()
    deployment = Deployment.get_by_id(deployment.id)
    apply(svc, deployment)
    return deployment


def _updated_mappings(current: list[dict], changes: Any, kind: str) -> list[dict]:
    """Only constant values and data store paths of existing mappings can change."""
    if not isinstance(changes, list):
        raise BadRequest(f"'{kind}s_mapping' must be a list")
    by_name = {m[f"pipeline_{kind}_name"]: dict(m) for m in current}
    for change in changes:
        if not isinstance(change, dict):
            raise BadRequest(f"Each {kind} mapping must be an object")
        name = change.get(f"pipeline_{kind}_name", change.get(f"step_{kind}_name"))
        if not isinstance(name, str) or name not in by_name:  # a list or object: unhashable
            raise BadRequest(f"Unknown pipeline {kind} {name!r}")
        existing = by_name[name]
        keys = [k for k in ("constant_value", "datastore_path", "endpoint_input_name",
                            "endpoint_output_name", "environment_variable_name", "is_null")
                if k in change]
        if len(keys) != 1 or MAPPING_TYPE[keys[0]] != existing["mapping_type"] or \
                keys[0] not in ("constant_value", "datastore_path"):
            raise BadRequest(
                f"Only the constant value or data store path of an existing {kind} mapping can "
                f"change; '{name}' is a {existing['mapping_type']} mapping",
                {"name": name})
        existing["mapping_value"] = {**existing["mapping_value"], keys[0]: change[keys[0]]}
    return list(by_name.values())


def delete_deployment(svc, deployment: Deployment) -> dict:
    svc.orchestrator.remove_deployment(deployment.id)
    executions.delete_many(svc, [e.execution_id for e in Execution.select(
        Execution.execution_id).where((Execution.environment == deployment.environment_id)
                                      & (Execution.deployment_name == deployment.name))])
    deployment.delete_instance(recursive=True)
    svc.endpoints.forget_deployments()
    svc.events.notify(f"deployment:{deployment.id}")
    return {"name": deployment.name, "execution_rule": deployment.execution_rule}


def endpoint_token(deployment: Deployment) -> str:
    """The endpoint token in clear: stored sealed (crypto.py), like other secrets."""
    return crypto.open_sealed(deployment.endpoint_token) if deployment.endpoint_token else ""


def new_endpoint_token(svc, deployment: Deployment) -> str:
    if deployment.execution_rule != "endpoint":
        raise BadRequest("Only endpoint deployments have a token")
    token = secrets.token_urlsafe(32)
    Deployment.update(endpoint_token=crypto.seal(token), updated_at=utcnow()).where(
        Deployment.id == deployment.id).execute()
    svc.endpoints.forget_deployments()
    return token


# Executions of deployments --------------------------------------------------------------

def endpoint_deployment(svc, environment: Environment, url_path: str,
                        token: str | None) -> Deployment:
    from ..store.models import Step

    def load() -> tuple[Deployment, str] | None:
        # One joined query: this is the hot path of every endpoint call.
        found = (Deployment.select(Deployment, Pipeline, Step).join(Pipeline).join(Step)
                 .where((Deployment.environment == environment)
                        & (Deployment.endpoint_url_path == url_path)).first())
        return None if found is None else (found, endpoint_token(found))  # opened once

    deployment, expected = (svc.endpoints.deployment((environment.id, url_path), load)
                            or (None, ""))
    if deployment is None:
        raise NotFound(f"Endpoint '{url_path}' not found", {"endpoint_url_path": url_path})
    if not token:
        raise Unauthorized("Missing endpoint token: send 'Authorization: EndpointToken <token>'")
    if not expected or not secrets.compare_digest(expected, token):
        raise Forbidden("Invalid endpoint token")
    return deployment


def trigger(svc, deployment: Deployment, given: dict, files: dict,
            wait_s: float = 0.0) -> Execution:
    """An endpoint call. `wait_s` > 0: the caller waits up to that long for the result;
    the execution returned is final if it ended by then."""
    if not deployment.is_enabled:
        raise Forbidden(f"Deployment '{deployment.name}' is disabled")
    if not isinstance(given, dict):
        raise BadRequest("The inputs must be a JSON object")
    if len(files) > 1:  # the seed's table: endpoint files are limited to 1 per call
        raise BadRequest("An endpoint call carries at most one file",
                         {"files": sorted(files)})
    deadline = time.monotonic() + wait_s
    execution = _start(svc, deployment, given, files, user_id=deployment.created_by,
                       wait_s=wait_s)
    if wait_s > 0 and execution.status not in lifecycle.FINAL:
        ended = executions.wait_finished(svc, execution.execution_id,
                                         max(0.0, deadline - time.monotonic()))
        execution = ended or execution
    return execution


def _start(svc, deployment: Deployment, given: dict, files: dict, user_id: str | None,
           wait_s: float = 0.0) -> Execution:
    pipeline = deployment.pipeline
    declared_in, declared_out = pipeline_io(pipeline)
    maps = {m["pipeline_input_name"]: m for m in deployment.inputs_mapping}
    execution_id = executions.new_execution_id(svc, pipeline.name)
    # The seed's environment-variable example still sends number_a/number_b: inputs the
    # mappings take elsewhere are left out and noted in the logs, not refused.
    unused = executions.unused_inputs(declared_in, maps, given, files)
    notes = [f"Inputs sent but not used (this deployment maps its inputs elsewhere): "
             f"{', '.join(unused)}"] if unused else None
    try:
        inputs, job_inputs = executions.resolve_inputs(
            svc, deployment.environment, execution_id, declared_in, given, files, maps,
            source_type="endpoint")
    except Exception:
        svc.artifacts.delete_execution(execution_id)
        raise
    outputs = [{"pipeline_output_name": m["pipeline_output_name"],
                "data_type": next(o["data_type"] for o in declared_out
                                  if o["name"] == m["pipeline_output_name"]),
                "mapping_type": m["mapping_type"], "mapping_value": m["mapping_value"],
                "value": None} for m in deployment.outputs_mapping]
    return executions.start_execution(
        svc, deployment.environment, user_id or "", pipeline, execution_id, inputs, job_inputs,
        outputs, deployment_name=deployment.name,
        resident_deployment_id=deployment.id if deployment.mode == "low_latency" else None,
        wait_s=wait_s, notes=notes,
        run_info=None if deployment.use_cache else {"use_cache": False})


def schedule_fired(svc, deployment_id: int, fire_time: dt.datetime) -> Execution | None:
    """Start the execution of one cron tick, at most once whoever asks (unique tick row)."""
    deployment = Deployment.get_or_none(Deployment.id == deployment_id)
    if deployment is None or not deployment.is_enabled or deployment.execution_rule != "periodic":
        return None
    fire_time = fire_time.replace(second=0, microsecond=0, tzinfo=None)
    try:
        tick = ScheduleTick.create(deployment=deployment, fire_time=fire_time)
    except peewee.IntegrityError:
        return None
    Deployment.update(last_tick_at=fire_time).where(Deployment.id == deployment_id).execute()
    try:
        execution = _start(svc, deployment, {}, {}, user_id=deployment.created_by)
    except Exception as exc:  # noqa: BLE001 - a failed tick is logged to the deployment
        record_log(deployment.id, "stderr", f"Tick {iso(fire_time)} could not start: {exc}")
        return None
    ScheduleTick.update(execution_id=execution.execution_id).where(
        ScheduleTick.id == tick.id).execute()
    return execution


def record_log(deployment_id: int, stream: str, message: str, pod_id: str | None = None,
               timestamp: dt.datetime | None = None) -> None:
    DeploymentLog.create(deployment=deployment_id, stream=stream, pod_id=pod_id,
                         message=message[:100_000], timestamp=timestamp or utcnow())


def record_logs(deployment_id: int, entries: Any, default_pod: str | None) -> int:
    """A batch of lines from a resident runner, checked, then stored in one statement."""
    from .logs import checked_entries

    rows = [{"deployment": deployment_id, "timestamp": r["timestamp"], "stream": r["stream"],
             "message": r["message"], "pod_id": r["pod_id"] or default_pod}
            for r in checked_entries(entries)]
    prepared.insert_many(DeploymentLog, rows)
    return len(rows)


def logs(deployment: Deployment, start, end, limit) -> list[dict]:
    from .logs import window

    query = window(DeploymentLog.select().where(DeploymentLog.deployment == deployment),
                   DeploymentLog, start, end, limit)
    return [{"timestamp": iso(r.timestamp), "message": r.message, "stream": r.stream,
             "pod_id": r.pod_id, "type": "deployment"} for r in query]


def latest_execution(environment: Environment, deployment: Deployment) -> dict | None:
    execution = Execution.select().where(
        (Execution.environment == environment) & (Execution.deployment_name == deployment.name)
    ).order_by(Execution.created_at.desc()).first()
    return executions.summary(execution) if execution else None


def deployment_id_for_runner(token: str) -> int:
    """The deployment a resident runner's token belongs to. Runners send logs every few
    hundred milliseconds while serving calls: a prepared statement, reading the id only."""
    rows = prepared.select(Deployment, ("id",), {"runner_token_hash": hash_token(token)})
    if not rows:
        raise Unauthorized("Invalid deployment token")
    return rows[0][0]


def by_runner_token(token: str) -> Deployment:
    deployment = Deployment.get_or_none(Deployment.id == deployment_id_for_runner(token))
    if deployment is None:  # deleted between the two reads
        raise Unauthorized("Invalid deployment token")
    return deployment
