"""Pipeline runs and executions: run, outputs long-poll, inspection, logs, deletion."""

from __future__ import annotations

import contextlib
import io
import json
import os
from datetime import datetime
from typing import Any, Sequence

from .._dates import logs_query
from .._http import parse_response
from .._logging import log_action, logged
from ..exceptions import SdkException
from ..io import (
    INPUT_OUTPUT_TYPES,
    InputSource,
    OutputDestination,
    inputs_mapping_to_dicts,
    outputs_mapping_to_dicts,
)
from .base import SdkBase

_FILE = INPUT_OUTPUT_TYPES.FILE.value
# The values a file input takes (a path, an open binary file, bytes).
_MAYBE_FILE = (str, os.PathLike, io.IOBase, bytes, bytearray)


def format_io_item(kind: str, item: dict[str, Any], value: Any) -> dict[str, Any]:
    """User-facing shape of an execution input/output item (contract §6.4.4, §7.3).

    ``kind`` is ``"input"`` or ``"output"``. The ``mapping_value`` keys become top-level
    (without ``is_required``, ``default_value`` and ``run_<kind>_name``) and
    ``mapping_type`` is renamed ``source`` (inputs) or ``destination`` (outputs).
    """
    name_key = f"pipeline_{kind}_name"
    mapping = dict(item.get("mapping_value") or {})
    for key in ("is_required", "default_value", f"run_{kind}_name"):
        mapping.pop(key, None)
    return {
        name_key: item.get(name_key),
        "data_type": item.get("data_type"),
        **mapping,
        ("source" if kind == "input" else "destination"): item.get("mapping_type"),
        "value": value,
    }


