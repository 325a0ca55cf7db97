"""Executions: resolving inputs, starting runs, recording results, and their views."""

from __future__ import annotations

import functools
import json
import secrets
import string
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import BadRequest, NotFound
from ..jsontext import holds_nul, without_nul
from ..orchestrators.base import Answer, Launch
from ..store import db_session, prepared
from ..store.db import database, utcnow
from ..store.models import Environment, Execution, ExecutionLog, Pipeline
from . import datastore as datastore_rules
from . import envvars
from .auth import hash_token, new_secret
from .deferred import VISIBLE_AFTER_S, DeferredRow
from .io_types import check_total_size, check_value
from .lifecycle import ACTIVE, FINAL, ExecutionStatus, transition
from .mappings import expand_datastore_path, parse_input_mappings, parse_output_mappings
from .times import iso

_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class UploadedFile:
    stream: BinaryIO
    filename: str | None


def new_execution_id(svc, pipeline_name: str) -> str:
    """`<pipeline>-<5 characters>`, drawn again while taken: in the store, or by a call
    in flight whose row is not written yet (deferred.py). Five characters are 60 million
    ids per pipeline, so a busy endpoint meets a taken one within thousands of calls (a
    duplicate was a 500, after its input files had overwritten the other execution's)."""
    while True:
        # One draw for the five characters (each secrets.choice is a getrandom system call).
        number = secrets.randbelow(len(_ALPHABET) ** 5)
        suffix = ""
        for _ in range(5):
            number, digit = divmod(number, len(_ALPHABET))
            suffix += _ALPHABET[digit]
        candidate = f"{pipeline_name}-{suffix}"
        if not svc.deferred.holds(candidate) and not prepared.select(
                Execution, ("execution_id",), {"execution_id": candidate}):
            return candidate


def _coerce_env_value(data_type: str, raw: str, name: str) -> Any:
    if data_type in ("string", "file"):
        return raw
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(
            f"Environment variable for input '{name}' does not hold a {data_type}", {"name": name}
        ) from exc
    return check_value(data_type, value, name)


def _accepted_inputs(declared: list[dict], mappings: dict[str, dict]) -> set[str]:
    """The names a caller may send: unmapped inputs, and endpoint mappings' outer names."""
    known = set()
    for decl in declared:
        mapping = mappings.get(decl["name"])
        if mapping is None:
            known.add(decl["name"])
        elif mapping["mapping_type"] == "endpoint":
            known.add(mapping["mapping_value"]["endpoint_input_name"])
    return known


def unused_inputs(declared: list[dict], mappings: dict[str, dict], given: dict,
                  files: dict) -> list[str]:
    """Inputs sent that no declared input takes (mapped elsewhere, or unknown)."""
    return sorted((set(given) | set(files)) - _accepted_inputs(declared, mappings))


