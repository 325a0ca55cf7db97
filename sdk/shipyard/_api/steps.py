"""Steps: creation from a repository or a local folder, inspection, logs, deletion."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Sequence

from .._datastore import download_bytes
from .._dates import logs_query
from .._logging import log_action, logged
from ..io import Input, Output
from .base import SdkBase
from .creation import creation_payload, send_creation, validate_creation_arguments, wait_until_ready


def _without_creation_id(step: Any) -> Any:
    if isinstance(step, dict) and isinstance(step.get("creation_info"), dict):
        step["creation_info"].pop("id", None)
    return step


def save_archive(sdk: SdkBase, signed_url: str, folder: str, name: str) -> None:
    """Download a code archive and save it as ``<folder>/<name>.tgz``."""
    if not isinstance(folder, str):
        raise ValueError("'folder' must be a string")  # noqa: TRY004 (as craft-ai-sdk)
    content = download_bytes(sdk._http, signed_url)
    with open(os.path.join(os.path.abspath(folder), f"{name}.tgz"), "wb") as file:
        file.write(content)


class StepsMixin(SdkBase):
    @logged("Step creation")
    def create_step(
        self,
        step_name: str,
        function_path: str | None = None,
        function_name: str | None = None,
        description: str | None = None,
        container_config: dict[str, Any] | None = None,
        inputs: Sequence[Input] | None = None,
        outputs: Sequence[Output] | None = None,
        wait_for_completion: bool = True,
        timeout_s: float | None = None,
        *,
        max_retries: int | None = None,
        retry_delay_s: int | None = None,
        cache_results: bool = False,
    ) -> dict[str, Any]:
        """Create a step from a function of a remote repository or of a local folder.

        ``cache_results=True``: a run of the step with the same code, environment and
        inputs (values, and file contents) as an earlier successful run takes that run's
        outputs instead of running; the step execution is then ``Cached`` with
        ``cached_from`` naming the execution it came from.

        ``container_config`` keys: ``language``, ``repository_url``,
        ``repository_branch``, ``repository_deploy_key``, ``requirements_path``,
        ``included_folders``, ``system_dependencies``, ``dockerfile_path`` and
        ``local_folder``. Use :obj:`STEP_PARAMETER.NULL` to set a value to null and
        :obj:`STEP_PARAMETER.FALLBACK_PROJECT` (or leave the key out) to use the
        project's value.

        ``max_retries`` (default 0): how many times a failed run of the step is tried
        again; ``retry_delay_s`` (default 0): the seconds before the first retry, each
        next one waiting twice as long. Every attempt is recorded in the execution's
        ``steps[…]["attempts"]``.

        Returns:
            The created step (``parameters`` and ``creation_info``), once ready when
            ``wait_for_completion`` is True.
        """
        container_config = dict(container_config or {})
        validate_creation_arguments(inputs, outputs, timeout_s, max_retries, retry_delay_s)
        payload = creation_payload(
            "step_name",
            step_name,
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
        log_action(self, "Please wait while step is being created. This may take a while...")
        send_creation(self, self._env("steps"), container_config, payload, function_path)
        return self.get_step(step_name, wait_for_completion, timeout_s)

    def get_step(
        self, step_name: str, wait_for_completion: bool = False, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Get a single step; with ``wait_for_completion``, wait until it is ready.

        Returns:
            dict with the keys ``parameters`` and ``creation_info``.
        """
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError("The timeout must be greater than to 0 or None.")
        url = self._env(f"steps/{step_name}")
        if wait_for_completion:
            step = wait_until_ready(
                self,
                step_name,
                lambda: self._get(f"{url}?wait_for_completion=true", allow_redirects=False),
                timeout_s,
                "get_step",
                "get_step_logs",
            )
        else:
            step = self._get(url)
        return _without_creation_id(step)

    def list_steps(self) -> list[dict[str, Any]]:
        """Get the list of all steps (``step_name``, ``status``, ``created_at``)."""
        return self._get(self._env("steps"))

    @logged("Step deletion")
    def delete_step(
        self, step_name: str, force_dependents_deletion: bool = False
    ) -> dict[str, Any]:
        """Delete one step (and its dependents when ``force_dependents_deletion``).

        Returns:
            dict with the key ``step_name``.
        """
        return self._delete(
            self._env(f"steps/{step_name}"),
            params={"force_dependents_deletion": bool(force_dependents_deletion)},
        )

    @logged("Step download")
    def download_step_local_folder(self, step_name: str, folder: str) -> None:
        """Save the code archive of a step created from a local folder as
        ``<folder>/<step_name>.tgz``."""
        if not isinstance(folder, str):
            raise ValueError("'folder' must be a string")  # noqa: TRY004 (as craft-ai-sdk)
        signed_url = self._get(self._env(f"steps/{step_name}/download"))["signed_url"]
        save_archive(self, signed_url, folder, step_name)

    @logged("Step logs")
    def get_step_logs(
        self,
        step_name: str,
        from_datetime: datetime | None = None,
        to_datetime: datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Get the build logs of a step (dicts with ``timestamp`` and ``message``)."""
        body = logs_query(from_datetime, to_datetime, limit)
        log_action(self, "Please wait while logs are being fetched. This may take a while...")
        return self._post(self._env(f"steps/{step_name}/logs"), json=body)
