"""Running a multi-step pipeline: one execution, one StepExecution row per step.

The scheduler sits above the Orchestrator, so it is the same whatever runs the steps: each
step is an ordinary launch, told apart by its run key (`<execution_id>.<step_name>`) and by
its own token. The runner itself sees the execution id, so the SDK inside a step records
metrics and reads the data store for its execution.

`advance` is the whole schedule, called after every change: a Pending step whose upstream
steps all have their result (Succeeded, Reused or Cached: lifecycle.STEP_DONE) starts (the
Pending -> Running compare-and-set lets one caller start it), unless it takes a result
instead, a re-run's (reruns.py) or the step cache's (step_cache.py): that hook,
`_resolve_without_running`, runs just before a launch, and also when a backend that runs
the graph itself asks for a step's job (`begin_step`). Once a step failed, the Pending ones
are Skipped and the execution fails when nothing runs any more; once all have their
result, the open outputs go to their destinations.

Retries: each attempt of a step is its own row (`attempt` 1, 2…; the newest speaks for the
step). A failed attempt with retries left gets its next one in the same transaction, Pending
until `retry_at` (S, 2S, 4S… after the failure), so no reader ever sees the step failed in
between. The serving process's RetryTimer wakes `advance` at that time; a backend that runs
the graph itself retries by its own retryStrategy, and its next pod takes the new row."""

from __future__ import annotations

import functools
import shutil
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

from ..errors import BadRequest
from ..orchestrators.base import Answer, GraphLaunch, Launch
from ..store.db import database, db_session, utcnow
from ..store.models import Environment, Execution, Pipeline, StepExecution
from . import envvars
from .auth import hash_token, new_secret
from .io_types import check_total_size, check_value
from .lifecycle import ACTIVE, STEP_DONE, ExecutionStatus, StepExecutionStatus, transition

SEPARATOR = "."  # never in resource names (lowercase letters, digits and '-')


def run_key(execution_id: str, step_name: str, attempt: int = 1) -> str:
    """`<execution_id>.<step_name>`, then `.<attempt>` for a retry: a report names the
    attempt it is about (a retry may start before the runner of the last one has exited)."""
    key = f"{execution_id}{SEPARATOR}{step_name}"
    return key if attempt == 1 else f"{key}{SEPARATOR}{attempt}"


def split_run_key(key: str) -> tuple[str, str | None, int]:
    """(execution_id, step_name or None for a single-step execution, attempt)."""
    execution_id, _, rest = key.partition(SEPARATOR)
    step_name, _, attempt = rest.partition(SEPARATOR)
    return execution_id, step_name or None, int(attempt) if attempt.isdigit() else 1


def outputs_kind(step_name: str) -> str:
    """Where a step's file outputs live among its execution's files."""
    return f"steps/{step_name}/outputs"