def resolve_inputs(svc, environment: Environment, execution_id: str, declared: list[dict],
                   given: dict, files: dict[str, UploadedFile], mappings: dict[str, dict],
                   source_type: str = "run") -> tuple[list[dict], dict]:
    """Apply mappings, given values and defaults; check types, requirements and sizes.

    Returns the stored input items and the job inputs handed to the runner. A run refuses
    inputs it does not take; an endpoint call ignores them (the caller notes them in the
    execution's logs: `unused_inputs`)."""
    unknown = unused_inputs(declared, mappings, given, files)
    if unknown and source_type != "endpoint":
        raise BadRequest(f"Unknown inputs: {', '.join(unknown)}",
                         {"unknown_inputs": unknown,
                          "known": sorted(_accepted_inputs(declared, mappings))})
    env_values = None
    items: list[dict] = []
    job: dict[str, Any] = {}
    non_file: dict[str, Any] = {}
    staged: list[tuple[str, Any]] = []
    for decl in declared:
        name, data_type = decl["name"], decl["data_type"]
        mapping = mappings.get(name)
        value: Any = None
        if mapping is None or mapping["mapping_type"] == "endpoint":
            # Values given by the caller; the endpoint mapping may rename the input.
            mapping = mapping or {"mapping_type": source_type,
                                  "mapping_value": {f"{source_type}_input_name": name}}
            outer = mapping["mapping_value"].get("endpoint_input_name", name)
            required = mapping["mapping_value"].get("is_required", decl.get("is_required"))
            default = mapping["mapping_value"].get("default_value", decl.get("default_value"))
            if data_type == "file":
                if outer in files:
                    staged.append((name, files[outer]))
                elif outer in given and given[outer] is not None:
                    raise BadRequest(f"Input '{outer}' is a file: send it as a file part", {"name": outer})
                elif required:
                    raise BadRequest(f"Missing required file input '{outer}'", {"name": outer})
            else:
                if outer in files:
                    raise BadRequest(f"Input '{outer}' is of type {data_type}, not a file", {"name": outer})
                value = given.get(outer)
                if value is None:
                    value = default
                if value is None and required:
                    raise BadRequest(f"Missing required input '{outer}'", {"name": outer})
                if value is not None:
                    check_value(data_type, value, outer)
        elif mapping["mapping_type"] == "constant":
            value = mapping["mapping_value"]["constant_value"]
        elif mapping["mapping_type"] == "environment_variable":
            env_values = env_values if env_values is not None else envvars.as_dict(environment)
            var = mapping["mapping_value"]["environment_variable_name"]
            if var not in env_values:
                raise BadRequest(f"Environment variable '{var}' (for input '{name}') is not set",
                                 {"name": var})
            value = _coerce_env_value(data_type, env_values[var], name)
        elif mapping["mapping_type"] == "datastore":  # file inputs only (mappings.py)
            path = mapping["mapping_value"]["datastore_path"]
            staged.append((name, UploadedFile(datastore_rules.read_stream(svc, environment, path),
                                              path.rsplit("/", 1)[-1])))
        item = {"pipeline_input_name": name, "data_type": data_type, **mapping, "value": None}
        if data_type != "file":
            item["value"] = value
            non_file[name] = value
            job[name] = value
        items.append(item)
    check_total_size(non_file)
    for name, upload in staged:
        path = svc.artifacts.save_execution_file(execution_id, "inputs", name, upload.stream,
                                                 upload.filename)
        job[name] = {"path": str(path)}
    for item in items:
        if item["data_type"] == "file" and item["pipeline_input_name"] not in job:
            job[item["pipeline_input_name"]] = None
    return items, job


def output_items(declared: list[dict], mappings: dict[str, dict],
                 default_type: str = "run") -> list[dict]:
    items = []
    for decl in declared:
        mapping = mappings.get(decl["name"]) or {
            "mapping_type": default_type,
            "mapping_value": {f"{default_type}_output_name": decl["name"]},
        }
        items.append({"pipeline_output_name": decl["name"], "data_type": decl["data_type"],
                      **mapping, "value": None})
    return items


def run_pipeline(svc, environment: Environment, user_id: str, pipeline: Pipeline,
                 json_inputs: dict, files: dict[str, UploadedFile],
                 inputs_mapping: Any = None, outputs_mapping: Any = None,
                 use_cache: Any = True) -> Execution:
    from .pipelines import not_ready, pipeline_io

    step = not_ready(pipeline)
    if step is not None:
        raise BadRequest(
            f"Pipeline '{pipeline.name}' is not ready (step '{step.name}' status {step.status})",
            {"pipeline_name": pipeline.name, "step_name": step.name, "status": step.status,
             "error": step.error},
        )
    if not isinstance(json_inputs, dict):
        raise BadRequest("'json_inputs' must be a JSON object", {"field": "json_inputs"})
    if not isinstance(use_cache, bool):
        raise BadRequest("'use_cache' must be true or false", {"field": "use_cache"})
    declared_in, declared_out = pipeline_io(pipeline)
    in_maps = parse_input_mappings(inputs_mapping, declared_in, "run")
    out_maps = parse_output_mappings(outputs_mapping, declared_out, "run")
    execution_id = new_execution_id(svc, pipeline.name)
    try:
        inputs, job_inputs = resolve_inputs(svc, environment, execution_id, declared_in,
                                            json_inputs, files, in_maps)
    except Exception:
        svc.artifacts.delete_execution(execution_id)
        raise
    return start_execution(svc, environment, user_id, pipeline, execution_id, inputs,
                           job_inputs, output_items(declared_out, out_maps),
                           run_info=None if use_cache else {"use_cache": False})


