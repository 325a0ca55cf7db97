"""Re-running an execution from one of its steps.

A re-run is a NEW execution of the same pipeline with the origin's inputs (values as
recorded, files shared from the origin's folder: hard links, so deleting the origin later
leaves the re-run whole) and its output mappings, linked to the same deployment name (so
it is listed with the deployment's executions; it runs as an elastic run whatever the
deployment's mode).

Which steps run again: `from_step` and every step downstream of it. Every other step that
ended with a result in the origin (Succeeded, or itself Reused/Cached) is Reused: its
recorded outputs, files included, are taken without running it. That is its ancestors, and
also the branches that do not depend on `from_step` (they would compute the same thing).
A step that failed or was skipped in the origin runs. The steps that run do not take a
result from the step cache: running them is what a re-run is asked for. `from_step`
defaults to the first failed step of the origin (in the pipeline's order); when none
failed, everything runs again. A single-step pipeline re-runs its step."""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, Conflict
from ..store.models import Environment, Execution, StepExecution
from .lifecycle import ACTIVE, STEP_DONE, StepExecutionStatus
from .step_cache import TakenResult


def reused_result(execution: Execution, step_name: str) -> TakenResult | None:
    """The origin's result of a step this re-run reuses; None when it runs (or the origin,
    deleted meanwhile, has it no more)."""
    from .graph_runs import outputs_kind, step_row

    origin_id = (execution.step_info.get("reuse") or {}).get(step_name)
    if origin_id is None:
        return None
    row = step_row(origin_id, step_name)
    if row is None or row.status not in STEP_DONE:
        return None
    return TakenResult(origin_id, row.outputs, outputs_kind(step_name))


def _last_attempts(origin_id: str) -> list[StepExecution]:
    """Each step's newest attempt (it speaks for the step), in the pipeline's order."""
    from .graph_runs import rows_of

    return list({r.step_name: r for r in rows_of(origin_id)}.values())


def _first_failed(origin_id: str) -> str | None:
    return next((r.step_name for r in _last_attempts(origin_id)
                 if r.status == StepExecutionStatus.FAILED.value), None)


def rerun(svc, environment: Environment, user_id: str, origin: Execution,
          from_step: Any = None) -> Execution:
    """Start the re-run of `origin` from `from_step` (module docstring)."""
    from .executions import new_execution_id, start_execution
    from .pipelines import get_pipeline, graph_of, is_multi_step, not_ready, steps_of

    if from_step is not None and not isinstance(from_step, str):
        raise BadRequest("'from_step' must be a step name or null", {"field": "from_step"})
    if origin.status in ACTIVE:
        raise Conflict(f"Execution '{origin.execution_id}' is still {origin.status}: re-run "
                       "it once it has ended", {"execution_id": origin.execution_id,
                                                "status": origin.status})
    pipeline = get_pipeline(environment, origin.pipeline_name)
    names = [s.name for s in steps_of(pipeline)]
    if from_step is not None and from_step not in names:
        raise BadRequest(f"Pipeline '{pipeline.name}' has no step '{from_step}'",
                         {"field": "from_step", "from_step": from_step, "steps": names})
    step = not_ready(pipeline)
    if step is not None:
        raise BadRequest(f"Pipeline '{pipeline.name}' is not ready (step '{step.name}' "
                         f"status {step.status})", {"pipeline_name": pipeline.name,
                                                    "step_name": step.name})
    # What is asked to run again runs, even where the step cache holds a result.
    run_info: dict[str, Any] = {"rerun_of": origin.execution_id, "use_cache": False}
    if is_multi_step(pipeline) and "steps" in (origin.step_info or {}):
        start = from_step or _first_failed(origin.execution_id)
        again = {start} | graph_of(pipeline).downstream(start) if start else set(names)
        run_info["from_step"] = start
        run_info["reuse"] = {r.step_name: origin.execution_id
                             for r in _last_attempts(origin.execution_id)
                             if r.step_name not in again and r.status in STEP_DONE}
    else:
        run_info["from_step"] = names[0]
    execution_id = new_execution_id(svc, pipeline.name)
    svc.artifacts.share_execution_files(origin.execution_id, "inputs", execution_id, "inputs")
    inputs = [dict(item) for item in origin.inputs]
    job_inputs = {}
    for item in inputs:
        name = item["pipeline_input_name"]
        if item["data_type"] == "file":
            path = svc.artifacts.execution_file(execution_id, "inputs", name)
            job_inputs[name] = {"path": str(path)} if path.is_file() else None
        else:
            job_inputs[name] = item.get("value")
    outputs = [{**item, "value": None} for item in origin.outputs]
    return start_execution(svc, environment, user_id, pipeline, execution_id, inputs,
                           job_inputs, outputs, deployment_name=origin.deployment_name,
                           run_info=run_info)
