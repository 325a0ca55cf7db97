"""Deployments and their endpoints (contract §6.5, §6.6)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from ...domain.deployments import MAX_REPLICAS, RAM
from ...domain.names import RESOURCE_NAME, RESOURCE_NAME_RULE
from . import MAX_INT, AnyJson, LogLine, Out, Strict, matching, resource_name, whole

_RANGE = ma.validate.Range


class DeploymentCreate(Strict):
    """POST /endpoints (endpoint rule) and /periodic-deployment (periodic rule)."""

    name = resource_name(required=True)
    pipeline_name = fields.String(required=True)
    mode = fields.String(validate=ma.validate.OneOf(["elastic", "low_latency"]))
    description = fields.String(allow_none=True)
    enable_parallel_executions = fields.Boolean()
    use_cache = fields.Boolean(truthy={True}, falsy={False}, allow_none=True, metadata={
        "description": "false: every step of its executions runs, none takes a cached "
                       "result (default true)"})
    max_parallel_executions_per_pod = fields.Integer(strict=True, allow_none=True,
                                                     validate=_RANGE(min=1, max=256))
    replicas = fields.Integer(strict=True, allow_none=True, validate=_RANGE(min=1, max=MAX_REPLICAS))
    ram_request = matching(whole(RAM), "Looks like '512MiB' or '1GiB'.", allow_none=True,
                           metadata={"example": "512MiB"})
    gpu_request = fields.Integer(strict=True, allow_none=True, validate=_RANGE(min=0, max=16))
    schedule = fields.String(allow_none=True, metadata={"description": "Cron (periodic rule)"})
    # Empty or null: the deployment's name / a generated token.
    endpoint_url_path = matching(rf"^(?:{RESOURCE_NAME.pattern[1:-1]})?(?![\s\S])",
                                 RESOURCE_NAME_RULE, allow_none=True)
    endpoint_token = matching(r"^(?:[\s\S]{16,})?(?![\s\S])", "Must be at least 16 characters.",
                              allow_none=True)
    execution_timeout_s = fields.Integer(strict=True, allow_none=True,
                                         validate=_RANGE(min=1, max=MAX_INT))
    inputs_mapping = fields.List(fields.Dict(), allow_none=True)
    outputs_mapping = fields.List(fields.Dict(), allow_none=True)


class DeploymentUpdate(Strict):
    """An empty body reloads the deployment's runners."""

    is_enabled = fields.Boolean()
    schedule = fields.String()
    inputs_mapping = fields.List(fields.Dict())
    outputs_mapping = fields.List(fields.Dict())


class WaitQuery(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    wait_for_completion = fields.Boolean(load_default=False, metadata={
        "description": "Hold while creation_pending or down_retrying (long-poll)"})


class _PipelineRef(Out):
    name = fields.String(required=True)


class DeploymentView(Out):
    name = fields.String(required=True)
    mode = fields.String(required=True)
    pipeline = fields.Nested(_PipelineRef, required=True)
    execution_rule = fields.String(required=True, metadata={"enum": ["endpoint", "periodic"]})
    inputs_mapping = fields.List(fields.Dict(), required=True)
    outputs_mapping = fields.List(fields.Dict(), required=True)
    status = fields.String(required=True, metadata={"enum": [
        "creation_pending", "up", "down_retrying", "creation_failed", "disabled", "standby"]})
    is_enabled = fields.Boolean(required=True)
    use_cache = fields.Boolean(required=True)
    description = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True)
    created_by = fields.String(required=True, allow_none=True)
    updated_at = fields.String(required=True)
    updated_by = fields.String(required=True, allow_none=True)
    endpoint_url_path = fields.String()
    endpoint_token = fields.String(allow_none=True, metadata={"description": "null for viewers"})
    schedule = fields.String()
    human_readable_schedule = fields.String(allow_none=True)


class DeploymentSummary(Out):
    name = fields.String(required=True)
    pipeline_name = fields.String(required=True)
    execution_rule = fields.String(required=True)
    mode = fields.String(required=True)
    is_enabled = fields.Boolean(required=True)
    status = fields.String(required=True)
    created_at = fields.String(required=True)


class DeploymentDeleted(Out):
    name = fields.String(required=True)
    execution_rule = fields.String(required=True)


class DeploymentLogLine(LogLine):
    pod_id = fields.String(allow_none=True)
    type = fields.String()


class EndpointToken(Out):
    endpoint_token = fields.String(required=True)


class EndpointOutputs(Out):
    outputs = fields.Dict(keys=fields.String(), values=AnyJson(), required=True)
    execution_id = fields.String(required=True)


ENDPOINT_INPUTS = {"requestBody": {"required": False, "content": {
    "application/json": {"schema": {"type": "object", "additionalProperties": True,
                                    "description": "Endpoint inputs by name"}},
    "multipart/form-data": {"schema": {
        "type": "object", "description": "File inputs as file parts; other inputs as fields "
                                         "holding JSON text",
        "additionalProperties": {"type": "string", "format": "binary"}}},
}}}
