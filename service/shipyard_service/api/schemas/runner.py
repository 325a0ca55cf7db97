"""Runner callbacks (docs/runner-protocol.md): internal routes, not used by clients."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from . import MAX_INT, AnyJson, Body, Out


class LogsBody(Body):
    logs = fields.List(fields.Dict(), required=True,
                       metadata={"description": "{timestamp, stream, message} entries"})


class DeploymentLogsBody(LogsBody):
    pod_id = fields.String(allow_none=True)


class _Resources(Body):
    cpu_time_s = fields.Float(allow_none=True, allow_nan=False,
                              validate=ma.validate.Range(min=0))
    peak_rss_bytes = fields.Integer(allow_none=True, validate=ma.validate.Range(min=0, max=MAX_INT))


class FinishBody(Body):
    status = fields.String(required=True, validate=ma.validate.OneOf(["Succeeded", "Failed"]))
    outputs = fields.Dict(allow_none=True, metadata={"description": "Output values by name"})
    error = AnyJson(metadata={"description": "{type, message, traceback} or text"})
    resources = fields.Nested(_Resources, allow_none=True)


class TickBody(Body):
    fire_time = fields.String(required=True, metadata={"description": "RFC 3339"})


class Received(Out):
    received = fields.Integer(required=True)


class Finished(Out):
    execution_id = fields.String(required=True)
    status = fields.String(required=True)
    step_name = fields.String(metadata={"description": "A step of a multi-step run"})


class OutputStored(Out):
    name = fields.String(required=True)


class Job(Out):
    execution_id = fields.String(required=True)
    api_url = fields.String(required=True)
    code_dir = fields.String(required=True, allow_none=True)
    code_url = fields.String(required=True, allow_none=True)
    function_path = fields.String(required=True, allow_none=True)
    function_name = fields.String(required=True, allow_none=True)
    inputs = fields.Dict(required=True)
    input_data_types = fields.Dict(required=True)
    outputs = fields.List(fields.Dict(), required=True)
    environment_variables = fields.Dict(required=True)
    resolved = fields.String(allow_none=True, metadata={
        "description": "Reused or Cached: the step took another execution's result, so "
                       "the runner has nothing to run and exits 0"})


class Tick(Out):
    execution_id = fields.String(required=True, allow_none=True)
    started = fields.Boolean(required=True)
