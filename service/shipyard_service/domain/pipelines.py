"""Pipelines: a graph of steps (graph.py holds its rules), created from existing steps, or
a single step created straight from a function."""

from __future__ import annotations

import peewee

from ..errors import Conflict, NotFound
from ..store.db import database
from ..store.models import Environment, Execution, Pipeline, PipelineStep, Step
from .graph import Graph, as_declarations, build_graph, check_step_names, parse_connections
from .names import check_resource_name
from .steps import creation_info, get_step, step_parameters
from .times import iso


def _ensure_free(environment: Environment, name: str) -> None:
    if Pipeline.select().where(
        (Pipeline.environment == environment) & (Pipeline.name == name)
    ).exists():
        raise Conflict(f"Pipeline '{name}' already exists", {"pipeline_name": name})


def create_from_step(environment: Environment, user_id: str, data: dict) -> Pipeline:
    """From existing steps: `step_names` (one or more) and `connections` between them."""
    name = check_resource_name(data.get("pipeline_name"), "pipeline_name")
    step_names = check_step_names(data.get("step_names"))
    pairs = parse_connections(data.get("connections"))
    steps = [get_step(environment, step_name) for step_name in step_names]
    if len(steps) == 1 and not pairs:
        _ensure_free(environment, name)
        try:
            return Pipeline.create(environment=environment, name=name, step=steps[0],
                                   created_by=user_id)
        except peewee.IntegrityError as exc:
            raise Conflict(f"Pipeline '{name}' already exists", {"pipeline_name": name}) from exc
    graph = build_graph(step_names, {s.name: {"inputs": s.inputs, "outputs": s.outputs}
                                     for s in steps}, pairs)
    _ensure_free(environment, name)
    try:
        with database.atomic():
            pipeline = Pipeline.create(
                environment=environment, name=name, step=steps[0], created_by=user_id,
                connections=[c.as_dict() for c in graph.connections])
            PipelineStep.insert_many([{"pipeline": pipeline.id, "step": step.id,
                                       "position": index}
                                      for index, step in enumerate(steps)]).execute()
    except peewee.IntegrityError as exc:
        raise Conflict(f"Pipeline '{name}' already exists", {"pipeline_name": name}) from exc
    return pipeline


def is_multi_step(pipeline: Pipeline) -> bool:
    return pipeline.connections is not None


def steps_of(pipeline: Pipeline) -> list[Step]:
    """The pipeline's steps in their given order."""
    if not is_multi_step(pipeline):
        return [pipeline.step]
    cached = getattr(pipeline, "_steps", None)
    if cached is None:
        cached = list(Step.select().join(PipelineStep, on=(PipelineStep.step == Step.id))
                      .where(PipelineStep.pipeline == pipeline.id)
                      .order_by(PipelineStep.position))
        pipeline._steps = cached
    return cached


def graph_of(pipeline: Pipeline) -> Graph:
    steps = steps_of(pipeline)
    pairs = [(c["source"], c["target"]) for c in pipeline.connections or []]
    return build_graph([s.name for s in steps],
                       {s.name: {"inputs": s.inputs, "outputs": s.outputs} for s in steps}, pairs)


def pipeline_io(pipeline: Pipeline) -> tuple[list[dict], list[dict]]:
    """The pipeline's own input and output declarations: its open I/O."""
    if not is_multi_step(pipeline):
        return pipeline.step.inputs, pipeline.step.outputs
    return as_declarations(graph_of(pipeline))


def not_ready(pipeline: Pipeline) -> Step | None:
    """The first step that is not built (or None: the pipeline can run)."""
    return next((s for s in steps_of(pipeline) if s.status != "ready"), None)


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
    if not is_multi_step(pipeline):
        return {
            "pipeline_name": pipeline.name,
            "created_at": iso(pipeline.created_at),
            "steps": [step.name],
            "connections": [],
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
    steps = steps_of(pipeline)
    graph = graph_of(pipeline)
    waiting = not_ready(pipeline)
    info.update(status=waiting.status if waiting else "ready",
                error=waiting.error if waiting else None)
    inputs, outputs = as_declarations(graph)
    return {
        "pipeline_name": pipeline.name,
        "created_at": iso(pipeline.created_at),
        "steps": [s.name for s in steps],
        "connections": [c.as_dict() for c in graph.connections],
        "open_inputs": [
            {"input_name": i["name"], "step_name": step_name, "data_type": i["data_type"]}
            for i in graph.open_inputs for step_name in i["steps"]
        ],
        "open_outputs": [
            {"output_name": o["name"], "step_name": o["step_name"], "data_type": o["data_type"]}
            for o in graph.open_outputs
        ],
        "parameters": {"pipeline_name": pipeline.name, "step_names": [s.name for s in steps],
                       "connections": [c.as_dict() for c in graph.connections],
                       "inputs": inputs, "outputs": outputs},
        "creation_info": info,
    }


def list_pipelines(environment: Environment) -> list[dict]:
    query = (
        Pipeline.select(Pipeline, Step).join(Step)
        .where(Pipeline.environment == environment).order_by(Pipeline.created_at)
    )
    return [
        {"pipeline_name": p.name, "created_at": iso(p.created_at),
         "status": (not_ready(p) or p.step).status if is_multi_step(p) else p.step.status,
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
