"""Environment variables (contract §6.8)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from ...domain.names import ENV_VAR_NAME
from . import Body, Out, Scalar, matching, whole


class UpsertBody(Body):
    # The seed writes `environment_variable_value=6`: numbers are kept as their text ("6").
    environment_variables = fields.Dict(
        keys=matching(whole(ENV_VAR_NAME), "Not a valid environment variable name."), values=Scalar(),
        required=True, validate=ma.validate.Length(min=1),
        metadata={"description": "NAME: value (string or number, stored as text)"})


class Variable(Out):
    name = fields.String(required=True)
    value = fields.String(required=True, allow_none=True,
                          metadata={"description": "null for viewers: values are shown to "
                                                   "the project's editors and admins"})