def start_execution(svc, environment: Environment, user_id: str, pipeline: Pipeline,
                    execution_id: str, inputs: list[dict], job_inputs: dict,
                    outputs: list[dict], deployment_name: str | None = None,
                    resident_deployment_id: int | None = None,
                    wait_s: float = 0.0, notes: list[str] | None = None,
                    run_info: dict | None = None) -> Execution:
    """Record the execution and hand it to the orchestrator. `wait_s` > 0 for a caller
    about to wait that long for the result: a resident call is then waited for here, up to
    `wait_s` (the returned object is final if it ended by then). `notes` become the
    execution's first log lines (what the platform did with the request), written before it
    can run. `run_info` goes into step_info: `use_cache` (False: no step takes a cached
    result), a re-run's `rerun_of`, `from_step` and `reuse` (reruns.py)."""
    if pipeline.connections is not None or pipeline.step.max_retries:
        # Several steps, or a step that retries: the graph's scheduler runs them, an
        # attempt per StepExecution row.
        from . import graph_runs

        execution = graph_runs.start(svc, environment, user_id, pipeline, execution_id, inputs,
                                     outputs, deployment_name, resident_deployment_id,
                                     run_info)
        _note(execution_id, notes)
        return execution
    step = pipeline.step
    token = new_secret("exe")
    config = step.container_config
    cached = None
    if step.cache_results:
        run_info, cached = _single_step_cache(svc, step, execution_id, inputs, run_info or {})
    resident = resident_deployment_id is not None and cached is None
    now = utcnow()
    values = dict(
        # A resident runner takes it at once (or queues it in its own slots): no separate
        # Pending -> Running write on this hot path.
        status=(ExecutionStatus.RUNNING if resident else ExecutionStatus.PENDING).value,
        created_at=now, start_date=now if resident else None,
        execution_id=execution_id, environment=environment, pipeline_name=pipeline.name,
        deployment_name=deployment_name, step_name=step.name, inputs=inputs, outputs=outputs,
        token_hash=hash_token(token), created_by=user_id,
        step_info={
            "name": step.name, "commit_id": step.commit_id, "origin": step.origin,
            "repository_url": config.get("repository_url"),
            "repository_branch": config.get("repository_branch"),
            "requirements_path": config.get("requirements_path"), **(run_info or {}),
        },
    )
    deferred = None
    if resident and wait_s > 0:
        # The caller waits for the result: the row is written once, ended (deferred.py).
        execution = Execution(**values)
        deferred = svc.deferred.add(execution, _note_rows(execution_id, notes))
    else:
        execution = prepared.create(Execution, **values)
        _note(execution_id, notes)
    if cached is not None:  # the step's result is in the cache: it does not run
        svc.artifacts.share_execution_files(cached.origin_execution_id, cached.files_kind,
                                            execution_id, "outputs")
        return finish(svc, execution, {"status": "Succeeded", "outputs": {
            o["name"]: o["value"] for o in cached.outputs if o["data_type"] != "file"}})
    env_url = svc.environment_url(environment.project.name, environment.name)
    launch = Launch(
        execution_id=execution_id, token=token, env_key=step.env_key or "",
        environment_url=env_url, control_url=svc.settings.public_url,
        code_dir=svc.artifacts.step_code_dir(step.id), function_path=step.function_path,
        function_name=step.function_name, inputs=job_inputs,
        outputs=[{"name": o["name"], "data_type": o["data_type"]} for o in step.outputs],
        environment_variables=svc.endpoints.variables(
            environment.id, functools.partial(envvars.as_dict, environment)),
        input_types={d["name"]: d["data_type"] for d in step.inputs},
    )
    started = time.monotonic()
    try:
        if resident_deployment_id is None:
            svc.orchestrator.start_execution(launch)
            return execution
        answer = svc.orchestrator.dispatch(
            resident_deployment_id, launch,
            wait_s if deferred is None else min(wait_s, VISIBLE_AFTER_S))
    except Exception as exc:  # the backend refused: the execution must not stay pending
        if deferred is not None:
            svc.deferred.write(deferred)
        mark_failed(svc, execution_id, f"Could not start the execution: {exc}")
        raise
    # Recorded by whichever thread the answer comes back in: the caller's own when the
    # backend carried the call in it (then already done here), else the backend's.
    recorded: Future = Future()
    answer.add_done_callback(functools.partial(_record_answer, svc, execution, deferred,
                                               recorded))
    if wait_s <= 0:
        return execution
    if deferred is not None and not recorded.done():
        # A call lasting longer than most: in the store now, Running, for the lists and
        # for a caller whose hold may end before the answer.
        svc.deferred.write(deferred)
    return _wait_recorded(svc, execution, recorded, wait_s - (time.monotonic() - started))


