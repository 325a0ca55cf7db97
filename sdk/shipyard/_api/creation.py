"""Request building shared by step creation and pipeline creation from a function."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .._archive import build_archive, check_local_folder, include_list
from .._flatten import flatten
from ..constants import CREATION_PARAMETER_VALUE
from ..exceptions import SdkException
from ..io import Input, Output
from .base import SdkBase

#: Name of the archive part of the creation request (also for pipelines).
ARCHIVE_FIELD = "step_file"


def validate_creation_arguments(
    inputs: Sequence[Input] | None,
    outputs: Sequence[Output] | None,
    timeout_s: float | None,
    max_retries: int | None = None,
    retry_delay_s: int | None = None,
) -> None:
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError("The timeout must be greater than 0 or None.")
    for name, value in (("max_retries", max_retries), ("retry_delay_s", retry_delay_s)):
        # The server checks the bounds; a float or a bool would reach it as text.
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"'{name}' must be an integer or None.")
    if inputs is not None and any(not isinstance(item, Input) for item in inputs):
        raise ValueError("'inputs' must be a list of instances of Input.")
    if outputs is not None and any(not isinstance(item, Output) for item in outputs):
        raise ValueError("'outputs' must be a list of instances of Output.")


def container_config_to_send(container_config: dict[str, Any]) -> dict[str, Any]:
    """Resolve the special values: ``NULL`` → ``None`` (sent empty), ``FALLBACK_PROJECT``
    and ``None`` → key left out. ``local_folder`` is never sent."""
    resolved: dict[str, Any] = {}
    for key, value in container_config.items():
        if key == "local_folder" or value is None:
            continue
        if value is CREATION_PARAMETER_VALUE.NULL:
            resolved[key] = None
        elif value is not CREATION_PARAMETER_VALUE.FALLBACK_PROJECT:
            resolved[key] = value
    return resolved


def creation_payload(
    name_field: str,
    name: str,
    function_path: str | None,
    function_name: str | None,
    description: str | None,
    container_config: dict[str, Any],
    inputs: Sequence[Input] | None,
    outputs: Sequence[Output] | None,
    max_retries: int | None = None,
    retry_delay_s: int | None = None,
) -> dict[str, Any]:
    """Nested creation data; top-level ``None`` values are left out (§3.2)."""
    payload = {
        name_field: name,
        "function_path": function_path,
        "function_name": function_name,
        "description": description,
        "container_config": container_config_to_send(container_config),
        "max_retries": max_retries,
        "retry_delay_s": retry_delay_s,
    }
    payload = {key: value for key, value in payload.items() if value is not None}
    if inputs is not None:
        payload["inputs"] = [item.to_dict() for item in inputs]
    if outputs is not None:
        payload["outputs"] = [item.to_dict() for item in outputs]
    return payload


def send_creation(
    sdk: SdkBase,
    url: str,
    container_config: dict[str, Any],
    payload: dict[str, Any],
    function_path: str | None,
) -> None:
    """POST the creation request: form-encoded, or multipart with the code archive
    when ``container_config`` has a ``local_folder`` (§6.2.1)."""
    files: dict[str, Any] = {}
    if "local_folder" in container_config:
        local_folder = container_config["local_folder"]
        check_local_folder(local_folder)
        project = sdk._get(sdk._env("project-information")) or {}
        items = include_list(payload.get("container_config", {}), project, function_path)
        files[ARCHIVE_FIELD] = (ARCHIVE_FIELD, build_archive(local_folder, items))
    fields: list[Any] = flatten(payload)
    sdk._post(url, data=fields, files=files or None, allow_redirects=False)


def wait_until_ready(
    sdk: SdkBase,
    name: str,
    fetch: Callable[[], Any],
    timeout_s: float | None,
    get_function_name: str,
    logs_function_name: str,
) -> dict[str, Any]:
    """Poll ``fetch`` (a long-poll GET) while ``creation_info.status`` is pending (§4)."""
    start = sdk._get_time()
    status: str | None = "creation_pending"
    created: Any = None
    while status == "creation_pending" and (
        timeout_s is None or sdk._get_time() - start < timeout_s
    ):
        created = fetch()
        info = created.get("creation_info") if isinstance(created, dict) else None
        status = info.get("status") if isinstance(info, dict) else None
    if status == "creation_failed":
        raise SdkException(
            f'The creation of "{name}" has failed. You can check the logs with '
            f'the "{logs_function_name}" function.',
            name="CreationFailed",
        )
    if status != "ready":
        raise SdkException(
            f'The creation of "{name}" was not ready in time. It is still being created '
            f'but this function stopped trying. Please check its status with "{get_function_name}".',
            name="TimeoutException",
        )
    return created