def start(svc, environment: Environment, user_id: str, pipeline: Pipeline, execution_id: str,
          inputs: list[dict], outputs: list[dict], deployment_name: str | None = None,
          resident_deployment_id: int | None = None,
          run_info: dict | None = None) -> Execution:
    """Record the execution and its steps (one transaction), then start what can start.
    `resident_deployment_id`: a low-latency deployment, whose resident runner of each step
    takes that step. `run_info`: kept in step_info (`use_cache`, a re-run's `reuse`)."""
    from .pipelines import graph_of, steps_of

    steps = steps_of(pipeline)
    # A backend that runs graphs itself (Argo: a DAG WorkflowTemplate) gets the whole graph
    # at once, every step's token made now; else this module starts each step in turn.
    whole = svc.orchestrator.runs_graphs and resident_deployment_id is None
    tokens = {step.name: new_secret("exe") for step in steps} if whole else {}
    retries = retry_policy(pipeline)
    with database.atomic():
        Execution.create(
            execution_id=execution_id, environment=environment, pipeline_name=pipeline.name,
            deployment_name=deployment_name, step_name=None, inputs=inputs, outputs=outputs,
            status=ExecutionStatus.PENDING.value, created_by=user_id,
            step_info={"steps": [s.name for s in steps],
                       "resident_deployment_id": resident_deployment_id,
                       "backend_runs_graph": whole, "retries": retries,
                       **(run_info or {})})
        StepExecution.insert_many([
            {"execution": execution_id, "step_name": step.name, "position": index,
             "status": StepExecutionStatus.PENDING.value,
             "token_hash": hash_token(tokens[step.name]) if whole else None}
            for index, step in enumerate(steps)]).execute()
    if whole:
        from .executions import mark_failed

        graph = graph_of(pipeline)
        environment_url = svc.environment_url(environment.project.name, environment.name)
        try:
            svc.orchestrator.start_graph(GraphLaunch(
                execution_id=execution_id, environment_url=environment_url,
                steps=[(s.name, s.env_key or "", tokens[s.name]) for s in steps],
                upstream={name: sorted(ups) for name, ups in graph.upstream.items()},
                retries={name: tuple(policy) for name, policy in retries.items()}))
        except Exception as exc:  # the backend refused: nothing may stay pending
            mark_failed(svc, execution_id, f"Could not start the execution: {exc}")
            raise
    else:
        advance(svc, execution_id)
    return Execution.get_by_id(execution_id)


def rows_of(execution_id: str) -> list[StepExecution]:
    """Every attempt of every step, in step order then attempt order: a dict by step name
    built from them keeps each step's newest attempt."""
    return list(StepExecution.select().where(StepExecution.execution == execution_id)
                .order_by(StepExecution.position, StepExecution.attempt))


def retry_policy(pipeline: Pipeline) -> dict[str, list[int]]:
    """{step name: [max_retries, retry_delay_s]} of the steps that retry, kept with the
    execution at its start (a step changed later does not change a running execution)."""
    from .pipelines import steps_of

    return {s.name: [s.max_retries, s.retry_delay_s] for s in steps_of(pipeline)
            if s.max_retries}


def retry_delay_s(first_delay_s: int, failed_attempt: int) -> int:
    """The wait after the attempt `failed_attempt` (1, 2…) failed: S, 2S, 4S…"""
    return first_delay_s * 2 ** (failed_attempt - 1)


def advance(svc, execution_id: str) -> None:
    from .pipelines import graph_of, steps_of

    execution = Execution.get_or_none(Execution.execution_id == execution_id)
    if execution is None or execution.status not in ACTIVE:
        return
    pipeline = Pipeline.get_or_none((Pipeline.environment == execution.environment_id)
                                    & (Pipeline.name == execution.pipeline_name))
    rows = {r.step_name: r for r in rows_of(execution_id)}
    if pipeline is None:
        _skip(svc, execution_id, rows, set(rows))
        _fail_when_idle(svc, execution_id, "The pipeline was deleted while it ran")
        return
    graph = graph_of(pipeline)
    failed = [r for r in rows.values() if r.status == StepExecutionStatus.FAILED.value]
    if failed:
        # What depends on a failed step can no longer run; other branches go on.
        _skip(svc, execution_id, rows,
              set().union(*(graph.downstream(r.step_name) for r in failed)))
    if all(r.status in STEP_DONE for r in rows.values()):
        _succeed(svc, execution, rows)
        return
    if not execution.step_info.get("backend_runs_graph"):
        # (A backend running the graph starts the steps itself; each begins when its
        # runner asks for its job.)
        steps = {s.name: s for s in steps_of(pipeline)}
        resolved = False
        now = utcnow()
        for name in graph.order:  # upstream first: a step resolved here feeds the next
            row = rows[name]
            if row.status != StepExecutionStatus.PENDING.value or not all(
                    rows[up].status in STEP_DONE for up in graph.upstream[name]):
                continue
            if row.retry_at is not None and row.retry_at > now:  # a retry, not yet due
                if svc.retries is not None:
                    svc.retries.wake_at(execution_id, row.retry_at)
                continue
            if _launch(svc, execution, graph, steps[name], row, rows,
                       resident_step=name if pipeline.connections is not None else None):
                rows[name] = StepExecution.get_by_id(row.id)
                resolved = True
        if resolved:  # a result taken, not run: nobody reports it, look again now
            advance(svc, execution_id)
            return
    if failed:
        _fail_when_idle(svc, execution_id, _failure(failed[0]))