def _record_answer(svc, execution: Execution, deferred: DeferredRow | None, recorded: Future,
                   answer: Future) -> None:
    try:
        # Maybe in a backend thread: within the app's store and key.
        with svc.state.bound(), db_session():
            try:
                record_answer(svc, execution, answer.result(), deferred)
            finally:
                if deferred is not None:  # not recorded (an error): at least in the store
                    svc.deferred.write(deferred)
    finally:
        recorded.set_result(execution)


def _wait_recorded(svc, execution: Execution, recorded: Future, wait_s: float) -> Execution:
    """The execution once its answer is recorded (or as it stands after `wait_s`, or at
    once when the server stops)."""
    deadline = time.monotonic() + wait_s
    while not recorded.done() and not svc.stopping.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return execution
        try:
            recorded.result(min(remaining, 0.5))
        except FutureTimeout:
            continue
    if recorded.done() and execution.status not in FINAL:
        # Ended another way than finish() (the runner died, the result was refused): the
        # store has the reason.
        return Execution.get_or_none(Execution.execution_id == execution.execution_id) or execution
    return execution


def _single_step_cache(svc, step, execution_id: str, inputs: list[dict],
                       run_info: dict) -> tuple[dict, Any]:
    """A single-step run of a step with cache_results: its key (kept in step_info, entered
    in the cache when it succeeds) and the cached result it takes, if any."""
    from . import step_cache

    values, files = {}, {}
    for item in inputs:
        name = item["pipeline_input_name"]
        if item["data_type"] == "file":
            files[name] = svc.artifacts.execution_file_hash(execution_id, "inputs", name)
        else:
            values[name] = item.get("value")
    key = step_cache.key_of(svc, step, values, files)
    run_info = {**run_info, "cache_key": key}
    cached = step_cache.lookup(svc, key) if run_info.get("use_cache", True) else None
    if cached is not None:
        run_info.update(cached_from=cached.origin_execution_id,
                        origin_execution_id=cached.origin_execution_id,
                        metrics_in_origin=step_cache.has_metrics(cached.origin_execution_id))
    return run_info, cached


def _note_rows(execution_id: str, notes: list[str] | None) -> list[dict]:
    if not notes:
        return []
    now = utcnow()
    return [{"execution": execution_id, "timestamp": now, "stream": "stdout",
             "message": f"[shipyard] {note}", "step_name": None, "attempt": None}
            for note in notes]


