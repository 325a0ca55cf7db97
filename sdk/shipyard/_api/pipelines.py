"""Pipelines: creation (from a step or a function), inspection, logs, deletion."""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any, Sequence

from .._dates import logs_query
from .._logging import log_action, logged
from ..io import Input, Output
from .base import SdkBase
from .creation import creation_payload, send_creation, validate_creation_arguments, wait_until_ready
from .steps import save_archive


def latest_execution_id(latest: Any) -> str | None:
    """Execution id from a ``…/executions/latest`` answer (object, ``{}``, null or 204)."""
    return latest.get("execution_id") if isinstance(latest, dict) else None


class PipelinesMixin(SdkBase):
    def _create_pipeline_with_step(self, pipeline_name: str, step_name: str) -> dict[str, Any]:
        created = self._post(
            self._env("pipelines"),
            json={"pipeline_name": pipeline_name, "step_names": [step_name]},
        )
        if isinstance(created, dict):
            created = {k: v for k, v in created.items() if k not in ("is_archived", "pipeline_id")}
        return created

    @logged("Pipeline creation")
    def create_pipeline(
        self,
        pipeline_name: str,
        function_path: str | None = None,
        function_name: str | None = None,
        description: str | None = None,
        container_config: dict[str, Any] | None = None,
        inputs: Sequence[Input] | None = None,
        outputs: Sequence[Output] | None = None,
        wait_for_completion: bool = True,
        timeout_s: float | None = None,
        *,
        step_name: str | None = None,
        step_names: Sequence[str] | None = None,
        connections: Sequence[tuple[str, str]] | None = None,
        max_retries: int | None = None,
        retry_delay_s: int | None = None,
        cache_results: bool | None = None,
    ) -> dict[str, Any]:
        """Create a pipeline from a function (repository or ``local_folder``), from an
        existing step with ``step_name=…``, or from several existing steps with
        ``step_names=[…]`` and ``connections=[("a.out", "b.in"), …]`` (each carries one
        step's output to another step's input).

        The function form takes the same arguments as :meth:`create_step` (retries and
        ``cache_results`` included) and waits
        until the pipeline is ready when ``wait_for_completion`` is True. The step form
        returns at once.

        Returns:
            The pipeline (``parameters`` and ``creation_info``).
        """
        others_unset = all(
            value is None
            for value in (function_name, description, container_config, inputs, outputs, timeout_s,
                          max_retries, retry_delay_s, cache_results)
        )
        if step_names is not None or connections is not None:
            if not others_unset or function_path is not None or step_name is not None:
                raise ValueError(
                    "create_pipeline() got unexpected arguments. With 'step_names' and "
                    "'connections', no other argument than 'pipeline_name' should be provided."
                )
            if isinstance(step_names, str) or not step_names:
                raise ValueError("'step_names' must be a non-empty list of step names.")
            body = {
                "pipeline_name": pipeline_name,
                "step_names": list(step_names),
                "connections": [
                    {"source": source, "target": target} for source, target in connections or []
                ],
            }
            return self._post(self._env("pipelines"), json=body)
        if step_name is not None:
            if not others_unset or function_path is not None:
                raise ValueError(
                    "create_pipeline() got unexpected arguments. When specifying the "
                    "'step_name' keyword argument, no other argument than 'pipeline_name' "
                    "should be provided."
                )
            return self._create_pipeline_with_step(pipeline_name, step_name)
        if others_unset and function_path is not None:
            warnings.warn(
                "Providing the step name as a positional argument is deprecated and will be "
                "removed in a future version. Please use the step_name keyword argument "
                "instead.",
                FutureWarning,
                stacklevel=3,
            )
            return self._create_pipeline_with_step(pipeline_name, function_path)

        container_config = dict(container_config or {})
        validate_creation_arguments(inputs, outputs, timeout_s, max_retries, retry_delay_s)
        payload = creation_payload(
            "pipeline_name",
            pipeline_name,
            function_path,
            function_name,
            description,
            container_config,
            inputs,
            outputs,
            max_retries,
            retry_delay_s,
        )
        if cache_results:
            payload["cache_results"] = True
        log_action(
            self,
            f'Please wait while pipeline "{pipeline_name}" is being created. '
            "This may take a while...",
        )
        send_creation(self, self._env("pipelines"), container_config, payload, function_path)
        return self.get_pipeline(pipeline_name, wait_for_completion, timeout_s)

    def get_pipeline(
        self,
        pipeline_name: str,
        wait_for_completion: bool = False,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Get a single pipeline; with ``wait_for_completion``, wait until it is ready.

        Returns:
            dict with ``parameters`` and ``creation_info`` (which includes
            ``last_execution_id``).
        """
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError("The timeout must be greater than to 0 or None.")
        url = self._env(f"pipelines/{pipeline_name}")
        if wait_for_completion:
            pipeline = wait_until_ready(
                self,
                pipeline_name,
                lambda: self._get(f"{url}?wait_for_completion=true", allow_redirects=False),
                timeout_s,
                "get_pipeline",
                "get_pipeline_logs",
            )
        else:
            pipeline = self._get(url)
        latest = self._get(self._env(f"pipelines/{pipeline_name}/executions/latest"))
        info = dict(pipeline.get("creation_info") or {})
        info["last_execution_id"] = latest_execution_id(latest)
        info.pop("is_archived", None)
        info.pop("id", None)
        return {**pipeline, "creation_info": info}

    def list_pipelines(self) -> list[dict[str, Any]]:
        """Get the list of all pipelines (``pipeline_name``, ``created_at``, ``status``)."""
        return self._get(self._env("pipelines"))

    @logged("Pipeline deletion")
    def delete_pipeline(
        self, pipeline_name: str, force_deployments_deletion: bool = False
    ) -> dict[str, Any]:
        """Delete a pipeline (and its deployments when ``force_deployments_deletion``).

        Returns:
            dict with ``pipeline`` (``{"name"}``) and ``deployments`` (list of
            ``{"name", "execution_rule"}``).
        """
        return self._delete(
            self._env(f"pipelines/{pipeline_name}"),
            params={"force_deployments_deletion": bool(force_deployments_deletion)},
        )

    @logged("Pipeline download")
    def download_pipeline_local_folder(self, pipeline_name: str, folder: str) -> None:
        """Save the code archive of a pipeline created from a local folder as
        ``<folder>/<pipeline_name>.tgz``."""
        if not isinstance(folder, str):
            raise ValueError("'folder' must be a string")  # noqa: TRY004 (as craft-ai-sdk)
        signed_url = self._get(self._env(f"pipelines/{pipeline_name}/download"))["signed_url"]
        save_archive(self, signed_url, folder, pipeline_name)

    @logged("Pipeline logs")
    def get_pipeline_logs(
        self,
        pipeline_name: str,
        from_datetime: datetime | None = None,
        to_datetime: datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Get the build logs of a pipeline (dicts with ``timestamp`` and ``message``)."""
        body = logs_query(from_datetime, to_datetime, limit)
        log_action(self, "Please wait while logs are being fetched. This may take a while...")
        return self._post(self._env(f"pipelines/{pipeline_name}/logs"), json=body)
