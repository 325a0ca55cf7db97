"""The step cache: a step created with `cache_results` does not run again when an earlier
successful run of it had the same key, its outputs (files included) are taken instead.

The key is a SHA-256 over canonical JSON of
  * the step: its environment, name, function, declared inputs and outputs;
  * its code: the hash of its files (artifacts.files_hash, recorded at creation);
  * its environment: language, requirements path, system dependencies, Dockerfile, and
    the built environment's key (the venv key holds the requirements' contents, an image
    reference the image);
  * its inputs: values as canonical JSON, files by the SHA-256 of their contents (recorded
    when the file was written, artifacts.save_execution_file).
Environment variables are not part of it: they are the environment's settings, not the
step's inputs (a step that must see their change should take them as inputs).

A StepCache row is made when a step with a key succeeds; it belongs to that execution and
goes with it (delete_for_executions, called inside the executions' deletion)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..store.models import ListMetric, Metric, Step, StepCache


@dataclass(frozen=True)
class TakenResult:
    """A result a step takes instead of running: from whom, and what."""

    origin_execution_id: str
    outputs: list[dict]  # [{"name", "data_type", "value"}]
    files_kind: str  # where the origin keeps the step's file outputs


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def code_hash(svc, step: Step) -> str:
    """The hash of the step's files; computed once for a step stored before it was kept."""
    if step.code_hash:
        return step.code_hash
    from ..artifacts import files_hash

    archive = svc.artifacts.step_archive(step.id)
    value = files_hash(archive.read_bytes()) if archive.is_file() else "no-archive"
    Step.update(code_hash=value).where(Step.id == step.id).execute()
    step.code_hash = value
    return value


def key_of(svc, step: Step, values: dict[str, Any], file_hashes: dict[str, str | None]) -> str:
    """The cache key of one run of `step` with these input values and file hashes."""
    config = step.container_config or {}
    document = {
        "environment_id": step.environment_id, "step": step.name,
        "function": [step.function_path, step.function_name],
        "declared": [step.inputs, step.outputs],
        "code": code_hash(svc, step),
        "runtime": [config.get("language"), config.get("requirements_path"),
                    sorted(config.get("system_dependencies") or []),
                    config.get("dockerfile_path"), step.env_key],
        "values": values, "files": file_hashes,
    }
    return hashlib.sha256(canonical(document).encode()).hexdigest()


def lookup(svc, key: str) -> TakenResult | None:
    """The newest successful run with this key whose files are all still there."""
    for entry in (StepCache.select().where(StepCache.key == key)
                  .order_by(StepCache.created_at.desc()).limit(5)):
        origin = entry.execution_id
        files = [o["name"] for o in entry.outputs if o["data_type"] == "file"]
        if all(svc.artifacts.execution_file(origin, entry.files_kind, name).is_file()
               for name in files):
            return TakenResult(origin, entry.outputs, entry.files_kind)
    return None


def record(execution_id: str, step_name: str, key: str, outputs: list[dict],
           files_kind: str) -> None:
    StepCache.create(key=key, execution=execution_id, step_name=step_name, outputs=outputs,
                     files_kind=files_kind)


def has_metrics(execution_id: str) -> bool:
    """Whether an execution recorded metrics (a step taking its result says they stay
    there: metrics belong to the execution that recorded them)."""
    return (Metric.select().where(Metric.execution_id == execution_id).exists()
            or ListMetric.select().where(ListMetric.execution_id == execution_id).exists())


def delete_for_executions(execution_ids: list[str]) -> None:
    """Cache entries of deleted executions: a later run runs. Called in the transaction
    that deletes the executions."""
    for start in range(0, len(execution_ids), 500):
        StepCache.delete().where(StepCache.execution.in_(execution_ids[start:start + 500])
                                 ).execute()