class ExecutionsMixin(SdkBase):
    # ----- values -----

    def _execution_value(self, execution_id: str, kind: str, name: str) -> Any:
        return self._get(self._env(f"executions/{execution_id}/{kind}s/{name}"))

    # ----- run -----

    @logged("Pipeline execution startup")
    def run_pipeline(
        self,
        pipeline_name: str,
        inputs: dict[str, Any] | None = None,
        inputs_mapping: Sequence[InputSource] | None = None,
        outputs_mapping: Sequence[OutputDestination] | None = None,
        wait_for_completion: bool = True,
        use_cache: bool = True,
    ) -> dict[str, Any]:
        """Run a pipeline.

        Args:
            pipeline_name: name of an existing pipeline.
            inputs: input values by name. A ``file`` input takes a path or a readable
                binary file object (``bytes`` are accepted too).
            inputs_mapping: list of :class:`InputSource` (constant, environment
                variable, data store path or null).
            outputs_mapping: list of :class:`OutputDestination` (data store path or
                null).
            wait_for_completion: wait for the end of the execution and return its
                outputs.
            use_cache: False runs every step, even those created with
                ``cache_results=True`` whose result the cache holds.

        Returns:
            ``{"execution_id": …, "outputs": {name: value}}``; ``outputs`` only when
            ``wait_for_completion`` is True.
        """
        inputs = dict(inputs or {})
        inputs_mapping_dicts = inputs_mapping_to_dicts(inputs_mapping)
        outputs_mapping_dicts = outputs_mapping_to_dicts(outputs_mapping)
        input_types: dict[str, Any] = {}
        if any(isinstance(value, _MAYBE_FILE) for value in inputs.values()):
            # Which of them are files (a string is a path then): the pipeline says. Without
            # such a value, no input can be a file and the run is one call less.
            pipeline = self._get(self._env(f"pipelines/{pipeline_name}"))
            declared = (pipeline.get("parameters") or {}).get("inputs") or []
            input_types = {item.get("name"): item.get("data_type") for item in declared}

        with contextlib.ExitStack() as stack:
            files: dict[str, Any] = {}
            json_inputs: dict[str, Any] = {}
            for name, value in inputs.items():
                if input_types.get(name) != _FILE:
                    json_inputs[name] = value
                elif isinstance(value, (str, os.PathLike)):
                    files[name] = stack.enter_context(open(value, "rb"))
                elif isinstance(value, io.IOBase) and value.readable():
                    files[name] = value
                elif isinstance(value, (bytes, bytearray)):
                    files[name] = (name, bytes(value))
                else:
                    raise SdkException(f"Input {name} is a file but value is not a string or bytes")
            form: dict[str, str] = {"json_inputs": json.dumps(json_inputs)}
            if inputs_mapping_dicts is not None:
                form["inputs_mapping"] = json.dumps(inputs_mapping_dicts)
            if outputs_mapping_dicts is not None:
                form["outputs_mapping"] = json.dumps(outputs_mapping_dicts)
            if use_cache is not True:
                form["use_cache"] = json.dumps(use_cache)
            started = self._post(
                self._env(f"pipelines/{pipeline_name}/run"),
                data=form,
                files=files or None,
                allow_redirects=False,
            )

        return self._started(started["execution_id"], wait_for_completion)

    @logged("Pipeline execution re-run")
    def rerun_pipeline_execution(
        self,
        execution_id: str,
        from_step: str | None = None,
        wait_for_completion: bool = True,
    ) -> dict[str, Any]:
        """Run an execution's pipeline again with the same inputs and mappings, from a step.

        ``from_step`` and every step downstream of it run again; the other steps reuse
        the origin's results (files included), their step executions ``Reused`` with
        ``reused_from`` naming the origin. Default: from the first failed step (when none
        failed, every step runs again).

        Returns:
            ``{"execution_id": …, "outputs": {name: value}}`` of the new execution;
            ``outputs`` only when ``wait_for_completion`` is True.
        """
        started = self._post(self._env(f"executions/{execution_id}/rerun"),
                             json={"from_step": from_step})
        return self._started(started["execution_id"], wait_for_completion)

    def _started(self, execution_id: str, wait_for_completion: bool) -> dict[str, Any]:
        log_action(
            self,
            "The pipeline execution may take a while, you can check its status and get "
            "information on the Executions page of the front-end.\n"
            f'Its execution ID is "{execution_id}".',
        )
        if wait_for_completion:
            return self.retrieve_pipeline_execution_outputs(execution_id)
        return {"execution_id": execution_id}

    @logged("Pipeline execution results retrieval")
    def retrieve_pipeline_execution_outputs(self, execution_id: str) -> dict[str, Any]:
        """Wait for the end of an execution and return its outputs.

        Returns:
            ``{"execution_id": …, "outputs": {name: value}}``; file outputs are bytes.
        """
        url = self._env(f"executions/{execution_id}/outputs?wait_for_completion=true")
        response = self._http.send("GET", url, allow_redirects=False)
        while response.status_code == 307:
            response = self._http.send("GET", url, allow_redirects=False)
        body = parse_response(response)
        outputs: dict[str, Any] = {}
        for item in body.get("outputs") or []:
            name = item["pipeline_output_name"]
            value = item.get("value")
            if item.get("data_type") == _FILE and item.get("mapping_type") not in (
                "is_null",
                "datastore",
            ):
                value = self._execution_value(execution_id, "output", name)
            outputs[name] = value
        return {"execution_id": execution_id, "outputs": outputs}

    # ----- inspection -----

    def list_pipeline_executions(self, pipeline_name: str) -> list[dict[str, Any]]:
        """Get the executions of a pipeline (``execution_id``, ``status``,
        ``created_at``, ``created_by``, ``end_date``, ``pipeline_name``,
        ``deployment_name``)."""
        return self._get(self._env(f"pipelines/{pipeline_name}/executions"))

    def get_pipeline_execution(self, execution_id: str) -> dict[str, Any]:
        """Get one execution, with its ``steps``, ``inputs`` and ``outputs``.

        Each input is ``{"pipeline_input_name", "data_type", <mapping keys>, "source",
        "value"}`` and each output ``{"pipeline_output_name", "data_type",
        <mapping keys>, "destination", "value"}``; file values are bytes.
        """
        execution = self._get(self._env(f"executions/{execution_id}"))
        inputs = []
        for item in execution.get("inputs") or []:
            value = item.get("value")
            if item.get("data_type") == _FILE and item.get("mapping_type") not in (
                "is_null",
                "datastore",
            ):
                value = self._execution_value(execution_id, "input", item["pipeline_input_name"])
            inputs.append(format_io_item("input", item, value))
        outputs = []
        for item in execution.get("outputs") or []:
            value = item.get("value")
            if item.get("data_type") == _FILE and item.get("mapping_type") != "is_null":
                value = self._execution_value(execution_id, "output", item["pipeline_output_name"])
            outputs.append(format_io_item("output", item, value))
        return {**execution, "inputs": inputs, "outputs": outputs}

    def _execution_io(self, execution_id: str, kind: str, name: str) -> dict[str, Any]:
        execution = self._get(self._env(f"executions/{execution_id}?include_io_values=false"))
        key = f"pipeline_{kind}_name"
        matches = [item for item in execution.get(f"{kind}s") or [] if item.get(key) == name]
        if not matches:
            raise SdkException(f"Cannot find {kind} {name} for execution {execution_id}")
        value = self._execution_value(execution_id, kind, name)
        return format_io_item(kind, matches[0], value)

    def get_pipeline_execution_input(self, execution_id: str, input_name: str) -> dict[str, Any]:
        """Get one input of an execution (``pipeline_input_name``, ``data_type``,
        mapping keys, ``source``, ``value``)."""
        return self._execution_io(execution_id, "input", input_name)

    def get_pipeline_execution_output(self, execution_id: str, output_name: str) -> dict[str, Any]:
        """Get one output of an execution (``pipeline_output_name``, ``data_type``,
        mapping keys, ``destination``, ``value``)."""
        return self._execution_io(execution_id, "output", output_name)

    def get_pipeline_execution_logs(
        self,
        pipeline_name: str | None = None,
        execution_id: str | datetime | None = None,
        from_datetime: datetime | int | None = None,
        to_datetime: datetime | int | None = None,
        limit: int | None = None,
        *,
        step_name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Get the logs of an execution (dicts with ``timestamp``, ``message``,
        ``stream`` and ``step_name``); ``step_name=…`` keeps one step's lines.

        Documented form: ``get_pipeline_execution_logs(pipeline_name, execution_id,
        from_datetime=None, to_datetime=None, limit=None)``. The craft-ai-sdk 0.60 form
        ``get_pipeline_execution_logs(execution_id, from_datetime, to_datetime, limit)``
        is accepted too. Only the execution id is needed to find the logs.
        """
        if execution_id is None:
            execution_id, pipeline_name = pipeline_name, None
        elif isinstance(execution_id, datetime):
            execution_id, from_datetime, to_datetime, limit = (  # type: ignore[assignment]
                pipeline_name,
                execution_id,
                from_datetime,
                to_datetime,
            )
        if not execution_id:
            raise ValueError("'execution_id' must be given.")
        body = logs_query(from_datetime, to_datetime, limit)  # type: ignore[arg-type]
        if step_name is not None:
            body["step_name"] = step_name
        log_action(self, "Please wait while logs are being fetched. This may take a while...")
        logs_by_step = self._post(self._env(f"executions/{execution_id}/logs"), json=body)
        if not logs_by_step:
            return []
        return logs_by_step[0]

    def delete_pipeline_execution(self, execution_id: str) -> dict[str, Any]:
        """Delete one execution. Returns ``{"execution_id"}``."""
        return self._delete(self._env(f"executions/{execution_id}"))
