"""Environment variables (contract §6.8)."""

from __future__ import annotations

from marshmallow import fields

from . import Body, Out, Scalar


class UpsertBody(Body):
    # The seed writes `environment_variable_value=6`: numbers are kept as their text ("6").
    environment_variables = fields.Dict(keys=fields.String(), values=Scalar(), required=True,
                                        metadata={"description": "NAME: value (string or "
                                                                 "number, stored as text)"})


class Variable(Out):
    name = fields.String(required=True)
    value = fields.String(required=True, allow_none=True,
                          metadata={"description": "null for viewers: values are shown to "
                                                   "the project's editors and admins"})