def _note(execution_id: str, notes: list[str] | None) -> None:
    prepared.insert_many(ExecutionLog, _note_rows(execution_id, notes))


# Reports from the runner and the orchestrator ------------------------------------------

def mark_running(svc, execution_id: str, pid: int | None, pid_started_at: float | None) -> None:
    transition(svc, Execution, {"execution_id": execution_id}, ExecutionStatus.RUNNING,
               execution_id, {"start_date": utcnow(), "pid": pid,
                              "pid_started_at": pid_started_at})


def mark_failed(svc, execution_id: str, reason: str) -> bool:
    """The execution failed as a whole (start refused, server stopped): its steps too."""
    from .graph_runs import end_steps

    end_steps(svc, execution_id, reason)
    return transition(svc, Execution, {"execution_id": execution_id}, ExecutionStatus.FAILED,
                      execution_id, {"error": reason, "end_date": utcnow()})


def _log_rows(execution_id: str, logs: Any, step_name: str | None = None,
              attempt: int | None = None) -> list[dict]:
    from .logs import checked_entries

    if not logs:
        return []
    return [{"execution": execution_id, "timestamp": r["timestamp"], "stream": r["stream"],
             "message": r["message"], "step_name": step_name, "attempt": attempt}
            for r in checked_entries(logs)]


def record_logs(execution: Execution, logs: Any, step_name: str | None = None,
                attempt: int | None = None) -> int:
    rows = _log_rows(execution.execution_id, logs, step_name, attempt)
    prepared.insert_many(ExecutionLog, rows)
    return len(rows)


def parse_final_status(payload: Any) -> ExecutionStatus:
    status = payload.get("status") if isinstance(payload, dict) else None
    if status not in (ExecutionStatus.SUCCEEDED.value, ExecutionStatus.FAILED.value):
        raise BadRequest("'status' must be Succeeded or Failed")
    return ExecutionStatus(status)


def failure_message(error: Any) -> str:
    """The execution's error text: "Type: message", the type named once (the runner's
    user errors already read "RuntimeError: text"; its own errors carry the bare text)."""
    if isinstance(error, dict):
        kind = str(error.get("type") or "Error")
        message = str(error.get("message") or "").strip()
        short = kind.rsplit(".", 1)[-1]  # a user error's message names the class, unqualified
        if message != short and not message.startswith(f"{short}:"):
            message = f"{kind}: {message}".strip()
        if error.get("traceback"):
            message += "\n" + str(error["traceback"])[-8000:]
        return message
    return str(error or "The step failed")


def finish(svc, execution: Execution, payload: dict,
           deferred: DeferredRow | None = None) -> Execution:
    """The runner's final report: outputs to their destinations, status, resources, and
    the log lines it carries (a resident runner's answer): all in one transaction. An
    execution not in the store yet (`deferred`) is inserted ended, in that transaction."""
    status = parse_final_status(payload)
    # Text the step produced holding a NUL, which PostgreSQL refuses in text and jsonb (the
    # sort index): replaced, since the execution cannot be refused the way a request is.
    if holds_nul([payload.get("outputs"), payload.get("error")]):
        payload = {**payload, "outputs": without_nul(payload.get("outputs")),
                   "error": without_nul(payload.get("error"))}
    message = None
    outputs = [dict(o) for o in execution.outputs]
    if status is ExecutionStatus.SUCCEEDED:
        values = payload.get("outputs") or {}
        try:
            _place_outputs(svc, execution, outputs, values)
        except BadRequest as exc:
            status, message = ExecutionStatus.FAILED, f"Invalid outputs: {exc.message}"
    else:
        message = failure_message(payload.get("error"))
    resources = payload.get("resources") or {}
    changes = {"error": message, "outputs": outputs, "end_date": utcnow(),
               "cpu_time_s": resources.get("cpu_time_s"),
               "peak_rss_bytes": resources.get("peak_rss_bytes")}
    lines = _log_rows(execution.execution_id, payload.get("logs"))
    if deferred is not None and svc.deferred.write_final(
            deferred, {"status": status.value, **changes}, lines):
        svc.events.notify(execution.execution_id)
    else:
        write_logs = functools.partial(prepared.insert_many, ExecutionLog, lines) if lines else None
        if not transition(svc, Execution, {"execution_id": execution.execution_id}, status,
                          execution.execution_id, changes, with_move=write_logs):
            raise BadRequest("The execution has already ended")
    if status is ExecutionStatus.SUCCEEDED:
        _enter_in_cache(execution, outputs, values)
    for name, value in changes.items():
        setattr(execution, name, value)
    execution.status = status.value
    return execution


