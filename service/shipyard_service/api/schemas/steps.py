"""Steps and pipelines: creation bodies, views, logs (contract §6.2, §6.3)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from ...domain.steps import MAX_RETRIES, MAX_RETRY_DELAY_S
from . import AnyJson, Body, FormInteger, Out, Query, resource_name


class _Creation(Body):
    """Decoded from JSON or from bracketed form fields (every leaf then is text)."""

    function_path = fields.String(allow_none=True)
    function_name = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    container_config = fields.Dict(allow_none=True, metadata={
        "description": "language, repository_url, repository_branch, included_folders, "
                       "requirements_path, system_dependencies, dockerfile_path, local_folder; "
                       "an absent key falls back to the project default, an empty one is null"})
    inputs = fields.List(fields.Dict(), allow_none=True,
                         metadata={"description": "{name, data_type, is_required, "
                                                  "default_value, description}"})
    outputs = fields.List(fields.Dict(), allow_none=True,
                          metadata={"description": "{name, data_type, description}"})
    max_retries = FormInteger(allow_none=True, validate=ma.validate.Range(0, MAX_RETRIES),
                              metadata={"description": "How many times a failed run of the "
                                                       "step is tried again (default 0)"})
    retry_delay_s = FormInteger(allow_none=True, validate=ma.validate.Range(0, MAX_RETRY_DELAY_S),
                                metadata={"description": "Seconds before the first retry; "
                                                         "each next one waits twice as long"})
    cache_results = fields.Boolean(allow_none=True, metadata={
        "description": "Reuse the outputs of an earlier successful run with the same code, "
                       "environment and inputs instead of running (default false)"})


class StepCreation(_Creation):
    step_name = resource_name(required=True)


class PipelineCreation(_Creation):
    pipeline_name = resource_name(required=True)
    # A list of names, or one name: checked by the graph rules (domain/graph.py).
    step_names = fields.Raw(metadata={
        "description": "JSON only: a pipeline from existing steps instead of a function",
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]})
    connections = fields.List(fields.Dict(), allow_none=True, error_messages={
        "invalid": "'connections' must be a list of {{source, target}}"}, metadata={
        "description": "With step_names: which step output feeds which step input"})


class WaitQuery(Query):
    wait_for_completion = fields.Boolean(load_default=False, metadata={
        "description": "Hold while the build is pending (long-poll), then answer"})


class StepDeleteQuery(Query):
    force_dependents_deletion = fields.Boolean(load_default=False)


class PipelineDeleteQuery(Query):
    force_deployments_deletion = fields.Boolean(load_default=False)


class StepCreated(Out):
    step_name = fields.String(required=True)
    status = fields.String(required=True)


class StepSummary(Out):
    step_name = fields.String(required=True)
    status = fields.String(required=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    origin = fields.String(required=True)
    repository_url = fields.String(required=True, allow_none=True)
    repository_branch = fields.String(required=True, allow_none=True)
    commit_id = fields.String(required=True, allow_none=True)


class Declaration(Out):
    name = fields.String(required=True)
    data_type = fields.String(required=True)
    description = fields.String(allow_none=True)
    is_required = fields.Boolean()
    default_value = AnyJson()


class Parameters(Out):
    function_path = fields.String(required=True, allow_none=True)
    function_name = fields.String(required=True, allow_none=True)
    description = fields.String(required=True, allow_none=True)
    inputs = fields.List(fields.Nested(Declaration), required=True)
    outputs = fields.List(fields.Nested(Declaration), required=True)
    container_config = fields.Dict(required=True)
    max_retries = fields.Integer()
    retry_delay_s = fields.Integer()
    cache_results = fields.Boolean()


class StepParameters(Parameters):
    step_name = fields.String(required=True)


class PipelineParameters(Out):
    """A one-step pipeline's are its step's; a multi-step one's name its steps."""

    pipeline_name = fields.String(required=True)
    inputs = fields.List(fields.Nested(Declaration), required=True)
    outputs = fields.List(fields.Nested(Declaration), required=True)
    function_path = fields.String(allow_none=True)
    function_name = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    container_config = fields.Dict()
    max_retries = fields.Integer()
    retry_delay_s = fields.Integer()
    cache_results = fields.Boolean()
    step_names = fields.List(fields.String())
    connections = fields.List(fields.Dict())


class CreationInfo(Out):
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    created_by = fields.String(required=True, allow_none=True)
    updated_by = fields.String(required=True, allow_none=True)
    commit_id = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, metadata={
        "enum": ["creation_pending", "ready", "creation_failed"]})
    origin = fields.String(required=True)
    error = AnyJson(required=True)


class StepView(Out):
    parameters = fields.Nested(StepParameters, required=True)
    creation_info = fields.Nested(CreationInfo, required=True)


class StepDeleted(Out):
    step_name = fields.String(required=True)


class SignedUrl(Out):
    signed_url = fields.String(required=True)


class BuildLogLine(Out):
    timestamp = fields.String(required=True)
    message = fields.String(required=True)


class OpenInput(Out):
    input_name = fields.String(required=True)
    step_name = fields.String(required=True)
    data_type = fields.String(required=True)


class OpenOutput(Out):
    output_name = fields.String(required=True)
    step_name = fields.String(required=True)
    data_type = fields.String(required=True)


class PipelineView(Out):
    pipeline_name = fields.String(required=True)
    created_at = fields.String(required=True)
    steps = fields.List(fields.String(), required=True)
    connections = fields.List(fields.Dict(), required=True)
    open_inputs = fields.List(fields.Nested(OpenInput), required=True)
    open_outputs = fields.List(fields.Nested(OpenOutput), required=True)
    parameters = fields.Nested(PipelineParameters, required=True)
    creation_info = fields.Nested(CreationInfo, required=True)


class PipelineSummary(Out):
    pipeline_name = fields.String(required=True)
    created_at = fields.String(required=True)
    status = fields.String(required=True)
    created_by = fields.String(required=True, allow_none=True)


class DeploymentRef(Out):
    name = fields.String(required=True)
    execution_rule = fields.String(required=True)


class _PipelineName(Out):
    name = fields.String(required=True)


class PipelineDeleted(Out):
    pipeline = fields.Nested(_PipelineName, required=True)
    deployments = fields.List(fields.Nested(DeploymentRef), required=True)
