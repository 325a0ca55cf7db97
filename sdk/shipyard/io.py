"""Input/output declarations and mappings used by steps, pipelines and deployments."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

from .constants import _StrEnum


class INPUT_OUTPUT_TYPES(_StrEnum):
    """Enumeration for Input and Output data types."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    JSON = "json"
    ARRAY = "array"
    FILE = "file"


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class Input:
    """A step/pipeline input declared at creation time.

    Args:
        name: name of the input (a parameter of the function).
        data_type: one of "string", "number", "boolean", "json", "array", "file"
            (or an :class:`INPUT_OUTPUT_TYPES` member).
        description: optional description.
        is_required: whether a value must be given at execution time.
        default_value: value used when none is given at execution time.
    """

    def __init__(
        self,
        name: str,
        data_type: str,
        description: str | None = None,
        is_required: bool | None = None,
        default_value: Any = None,
    ) -> None:
        self.name = name
        self.data_type = data_type
        self.description = description
        self.is_required = is_required
        self.default_value = default_value

    def to_dict(self) -> dict[str, Any]:
        """Return the wire representation (keys with ``None`` are left out)."""
        return _without_none(
            {
                "name": self.name,
                "data_type": self.data_type,
                "description": self.description,
                "is_required": self.is_required,
                "default_value": self.default_value,
            }
        )


class Output:
    """A step/pipeline output declared at creation time.

    Args:
        name: name of the output (a key of the dict returned by the function).
        data_type: one of "string", "number", "boolean", "json", "array", "file".
        description: optional description.
    """

    def __init__(self, name: str, data_type: str, description: str | None = None) -> None:
        self.name = name
        self.data_type = data_type
        self.description = description

    def to_dict(self) -> dict[str, Any]:
        """Return the wire representation (keys with ``None`` are left out)."""
        return _without_none(
            {"name": self.name, "data_type": self.data_type, "description": self.description}
        )


def _pick_name(new: str | None, old: str | None, kind: str) -> None:
    if new is not None and old is not None:
        raise ValueError(f"Both pipeline_{kind}_name and step_{kind}_name cannot be specified.")
    if new is None and old is None:
        raise ValueError(f'missing "pipeline_{kind}_name" argument.')
    if old is not None:
        warnings.warn(
            f"Providing the step_{kind}_name argument is deprecated and will be removed "
            f"in a future version. Please use the pipeline_{kind}_name keyword argument "
            "instead.",
            FutureWarning,
            stacklevel=3,
        )


class InputSource:
    """Where a pipeline input takes its value from (deployments and runs).

    Exactly one source among ``endpoint_input_name``, ``constant_value``,
    ``environment_variable_name``, ``is_null`` and ``datastore_path`` is expected.
    ``is_required`` and ``default_value`` only apply with ``endpoint_input_name``.
    ``step_input_name`` is the deprecated name of ``pipeline_input_name``.
    """

    def __init__(
        self,
        pipeline_input_name: str | None = None,
        endpoint_input_name: str | None = None,
        environment_variable_name: str | None = None,
        is_required: bool | None = None,
        default_value: Any = None,
        constant_value: Any = None,
        is_null: bool | None = None,
        datastore_path: str | None = None,
        step_input_name: str | None = None,
    ) -> None:
        _pick_name(pipeline_input_name, step_input_name, "input")
        self.pipeline_input_name = pipeline_input_name
        self.endpoint_input_name = endpoint_input_name
        self.environment_variable_name = environment_variable_name
        self.is_required = is_required
        self.default_value = default_value
        self.constant_value = constant_value
        self.is_null = is_null
        self.datastore_path = datastore_path
        self.step_input_name = step_input_name

    def to_dict(self) -> dict[str, Any]:
        """Return the wire representation (keys with ``None`` are left out)."""
        return _without_none(
            {
                "pipeline_input_name": self.pipeline_input_name,
                "endpoint_input_name": self.endpoint_input_name,
                "environment_variable_name": self.environment_variable_name,
                "is_required": self.is_required,
                "default_value": self.default_value,
                "constant_value": self.constant_value,
                "is_null": self.is_null,
                "datastore_path": self.datastore_path,
                "step_input_name": self.step_input_name,
            }
        )


class OutputDestination:
    """Where a pipeline output goes (deployments and runs).

    Exactly one of ``endpoint_output_name``, ``is_null`` and ``datastore_path`` is
    expected. ``datastore_path`` may contain ``{execution_id}``, ``{date}`` and
    ``{date_time}``. ``step_output_name`` is the deprecated name of
    ``pipeline_output_name``.
    """

    def __init__(
        self,
        pipeline_output_name: str | None = None,
        endpoint_output_name: str | None = None,
        is_null: bool | None = None,
        datastore_path: str | None = None,
        step_output_name: str | None = None,
    ) -> None:
        _pick_name(pipeline_output_name, step_output_name, "output")
        self.pipeline_output_name = pipeline_output_name
        self.endpoint_output_name = endpoint_output_name
        self.is_null = is_null
        self.datastore_path = datastore_path
        self.step_output_name = step_output_name

    def to_dict(self) -> dict[str, Any]:
        """Return the wire representation (keys with ``None`` are left out)."""
        return _without_none(
            {
                "pipeline_output_name": self.pipeline_output_name,
                "endpoint_output_name": self.endpoint_output_name,
                "is_null": self.is_null,
                "datastore_path": self.datastore_path,
                "step_output_name": self.step_output_name,
            }
        )


def _mapping_dicts(
    items: Sequence[Any] | None, cls: type, argument: str
) -> list[dict[str, Any]] | None:
    """Validate a list of :class:`InputSource`/:class:`OutputDestination` and encode it."""
    if items is None:
        return None
    if any(not isinstance(item, cls) for item in items):
        raise ValueError(f"'{argument}' must be a list of instances of {cls.__name__}.")
    return [item.to_dict() for item in items]


def inputs_mapping_to_dicts(items: Sequence[InputSource] | None) -> list[dict] | None:
    return _mapping_dicts(items, InputSource, "inputs_mapping")


def outputs_mapping_to_dicts(
    items: Sequence[OutputDestination] | None,
) -> list[dict] | None:
    return _mapping_dicts(items, OutputDestination, "outputs_mapping")


__all__ = ["INPUT_OUTPUT_TYPES", "Input", "InputSource", "Output", "OutputDestination"]