def _enter_in_cache(execution: Execution, outputs: list[dict], values: dict) -> None:
    """A single-step run with a cache key (its step has cache_results) that ran: its
    result serves the next runs with that key."""
    info = execution.step_info or {}
    if not info.get("cache_key") or info.get("cached_from"):
        return
    from . import step_cache

    step_cache.record(execution.execution_id, info.get("name") or execution.step_name,
                      info["cache_key"], [
                          {"name": o["pipeline_output_name"], "data_type": o["data_type"],
                           "value": None if o["data_type"] == "file"
                           else values.get(o["pipeline_output_name"])} for o in outputs],
                      "outputs")


def record_answer(svc, execution: Execution, answer: Answer,
                  deferred: DeferredRow | None = None) -> None:
    """A resident runner's answer: its finish payload, checked like the runner's own
    /finish call, or the reason there is none."""
    if answer.payload is None:
        if deferred is not None:
            svc.deferred.write(deferred)
        runner_exited(svc, execution.execution_id, answer.return_code, answer.detail)
        return
    try:
        finish(svc, execution, answer.payload, deferred)
    except BadRequest as exc:
        if deferred is not None:
            svc.deferred.write(deferred)
        mark_failed(svc, execution.execution_id, f"Invalid result from the runner: {exc.message}")


def _place_outputs(svc, execution: Execution, outputs: list[dict], values: dict) -> None:
    if not isinstance(values, dict):
        raise BadRequest("'outputs' must be an object")
    non_file = {}
    for item in outputs:
        name, data_type = item["pipeline_output_name"], item["data_type"]
        if data_type == "file":
            path = svc.artifacts.execution_file(execution.execution_id, "outputs", name)
            if not path.exists():
                raise BadRequest(f"File output '{name}' was not uploaded")
            continue
        if name not in values:
            raise BadRequest(f"Output '{name}' is missing")
        value = values[name]
        if value is not None:
            check_value(data_type, value, name)
        non_file[name] = value
    check_total_size(non_file, "outputs")
    now = utcnow()
    for item in outputs:
        name = item["pipeline_output_name"]
        kind = item["mapping_type"]
        if kind == "is_null":
            continue
        if kind == "datastore":
            target = expand_datastore_path(item["mapping_value"]["datastore_path"],
                                           execution.execution_id, now)
            if item["data_type"] == "file":
                path = svc.artifacts.execution_file(execution.execution_id, "outputs", name)
                with open(path, "rb") as stream:
                    datastore_rules.write_stream(svc, execution.environment, target, stream)
            else:
                import io

                data = json.dumps(non_file[name]).encode()
                datastore_rules.write_stream(svc, execution.environment, target, io.BytesIO(data))
            item["value"] = target
        elif item["data_type"] != "file":
            item["value"] = non_file[name]


SERVER_STOPPED = "The server stopped while this execution was running"


