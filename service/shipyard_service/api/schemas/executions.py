"""Pipeline runs and executions (contract §6.4, §6.5)."""

from __future__ import annotations

from marshmallow import fields

from . import AnyJson, Body, LogLine, LogsQuery, Out, Query


class RunBody(Body):
    """JSON body, or form fields holding JSON text with file inputs as file parts."""

    json_inputs = fields.Dict(allow_none=True, metadata={"description": "Non-file inputs"})
    inputs = fields.Dict(allow_none=True, metadata={"description": "Alias of json_inputs"})
    inputs_mapping = fields.List(fields.Dict(), allow_none=True)
    outputs_mapping = fields.List(fields.Dict(), allow_none=True)
    use_cache = fields.Boolean(truthy={True}, falsy={False}, load_default=True, metadata={
        "description": "false: every step runs, none takes a cached result (default true)"})


class RerunBody(Body):
    from_step = fields.String(allow_none=True, load_default=None, metadata={
        "description": "The step to run again with everything downstream of it; the other "
                       "steps reuse the origin's results. Default: the first failed step "
                       "(none failed: every step runs)"})


class ExecutionCreated(Out):
    execution_id = fields.String(required=True)


class IoQuery(Query):
    include_io_values = fields.Boolean(load_default=True)


class OutputsQuery(Query):
    wait_for_completion = fields.Boolean(load_default=False, metadata={
        "description": "Hold while it runs; 307 (ask again) if it still runs after the hold"})


class _Summary(Out):
    execution_id = fields.String(required=True)
    status = fields.String(required=True)
    pipeline_name = fields.String(required=True, allow_none=True)
    deployment_name = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True)
    created_by = fields.String(required=True, allow_none=True)
    start_date = fields.String(required=True, allow_none=True)
    end_date = fields.String(required=True, allow_none=True)


class ExecutionSummary(_Summary):
    pass


class LatestExecution(Out):
    """An execution summary, or `{}` when there is none yet."""

    execution_id = fields.String()
    status = fields.String()
    pipeline_name = fields.String(allow_none=True)
    deployment_name = fields.String(allow_none=True)
    created_at = fields.String()
    created_by = fields.String(allow_none=True)
    start_date = fields.String(allow_none=True)
    end_date = fields.String(allow_none=True)


class IoItem(Out):
    data_type = fields.String(required=True)
    mapping_type = fields.String(required=True)
    mapping_value = AnyJson()
    value = AnyJson()


class InputItem(IoItem):
    pipeline_input_name = fields.String(required=True)


class OutputItem(IoItem):
    pipeline_output_name = fields.String(required=True)


class ExecutionView(_Summary):
    error = AnyJson(required=True)
    steps = fields.List(fields.Dict(), required=True, metadata={
        "description": "Per step: name, status, start/end dates, error, inputs, outputs, "
                       "attempt (the current one), max_attempts, and attempts: "
                       "[{number, status, start_date, end_date, error, retry_at}]"})
    rerun_of = fields.String(allow_none=True, metadata={
        "description": "A re-run: the execution it re-ran"})
    inputs = fields.List(fields.Nested(InputItem), required=True)
    outputs = fields.List(fields.Nested(OutputItem), required=True)
    resources = fields.Dict(required=True)


class ExecutionDeleted(Out):
    execution_id = fields.String(required=True)


class OutputSummary(Out):
    pipeline_output_name = fields.String(required=True)
    data_type = fields.String(required=True)
    mapping_type = fields.String(required=True)
    value = AnyJson(required=True)


class Outputs(Out):
    outputs = fields.List(fields.Nested(OutputSummary), required=True)


class StillRunning(Out):
    execution_id = fields.String(required=True)
    status = fields.String(required=True)


class ExecutionLogsQuery(LogsQuery):
    step_name = fields.String(allow_none=True, metadata={"description": "One step's lines"})


class ExecutionLogLine(LogLine):
    step_name = fields.String(allow_none=True)
    attempt = fields.Integer(metadata={"description": "The step's attempt the line is from"})
