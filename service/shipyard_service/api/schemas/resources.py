"""Resource metrics of the workers (contract §6.10)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from . import Out, Query

_MS = ma.validate.Range(min=0, max=253402300799999)  # up to the year 9999


class RangeQuery(Query):
    start = fields.Integer(required=True, validate=_MS,
                           metadata={"description": "Milliseconds since the epoch"})
    end = fields.Integer(required=True, validate=_MS)
    worker = fields.String(allow_none=True)
    download = fields.Boolean(load_default=False, metadata={"description": "Answer CSV"})


class _Series(Out):
    metric = fields.Dict(required=True, metadata={"description": '{"worker": name}'})
    values = fields.List(fields.List(fields.Float()), required=True,
                         metadata={"description": "[ms, value] points"})


class ResourceMetrics(Out):
    additional_data = fields.Dict(required=True, metadata={
        "description": "total_disk, total_ram (and total_vram with GPUs)"})
    metrics = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(_Series)),
                          required=True)
