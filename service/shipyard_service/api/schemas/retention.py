"""An environment's retention policy (Shipyard's control API)."""

from __future__ import annotations

from marshmallow import fields, validate

from ...domain.retention import MAX_DAYS, MAX_KEEP
from . import Out, Strict


class RetentionIn(Strict):
    keep_days = fields.Integer(allow_none=True, strict=True,
                               validate=validate.Range(1, MAX_DAYS),
                               metadata={"description": "Remove finished executions older "
                                                       "than this many days; null: off"})
    keep_last_per_deployment = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(1, MAX_KEEP),
        metadata={"description": "Keep only this many newest executions of each "
                                 "deployment; null: off"})


class RetentionView(Out):
    keep_days = fields.Integer(required=True, allow_none=True)
    keep_last_per_deployment = fields.Integer(required=True, allow_none=True)
    enabled = fields.Boolean(required=True)