def _failure(row: StepExecution) -> str:
    """The execution's error when `row`, a step's last attempt, failed: names the step."""
    tries = f" after {row.attempt} attempts" if row.attempt > 1 else ""
    return f"Step '{row.step_name}' failed{tries}: {row.error or 'unknown error'}"


def failed_step_reason(execution_id: str) -> str | None:
    """The first step whose last attempt failed (earlier attempts may have failed too)."""
    latest = {r.step_name: r for r in rows_of(execution_id)}
    failed = sorted((r for r in latest.values() if r.status == StepExecutionStatus.FAILED.value),
                    key=lambda r: r.end_date or utcnow())
    return _failure(failed[0]) if failed else None


def _skip(svc, execution_id: str, rows: dict[str, StepExecution], names: set[str]) -> None:
    now = utcnow()
    for name in names:
        row = rows[name]
        if row.status == StepExecutionStatus.PENDING.value and transition(
                svc, StepExecution, {"id": row.id}, StepExecutionStatus.SKIPPED, execution_id,
                {"end_date": now}):
            row.status = StepExecutionStatus.SKIPPED.value


def _fail_when_idle(svc, execution_id: str, reason: str) -> None:
    """The execution fails once no step is pending or running (their runners report to a
    running execution; a step still to start is started by whoever finishes last)."""
    still = StepExecution.select().where((StepExecution.execution == execution_id)
                                         & (StepExecution.status.in_(ACTIVE))).exists()
    if not still:
        transition(svc, Execution, {"execution_id": execution_id}, ExecutionStatus.FAILED,
                   execution_id, {"error": reason, "end_date": utcnow(),
                                  **_resources(execution_id)})


def _resources(execution_id: str) -> dict:
    """The execution's resources: its steps' CPU time added up, the largest peak memory."""
    rows = rows_of(execution_id)
    cpu = [r.cpu_time_s for r in rows if r.cpu_time_s is not None]
    rss = [r.peak_rss_bytes for r in rows if r.peak_rss_bytes is not None]
    return {"cpu_time_s": round(sum(cpu), 3) if cpu else None,
            "peak_rss_bytes": max(rss) if rss else None}


