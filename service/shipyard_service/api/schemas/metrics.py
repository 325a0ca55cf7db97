"""Pipeline metrics (contract §6.9)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from ...domain.metrics import COLUMNS_MAX_PAGE, FORMATS, MAX_BATCH, MAX_PAGE, METRIC_NAME
from . import MAX_INT, AnyJson, Body, Out, Query, whole

_EXECUTION_ID = {"required": True, "validate": ma.validate.Length(min=1),
                 "metadata": {"description": "The running execution recording it"}}
# The metric's name, a path parameter (`@blp.route(..., parameters=NAME_PARAMETER)`).
NAME_PARAMETER = [{"in": "path", "name": "name", "required": True, "schema": {
    "type": "string", "pattern": whole(METRIC_NAME), "maxLength": 128}}]


class SingleBody(Body):
    value = fields.Float(required=True, allow_nan=False)
    execution_id = fields.String(**_EXECUTION_ID)


class ListBody(Body):
    values = fields.Raw(required=True, metadata={
        "description": "A list of numbers (at most 10,000 per call), or one number",
        "oneOf": [{"type": "array", "items": {"type": "number"}, "minItems": 1,
                   "maxItems": MAX_BATCH}, {"type": "number"}]})
    execution_id = fields.String(**_EXECUTION_ID)


class SingleRecorded(Out):
    name = fields.String(required=True)
    value = fields.Float(required=True)
    execution_id = fields.String(required=True)


class ListRecorded(Out):
    name = fields.String(required=True)
    count = fields.Integer(required=True)
    execution_id = fields.String(required=True)


class MetricsQuery(Query):
    name = fields.String(data_key="filters[name]")
    pipeline_name = fields.String(data_key="filters[pipeline_name]")
    deployment_name = fields.String(data_key="filters[deployment_name]")
    execution_id = fields.String(data_key="filters[execution_id]")
    # The page times its size must stay a database integer (the OFFSET).
    page = fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_INT // MAX_PAGE))
    items_per_page = fields.Integer(load_default=MAX_PAGE, metadata={
        "description": f"1 to {MAX_PAGE}; with `format=columns`, 1 to "
                       f"{COLUMNS_MAX_PAGE['single']} single values or {COLUMNS_MAX_PAGE['list']} "
                       "lists (a hard cap: larger is a 400)"},
        validate=ma.validate.Range(min=1, max=max(COLUMNS_MAX_PAGE.values())))
    format = fields.String(load_default="objects", validate=ma.validate.OneOf(FORMATS), metadata={
        "description": "`objects` (the default): `{metrics, total_count}`. `columns` (our SDK): "
                       "`{total_count, constant, columns}`, each field once as an array in row "
                       "order (`value` for single values, `values` for lists), `constant` the "
                       "fields the filters fix, given once instead of per row"})
    kind = "single"

    @ma.validates_schema
    def _page_size(self, data: dict, **_: object) -> None:
        limit = COLUMNS_MAX_PAGE[self.kind] if data.get("format") == "columns" else MAX_PAGE
        if data.get("items_per_page", MAX_PAGE) > limit:
            raise ma.ValidationError(f"Must be between 1 and {limit}.", "items_per_page")


class ListMetricsQuery(MetricsQuery):
    kind = "list"


class _Metric(Out):
    name = fields.String(required=True)
    created_at = fields.String(required=True)
    execution_id = fields.String(required=True)
    deployment_name = fields.String(required=True, allow_none=True)
    pipeline_name = fields.String(required=True, allow_none=True)


class SingleMetric(_Metric):
    value = fields.Float(required=True)


class ListMetric(_Metric):
    value = fields.List(fields.Float(), required=True,
                        metadata={"description": "The values (0.60.0 reads `value`)"})
    values = fields.List(fields.Float(), required=True,
                         metadata={"description": "The same values (later clients)"})


class SinglePage(Out):
    metrics = fields.List(fields.Nested(SingleMetric), required=True)
    total_count = fields.Integer(required=True)


class ListPage(Out):
    metrics = fields.List(fields.Nested(ListMetric), required=True)
    total_count = fields.Integer(required=True)


class ColumnsPage(Out):
    """A page with `format=columns` (our SDK's): each field once as an array, in row order."""

    total_count = fields.Integer(required=True)
    constant = fields.Dict(keys=fields.String(), required=True, metadata={
        "description": "The fields the filters fix, given once instead of per row"})
    columns = fields.Dict(keys=fields.String(), values=fields.List(AnyJson()), required=True,
                          metadata={"description": "The other fields, each an array in row "
                                                   "order (`value` or `values` among them)"})


def page_of(objects: type[Out]) -> dict:
    """The 200 of a metrics route: its objects page, or with `format=columns` a ColumnsPage."""
    return {"oneOf": [objects, ColumnsPage]}
