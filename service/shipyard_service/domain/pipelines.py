"""Pipelines: single-step today; created from a step or straight from a function."""

from __future__ import annotations

import peewee

from ..errors import BadRequest, Conflict, NotFound
from ..store.models import Environment, Execution, Pipeline, Step
from .names import check_resource_name
from .steps import creation_info, get_step, step_parameters
from .times import iso


def _ensure_free(environment: Environment, name: str) -> None:
    if Pipeline.select().where(
        (Pipeline.environment == environment) & (Pipeline.name == name)
    ).exists():
        raise Conflict(f"Pipeline '{name}' already exists", {"pipeline_name": name})


def create_from_step(environment: Environment, user_id: str, data: dict) -> Pipeline:
    name = check_resource_name(data.get("pipeline_name"), "pipeline_name")
    step_names = data.get("step_names")
    if isinstance(step_names, str):
        step_names = [step_names]
    if not isinstance(step_names, list) or len(step_names) != 1:
        raise BadRequest(
            "'step_names' must hold exactly one step name (pipelines have one step today)",
            {"field": "step_names"},
        )
    step = get_step(environment, step_names[0])
    _ensure_free(environment, name)
    try:
        return Pipeline.create(environment=environment, name=name, step=step, created_by=user_id)
    except peewee.IntegrityError as exc:
        raise Conflict(f"Pipeline '{name}' already exists", {"pipeline_name": name}) from exc


def create_from_function(svc, environment: Environment, user_id: str, data: dict,
                         archive: bytes | None) -> Pipeline:
    from .steps import create_step

    name = check_resource_name(data.get("pipeline_name"), "pipeline_name")
    _ensure_free(environment, name)
    step = create_step(svc, environment, user_id, data, archive, from_form=True,
                       internal=True, name_field="pipeline_name")
    try:
        return Pipeline.create(environment=environment, name=name, step=step, created_by=user_id)
    except peewee.IntegrityError as exc:
        step.delete_instance()
        svc.artifacts.delete_step(step.id)
        raise Conflict(f"Pipeline '{name}' already exists", {"pipeline_name": name}) from exc


def get_pipeline(environment: Environment, name: str) -> Pipeline:
    pipeline = (
        Pipeline.select(Pipeline, Step).join(Step)
        .where((Pipeline.environment == environment) & (Pipeline.name == name)).first()
    )
    if pipeline is None:
        raise NotFound(f"Pipeline '{name}' not found", {"pipeline_name": name})
    return pipeline


def pipeline_to_dict(pipeline: Pipeline) -> dict:
    step = pipeline.step
    info = creation_info(step)
    info.update(created_at=iso(pipeline.created_at), created_by=pipeline.created_by)
    return {
        "pipeline_name": pipeline.name,
        "created_at": iso(pipeline.created_at),
        "steps": [step.name],
        "open_inputs": [
            {"input_name": i["name"], "step_name": step.name, "data_type": i["data_type"]}
            for i in step.inputs
        ],
        "open_outputs": [
            {"output_name": o["name"], "step_name": step.name, "data_type": o["data_type"]}
            for o in step.outputs
        ],
        "parameters": {"pipeline_name": pipeline.name, **step_parameters(step)},
        "creation_info": info,
    }


def list_pipelines(environment: Environment) -> list[dict]:
    query = (
        Pipeline.select(Pipeline, Step).join(Step)
        .where(Pipeline.environment == environment).order_by(Pipeline.created_at)
    )
    return [
        {"pipeline_name": p.name, "created_at": iso(p.created_at), "status": p.step.status,
         "created_by": p.created_by}
        for p in query
    ]


def delete_pipeline(svc, pipeline: Pipeline, force_deployments: bool) -> dict:
    from .deployments import deployments_of_pipeline

    deployments = deployments_of_pipeline(pipeline)
    if deployments and not force_deployments:
        raise Conflict(
            f"Pipeline '{pipeline.name}' has deployments; delete them first or force the deletion",
            {"deployments": deployments},
        )
    delete_pipeline_cascade(svc, pipeline)
    return {"pipeline": {"name": pipeline.name}, "deployments": deployments}


def delete_pipeline_cascade(svc, pipeline: Pipeline) -> None:
    from ..store.models import Deployment
    from .deployments import delete_deployment
    from .executions import delete_many

    for deployment in Deployment.select().where(Deployment.pipeline == pipeline):
        delete_deployment(svc, deployment)
    delete_many(svc, [e.execution_id for e in Execution.select(Execution.execution_id).where(
        (Execution.environment == pipeline.environment_id)
        & (Execution.pipeline_name == pipeline.name))])
    step = pipeline.step
    pipeline.delete_instance()
    if step.internal:
        step.delete_instance(recursive=True)
        svc.artifacts.delete_step(step.id)