def _succeed(svc, execution: Execution, rows: dict[str, StepExecution]) -> None:
    from .executions import _place_outputs

    outputs = [dict(o) for o in execution.outputs]
    values: dict[str, Any] = {}
    producers = {}
    for row in rows.values():
        for item in row.outputs:
            producers[item["name"]] = (row.step_name, item)
    try:
        for item in outputs:
            name = item["pipeline_output_name"]
            step_name, produced = producers[name]
            if item["data_type"] == "file":
                source = svc.artifacts.execution_file(execution.execution_id,
                                                      outputs_kind(step_name), name)
                target = svc.artifacts.execution_file(execution.execution_id, "outputs", name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            else:
                values[name] = produced.get("value")
        _place_outputs(svc, execution, outputs, values)
    except (BadRequest, KeyError, OSError) as exc:
        message = exc.message if isinstance(exc, BadRequest) else str(exc)
        transition(svc, Execution, {"execution_id": execution.execution_id},
                   ExecutionStatus.FAILED, execution.execution_id,
                   {"error": f"Invalid outputs: {message}", "end_date": utcnow()})
        return
    transition(svc, Execution, {"execution_id": execution.execution_id},
               ExecutionStatus.SUCCEEDED, execution.execution_id,
               {"outputs": outputs, "end_date": utcnow(), "error": None,
                **_resources(execution.execution_id)})


def _step_inputs(svc, execution: Execution, graph, step, rows) -> tuple[list[dict], dict]:
    """The step's inputs: from the upstream step a connection names, else the open input
    of the same name. Returns the recorded items and the runner's job inputs."""
    given = {i["pipeline_input_name"]: i for i in execution.inputs}
    items, job = [], {}
    for decl in step.inputs:
        name, data_type = decl["name"], decl["data_type"]
        connection = graph.feeds.get((step.name, name))
        if connection is not None:
            source = {"step_name": connection.source_step, "output_name": connection.source_output}
            if data_type == "file":
                path = svc.artifacts.execution_file(execution.execution_id,
                                                    outputs_kind(connection.source_step),
                                                    connection.source_output)
                value = None
                job[name] = {"path": str(path)} if path.exists() else None
            else:
                produced = {o["name"]: o for o in rows[connection.source_step].outputs}
                value = produced.get(connection.source_output, {}).get("value")
                job[name] = value
        else:
            source = {"pipeline_input_name": name}
            item = given.get(name, {})
            if data_type == "file":
                path = svc.artifacts.execution_file(execution.execution_id, "inputs", name)
                value = None
                job[name] = {"path": str(path)} if path.exists() else None
            else:
                value = item.get("value")
                job[name] = value
        items.append({"name": name, "data_type": data_type, "value": value, "source": source})
    return items, job


def _cache_key(svc, execution: Execution, step, items: list[dict]) -> str | None:
    """The step cache's key of this run (step_cache.py), for a step with cache_results."""
    if not step.cache_results:
        return None
    from . import step_cache

    values, files = {}, {}
    for item in items:
        if item["data_type"] != "file":
            values[item["name"]] = item["value"]
            continue
        source = item["source"]
        kind, name = ((outputs_kind(source["step_name"]), source["output_name"])
                      if "step_name" in source else ("inputs", item["name"]))
        files[item["name"]] = svc.artifacts.execution_file_hash(execution.execution_id, kind,
                                                                name)
    return step_cache.key_of(svc, step, values, files)


def _resolve_without_running(svc, execution: Execution, step, row: StepExecution,
                             items: list[dict], cache_key: str | None) -> bool:
    """The hook before a launch: a step a re-run reuses (reruns.py), or whose result the
    step cache holds (step_cache.py), takes that result (outputs, its files shared into
    this execution) instead of running. True if it did (or another caller moved it)."""
    from . import reruns, step_cache

    status, taken = StepExecutionStatus.REUSED, reruns.reused_result(execution, step.name)
    if taken is None and cache_key is not None and execution.step_info.get("use_cache", True):
        status, taken = StepExecutionStatus.CACHED, step_cache.lookup(svc, cache_key)
    if taken is None:
        return False
    execution_id = execution.execution_id
    svc.artifacts.share_execution_files(taken.origin_execution_id, taken.files_kind,
                                        execution_id, outputs_kind(step.name))
    now = utcnow()
    transition(svc, StepExecution, {"id": row.id}, status, execution_id, {
        "start_date": now, "end_date": now, "inputs": items, "outputs": taken.outputs,
        "origin_execution_id": taken.origin_execution_id, "cache_key": cache_key,
        "metrics_in_origin": step_cache.has_metrics(taken.origin_execution_id)})
    transition(svc, Execution, {"execution_id": execution_id}, ExecutionStatus.RUNNING,
               execution_id, {"start_date": now})
    return True


def _launch(svc, execution: Execution, graph, step, row: StepExecution, rows,
            resident_step: str | None) -> bool:
    """Start one attempt of a step; True if it took a result instead (re-run or cache).
    `resident_step`: which resident runner of a low-latency deployment takes it (None: a
    single-step pipeline's only one)."""
    execution_id = execution.execution_id
    items, job = _step_inputs(svc, execution, graph, step, rows)
    cache_key = _cache_key(svc, execution, step, items)
    if _resolve_without_running(svc, execution, step, row, items, cache_key):
        return True
    token = new_secret("exe")
    now = utcnow()
    if not transition(svc, StepExecution, {"id": row.id}, StepExecutionStatus.RUNNING,
                      execution_id, {"token_hash": hash_token(token), "start_date": now,
                                     "inputs": items, "cache_key": cache_key}):
        return False  # another caller started it
    transition(svc, Execution, {"execution_id": execution_id}, ExecutionStatus.RUNNING,
               execution_id, {"start_date": now})
    environment = execution.environment
    launch = Launch(
        execution_id=execution_id, run_id=run_key(execution_id, step.name, row.attempt),
        token=token,
        env_key=step.env_key or "",
        environment_url=svc.environment_url(environment.project.name, environment.name),
        control_url=svc.settings.public_url, code_dir=svc.artifacts.step_code_dir(step.id),
        function_path=step.function_path, function_name=step.function_name, inputs=job,
        outputs=[{"name": o["name"], "data_type": o["data_type"]} for o in step.outputs],
        environment_variables=envvars.as_dict(environment),
        input_types={d["name"]: d["data_type"] for d in step.inputs}, step_name=resident_step,
    )
    resident = execution.step_info.get("resident_deployment_id")
    try:
        if resident is not None:
            svc.orchestrator.dispatch(resident, launch).add_done_callback(
                functools.partial(_step_answered, svc, execution_id, step.name, row.attempt))
        else:
            svc.orchestrator.start_execution(launch)
    except Exception as exc:  # the backend refused: the step must not stay running
        step_ended(svc, execution_id, step.name, StepExecutionStatus.FAILED,
                   {"error": f"Could not start the step: {exc}"}, row.attempt)
    return False


# Reports about one step ------------------------------------------------------------------

def step_of(execution: Execution, step_name: str):
    from .pipelines import get_pipeline, steps_of

    pipeline = get_pipeline(execution.environment, execution.pipeline_name)
    return next(s for s in steps_of(pipeline) if s.name == step_name)


def begin_step(svc, execution: Execution, row: StepExecution) -> StepExecution:
    """A step the backend started itself asks for its job: it is now Running, with the
    inputs its upstream steps left (recorded as `_launch` records them); or, when it takes
    a result instead (re-run or cache), Reused or Cached, and its runner has nothing to do."""
    from .pipelines import get_pipeline, graph_of, steps_of

    if row.status != StepExecutionStatus.PENDING.value:
        return row
    pipeline = get_pipeline(execution.environment, execution.pipeline_name)
    step = next(s for s in steps_of(pipeline) if s.name == row.step_name)
    rows = {r.step_name: r for r in rows_of(execution.execution_id)}
    items, _ = _step_inputs(svc, execution, graph_of(pipeline), step, rows)
    cache_key = _cache_key(svc, execution, step, items)
    if _resolve_without_running(svc, execution, step, row, items, cache_key):
        advance(svc, execution.execution_id)
        return step_row(execution.execution_id, row.step_name)
    now = utcnow()
    transition(svc, StepExecution, {"id": row.id}, StepExecutionStatus.RUNNING,
               execution.execution_id, {"start_date": now, "inputs": items,
                                        "cache_key": cache_key})
    transition(svc, Execution, {"execution_id": execution.execution_id},
               ExecutionStatus.RUNNING, execution.execution_id, {"start_date": now})
    return step_row(execution.execution_id, row.step_name)


def job_inputs(svc, execution: Execution, row: StepExecution) -> dict:
    """The runner's job inputs of a started step, from what its start recorded: values, or
    {"path"} of the file (an upstream step's output, or an open input)."""
    job = {}
    for item in row.inputs:
        if item["data_type"] != "file":
            job[item["name"]] = item.get("value")
            continue
        source = item.get("source") or {}
        if "step_name" in source:
            path = svc.artifacts.execution_file(execution.execution_id,
                                                outputs_kind(source["step_name"]),
                                                source["output_name"])
        else:
            path = svc.artifacts.execution_file(execution.execution_id, "inputs", item["name"])
        job[item["name"]] = {"path": str(path)} if path.exists() else None
    return job


def output_type(execution: Execution, step_name: str, name: str) -> str | None:
    return next((o["data_type"] for o in step_of(execution, step_name).outputs
                 if o["name"] == name), None)


def step_row(execution_id: str, step_name: str,
             attempt: int | None = None) -> StepExecution | None:
    """The row of one attempt of a step; None: its newest."""
    condition = (StepExecution.execution == execution_id) & (StepExecution.step_name == step_name)
    if attempt is not None:
        condition &= StepExecution.attempt == attempt
    return (StepExecution.select().where(condition)
            .order_by(StepExecution.attempt.desc()).first())


def step_ended(svc, execution_id: str, step_name: str, status: StepExecutionStatus,
               changes: dict, attempt: int | None = None) -> bool:
    """An attempt of the step ended (None: its newest); a failed one with retries left
    gets its next attempt in the same transaction."""
    row = step_row(execution_id, step_name, attempt)
    if row is None:
        return False
    now = utcnow()
    with database.atomic():
        moved = transition(svc, StepExecution, {"id": row.id}, status, execution_id,
                           {"end_date": now, **changes})
        if moved and status is StepExecutionStatus.FAILED:
            _plan_retry(svc, execution_id, row, now)
    if moved and status is StepExecutionStatus.SUCCEEDED and row.cache_key:
        from . import step_cache

        step_cache.record(execution_id, step_name, row.cache_key, changes.get("outputs", []),
                          outputs_kind(step_name))
    if moved:
        advance(svc, execution_id)
    return moved


def _plan_retry(svc, execution_id: str, row: StepExecution, failed_at) -> None:
    execution = Execution.get_or_none(Execution.execution_id == execution_id)
    if execution is None or execution.status not in ACTIVE or svc.stopping.is_set():
        return
    max_retries, first_delay_s = (execution.step_info.get("retries") or {}).get(
        row.step_name, (0, 0))
    if row.attempt > max_retries:
        return
    delay = timedelta(seconds=retry_delay_s(first_delay_s, row.attempt))
    StepExecution.insert(
        execution=execution_id, step_name=row.step_name, position=row.position,
        attempt=row.attempt + 1, status=StepExecutionStatus.PENDING.value, inputs=row.inputs,
        # A backend running the graph retries the task itself: its pod keeps the token.
        token_hash=row.token_hash if execution.step_info.get("backend_runs_graph") else None,
        retry_at=failed_at + delay).on_conflict_ignore().execute()


def resume_retries(svc) -> int:
    """At start-up, when executions outlive a restart: the retries they wait for get their
    wake-ups again (advance asks for them)."""
    waiting = list(StepExecution.select(StepExecution.execution).distinct().where(
        (StepExecution.status == StepExecutionStatus.PENDING.value)
        & StepExecution.retry_at.is_null(False)).tuples())
    for (execution_id,) in waiting:
        advance(svc, execution_id)
    return len(waiting)


def step_started(execution_id: str, step_name: str, pid: int | None,
                 pid_started_at: float | None, attempt: int = 1) -> None:
    row = step_row(execution_id, step_name, attempt)
    if row is not None:
        StepExecution.update(pid=pid, pid_started_at=pid_started_at).where(
            StepExecution.id == row.id).execute()


def step_exited(svc, execution_id: str, step_name: str, return_code: int, detail: str,
                attempt: int = 1) -> None:
    reason = f"The runner exited with code {return_code} before reporting a result"
    if detail:
        reason += f": {detail[-4000:]}"
    step_ended(svc, execution_id, step_name, StepExecutionStatus.FAILED, {"error": reason},
               attempt)


def finish_step(svc, execution: Execution, row: StepExecution, payload: dict) -> str:
    """A step runner's final report (its /finish call or a backend's answer); the status
    recorded."""
    from .executions import failure_message, parse_final_status

    status = parse_final_status(payload)
    step = step_of(execution, row.step_name)
    outputs: list[dict] = []
    message = None
    if status is ExecutionStatus.SUCCEEDED:
        try:
            outputs = _checked_outputs(svc, execution.execution_id, step, payload.get("outputs"))
        except BadRequest as exc:
            status, message = ExecutionStatus.FAILED, f"Invalid outputs: {exc.message}"
    else:
        message = failure_message(payload.get("error"))
    resources = payload.get("resources") or {}
    target = StepExecutionStatus(status.value)
    if not step_ended(svc, execution.execution_id, row.step_name, target,
                      {"error": message, "outputs": outputs,
                       "cpu_time_s": resources.get("cpu_time_s"),
                       "peak_rss_bytes": resources.get("peak_rss_bytes")}, row.attempt):
        raise BadRequest("The step has already ended")
    return target.value


def _step_answered(svc, execution_id: str, step_name: str, attempt: int,
                   answer: Future) -> None:
    """A step's resident runner answered (in the backend's thread, or the caller's)."""
    with svc.state.bound(), db_session():
        record_step_answer(svc, execution_id, step_name, answer.result(), attempt)


def record_step_answer(svc, execution_id: str, step_name: str, answer: Answer,
                       attempt: int = 1) -> None:
    """The answer about one attempt of the step (a runner that died: a failed attempt)."""
    if answer.payload is None:
        step_exited(svc, execution_id, step_name, answer.return_code, answer.detail, attempt)
    else:
        record_step_result(svc, execution_id, step_name, answer.payload, attempt)


def record_step_result(svc, execution_id: str, step_name: str, payload: dict,
                       attempt: int = 1) -> None:
    """A backend's answer for one attempt of a step: recorded like the runner's /finish."""
    execution = Execution.get_or_none(Execution.execution_id == execution_id)
    row = step_row(execution_id, step_name, attempt)
    if execution is None or row is None or row.status not in ACTIVE:
        return
    try:
        if isinstance(payload, dict) and payload.get("logs"):  # the lines a resident runner's answer carries
            from .executions import record_logs

            record_logs(execution, payload["logs"], step_name, attempt)
        finish_step(svc, execution, row, payload)
    except BadRequest as exc:
        step_ended(svc, execution_id, step_name, StepExecutionStatus.FAILED,
                   {"error": f"Invalid result from the runner: {exc.message}"}, attempt)


def _checked_outputs(svc, execution_id: str, step, values: Any) -> list[dict]:
    values = values or {}
    if not isinstance(values, dict):
        raise BadRequest("'outputs' must be an object")
    items, non_file = [], {}
    for decl in step.outputs:
        name, data_type = decl["name"], decl["data_type"]
        if data_type == "file":
            path = svc.artifacts.execution_file(execution_id, outputs_kind(step.name), name)
            if not path.exists():
                raise BadRequest(f"File output '{name}' was not uploaded")
            items.append({"name": name, "data_type": data_type, "value": None})
            continue
        if name not in values:
            raise BadRequest(f"Output '{name}' is missing")
        value = values[name]
        if value is not None:
            check_value(data_type, value, name)
        non_file[name] = value
        items.append({"name": name, "data_type": data_type, "value": value})
    check_total_size(non_file, "outputs")
    return items


def end_steps(svc, execution_id: str, reason: str) -> None:
    """The execution ended from outside (server stop, start failure): no step stays active.
    A step waiting for its retry fails with the reason (it had started: it is no skip)."""
    now = utcnow()
    for row in StepExecution.select().where((StepExecution.execution == execution_id)
                                            & (StepExecution.status.in_(ACTIVE))):
        if row.status == StepExecutionStatus.PENDING.value and row.attempt > 1:
            transition(svc, StepExecution, {"id": row.id}, StepExecutionStatus.FAILED,
                       execution_id, {"end_date": now,
                                      "error": f"{reason} (the step waited for its retry)"})
        elif row.status == StepExecutionStatus.PENDING.value:
            transition(svc, StepExecution, {"id": row.id}, StepExecutionStatus.SKIPPED,
                       execution_id, {"end_date": now})
        else:
            transition(svc, StepExecution, {"id": row.id}, StepExecutionStatus.FAILED,
                       execution_id, {"end_date": now, "error": reason})


def steps_view(execution: Execution, rows: list[StepExecution] | None) -> list[dict]:
    """`steps` of an execution record: per step, its status, dates, inputs and outputs."""
    from .times import iso

    if rows is None:  # a single-step pipeline: the execution is its step, run once
        return [{
            **execution.step_info,
            "name": execution.step_info.get("name") or execution.step_name,
            "step_name": execution.step_info.get("name") or execution.step_name,
            # A result the step cache gave: the step did not run.
            "status": (StepExecutionStatus.CACHED.value if execution.step_info.get("cached_from")
                       and execution.status == ExecutionStatus.SUCCEEDED.value
                       else execution.status),
            "start_date": iso(execution.start_date), "end_date": iso(execution.end_date),
            "attempt": 1, "max_attempts": 1,
            "attempts": [{"number": 1, "status": execution.status,
                          "start_date": iso(execution.start_date),
                          "end_date": iso(execution.end_date), "error": execution.error}],
        }]
    retries = execution.step_info.get("retries") or {}
    attempts: dict[str, list[StepExecution]] = {}
    for r in rows:
        attempts.setdefault(r.step_name, []).append(r)
    return [{
        "name": name, "step_name": name, "status": tries[-1].status,
        # The step began with its first attempt and ends with its last.
        "start_date": iso(tries[0].start_date), "end_date": iso(tries[-1].end_date),
        "error": tries[-1].error, "inputs": tries[-1].inputs, "outputs": tries[-1].outputs,
        "attempt": tries[-1].attempt,
        "max_attempts": (retries.get(name) or [0])[0] + 1,
        "attempts": [{"number": r.attempt, "status": r.status,
                      "start_date": iso(r.start_date), "end_date": iso(r.end_date),
                      "error": r.error, "retry_at": iso(r.retry_at)} for r in tries],
        **_origin_view(tries[-1]),
    } for name, tries in attempts.items()]


def _origin_view(row: StepExecution) -> dict:
    """A step that took another execution's result says whose: `reused_from` (a re-run)
    or `cached_from` (the step cache), and whether that execution holds metrics."""
    if row.origin_execution_id is None:
        return {}
    key = "reused_from" if row.status == StepExecutionStatus.REUSED.value else "cached_from"
    return {key: row.origin_execution_id, "origin_execution_id": row.origin_execution_id,
            "metrics_in_origin": bool(row.metrics_in_origin)}


def rows_for(execution_ids: list[str]) -> dict[str, list[StepExecution]]:
    found: dict[str, list[StepExecution]] = {}
    for start_at in range(0, len(execution_ids), 500):
        chunk = execution_ids[start_at:start_at + 500]
        for row in (StepExecution.select().where(StepExecution.execution.in_(chunk))
                    .order_by(StepExecution.position, StepExecution.attempt)):
            found.setdefault(row.execution_id, []).append(row)
    return found


def cancel_steps(svc, execution_id: str) -> None:
    for row in StepExecution.select(StepExecution.step_name, StepExecution.attempt).where(
            StepExecution.execution == execution_id):
        svc.orchestrator.cancel_execution(run_key(execution_id, row.step_name, row.attempt))


def recover(svc, execution: Execution) -> None:
    """Restart recovery: runners of a stopped server's steps are killed."""
    for row in StepExecution.select().where((StepExecution.execution == execution.execution_id)
                                            & (StepExecution.status.in_(ACTIVE))):
        key = run_key(execution.execution_id, row.step_name, row.attempt)
        if svc.orchestrator.is_alive(key, row.pid, row.pid_started_at):
            svc.orchestrator.cancel_execution(key)