def runner_exited(svc, execution_id: str, return_code: int, detail: str) -> None:
    if svc.stopping.is_set():
        # The stop ended it (the sandbox's parent-death signal may be quicker than the
        # shutdown hook): say so rather than name a signal.
        mark_failed(svc, execution_id, SERVER_STOPPED)
        return
    from .graph_runs import failed_step_reason

    # A graph the backend ran (one Workflow) ends failed after a step failed: name it.
    reason = failed_step_reason(execution_id) if return_code else None
    if reason is None:
        reason = f"The runner exited with code {return_code} before reporting a result"
        if detail:
            reason += f": {detail[-4000:]}"
    mark_failed(svc, execution_id, reason)


def recover_after_restart(svc) -> int:
    """Executions left active by a stopped server end failed, with the reason (unless they
    run in a cluster, where they went on without the API)."""
    if svc.orchestrator.executions_survive_restart:
        return 0
    from .graph_runs import recover

    count = 0
    for execution in Execution.select().where(Execution.status.in_(ACTIVE)):
        recover(svc, execution)
        if svc.orchestrator.is_alive(execution.execution_id, execution.pid,
                                     execution.pid_started_at):
            svc.orchestrator.cancel_execution(execution.execution_id)
        if mark_failed(svc, execution.execution_id, SERVER_STOPPED):
            count += 1
    return count


# Reading ------------------------------------------------------------------------------

def get_execution(environment: Environment, execution_id: str) -> Execution:
    execution = Execution.get_or_none(
        (Execution.execution_id == execution_id) & (Execution.environment == environment)
    )
    if execution is None:
        raise NotFound(f"Execution '{execution_id}' not found", {"execution_id": execution_id})
    return execution


def summary(execution: Execution, steps: list | None = None) -> dict:
    body = {
        "execution_id": execution.execution_id, "status": execution.status,
        "pipeline_name": execution.pipeline_name, "deployment_name": execution.deployment_name,
        "created_at": iso(execution.created_at), "created_by": execution.created_by,
        "start_date": iso(execution.start_date), "end_date": iso(execution.end_date),
    }
    if steps is not None:
        body["steps"] = steps
    return body


def _step_rows(execution: Execution) -> list | None:
    """The StepExecution rows of a multi-step execution; None for a single step (whose
    execution row is its step: no query)."""
    from .graph_runs import rows_of

    return rows_of(execution.execution_id) if "steps" in (execution.step_info or {}) else None


def execution_to_dict(execution: Execution, include_values: bool = True) -> dict:
    def item(entry: dict) -> dict:
        result = dict(entry)
        if not include_values:
            result.pop("value", None)
        return result

    from .graph_runs import steps_view

    steps = steps_view(execution, _step_rows(execution))
    if not include_values:
        for step in steps:
            for entry in step.get("inputs", []) + step.get("outputs", []):
                entry.pop("value", None)
    body = summary(execution, steps)
    body.update(
        error=execution.error,
        inputs=[item(i) for i in execution.inputs],
        outputs=[item(o) for o in execution.outputs],
        resources={"cpu_time_s": execution.cpu_time_s, "peak_rss_bytes": execution.peak_rss_bytes},
    )
    if (execution.step_info or {}).get("rerun_of"):
        body["rerun_of"] = execution.step_info["rerun_of"]
    return body


def list_for_pipeline(environment: Environment, pipeline_name: str) -> list[dict]:
    from .graph_runs import rows_for, steps_view

    query = list(Execution.select().where(
        (Execution.environment == environment) & (Execution.pipeline_name == pipeline_name)
    ).order_by(Execution.created_at.desc()))
    rows = rows_for([e.execution_id for e in query if "steps" in (e.step_info or {})])
    return [summary(e, steps_view(e, rows.get(e.execution_id) if "steps" in (e.step_info or {})
                                  else None)) for e in query]


def latest_for_pipeline(environment: Environment, pipeline_name: str) -> dict | None:
    execution = Execution.select().where(
        (Execution.environment == environment) & (Execution.pipeline_name == pipeline_name)
    ).order_by(Execution.created_at.desc()).first()
    return summary(execution) if execution else None


def raise_if_failed(execution: Execution) -> None:
    """Results of a failed execution are an error for whoever asks for them (500)."""
    from ..errors import ExecutionFailed

    if execution.status == ExecutionStatus.FAILED.value:
        raise ExecutionFailed(
            f"Execution '{execution.execution_id}' failed: {execution.error or 'unknown error'}",
            {"execution_id": execution.execution_id, "status": execution.status})


def outputs_summary(execution: Execution) -> list[dict]:
    return [
        {"pipeline_output_name": o["pipeline_output_name"], "data_type": o["data_type"],
         "mapping_type": o["mapping_type"], "value": o.get("value")}
        for o in execution.outputs
    ]


def io_value(svc, execution: Execution, kind: str, name: str):
    """('file', path) or ('value', json value) for one input or output."""
    items = execution.inputs if kind == "inputs" else execution.outputs
    key = "pipeline_input_name" if kind == "inputs" else "pipeline_output_name"
    for entry in items:
        if entry[key] == name:
            if entry["data_type"] == "file":
                path = svc.artifacts.execution_file(execution.execution_id, kind, name)
                return ("file", path) if path.exists() else ("value", None)
            return ("value", entry.get("value"))
    raise NotFound(f"Execution '{execution.execution_id}' has no {kind[:-1]} '{name}'",
                   {"execution_id": execution.execution_id, "name": name})


def logs(execution: Execution, start, end, limit, step_name: str | None = None) -> list[dict]:
    """Log lines, each naming its step; `step_name` keeps one step's."""
    from .logs import window

    condition = ExecutionLog.execution == execution.execution_id
    single = execution.step_name
    if step_name is not None:
        if not isinstance(step_name, str):
            raise BadRequest("'step_name' must be a string", {"field": "step_name"})
        if "steps" in (execution.step_info or {}):
            condition &= ExecutionLog.step_name == step_name
        elif step_name != single:
            condition &= ExecutionLog.id.is_null()  # a single step: no line of another
    query = window(ExecutionLog.select().where(condition), ExecutionLog, start, end, limit)
    return [{"timestamp": iso(r.timestamp), "message": r.message, "stream": r.stream,
             "step_name": r.step_name or single, "attempt": r.attempt or 1} for r in query]


def delete_execution(svc, execution: Execution) -> dict:
    delete_many(svc, [execution.execution_id])
    return {"execution_id": execution.execution_id}


def delete_many(svc, execution_ids: list[str]) -> None:
    """Executions and everything hanging off them: runners, files, logs, metrics."""
    from ..store.models import StepExecution
    from . import step_cache
    from .graph_runs import cancel_steps
    from .metrics import delete_for_executions

    for execution_id in execution_ids:
        svc.orchestrator.cancel_execution(execution_id)
        cancel_steps(svc, execution_id)
        svc.artifacts.delete_execution(execution_id)
    for start in range(0, len(execution_ids), 500):
        ids = execution_ids[start:start + 500]
        with database.atomic():  # an execution and its step cache entries go together
            ExecutionLog.delete().where(ExecutionLog.execution.in_(ids)).execute()
            StepExecution.delete().where(StepExecution.execution.in_(ids)).execute()
            step_cache.delete_for_executions(ids)
            Execution.delete().where(Execution.execution_id.in_(ids)).execute()
        for execution_id in ids:
            svc.events.notify(execution_id)
    delete_for_executions(execution_ids)


def wait_finished(svc, execution_id: str, timeout_s: float) -> Execution | None:
    """Hold until the execution ends (or timeout); the row as last read."""
    last: list = [None]

    def done() -> bool:
        last[0] = Execution.get_or_none(Execution.execution_id == execution_id)
        return last[0] is None or last[0].status in FINAL

    svc.events.wait_until(execution_id, done, timeout_s)
    return last[0]
