"""Deployments: creation (endpoint or periodic), inspection, update, logs, deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from .._dates import logs_query
from .._logging import log_action, logged
from ..constants import (
    DEPLOYMENT_EXECUTION_RULES,
    DEPLOYMENT_MODES,
    DEPLOYMENT_STATUS,
    FINAL_DEPLOYMENT_STATUSES,
)
from ..exceptions import SdkException
from ..io import InputSource, OutputDestination, inputs_mapping_to_dicts, outputs_mapping_to_dicts
from .base import SdkBase
from .pipelines import latest_execution_id

_MODES = {mode.value for mode in DEPLOYMENT_MODES}
_RULES = {rule.value for rule in DEPLOYMENT_EXECUTION_RULES}


def _text(value: Any) -> Any:
    """Enumeration members as their value (other values unchanged)."""
    return getattr(value, "value", value)


def _check_timeout(timeout_s: float | None) -> None:
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError("'timeout_s' must be greater than 0 or None.")


class DeploymentsMixin(SdkBase):
    @logged("Deployment creation")
    def create_deployment(
        self,
        pipeline_name: str,
        deployment_name: str,
        execution_rule: str,
        mode: str = DEPLOYMENT_MODES.ELASTIC,
        schedule: str | None = None,
        endpoint_url_path: str | None = None,
        inputs_mapping: Sequence[InputSource] | None = None,
        outputs_mapping: Sequence[OutputDestination] | None = None,
        description: str | None = None,
        enable_parallel_executions: bool | None = None,
        max_parallel_executions_per_pod: int | None = None,
        ram_request: str | None = None,
        gpu_request: int | None = None,
        wait_for_completion: bool = True,
        timeout_s: float | None = None,
        use_cache: bool = True,
    ) -> dict[str, Any]:
        """Deploy a pipeline behind an endpoint or on a schedule.

        Args:
            execution_rule: ``"endpoint"`` or ``"periodic"``
                (:class:`DEPLOYMENT_EXECUTION_RULES`).
            mode: ``"elastic"`` (default) or ``"low_latency"`` (:class:`DEPLOYMENT_MODES`).
            schedule: 5-field cron expression in UTC; periodic deployments only.
            endpoint_url_path: last part of the endpoint URL (default: the deployment
                name); endpoint deployments only.
            use_cache: False runs every step of its executions, even those created with
                ``cache_results=True`` whose result the cache holds.

        Returns:
            The deployment as returned by :meth:`get_deployment` (waiting until it is
            up when ``wait_for_completion`` is True).
        """
        _check_timeout(timeout_s)
        mode = _text(mode)
        execution_rule = _text(execution_rule)
        if mode not in _MODES:
            raise ValueError("Invalid 'mode', must be in ['elastic', 'low_latency'].")
        if execution_rule not in _RULES:
            raise ValueError("Invalid 'execution_rule', must be in ['endpoint', 'periodic'].")
        if schedule is not None and execution_rule != "periodic":
            raise ValueError("'schedule' can only be specified if 'execution_rule' is 'periodic'.")
        if endpoint_url_path is not None and execution_rule != "endpoint":
            raise ValueError(
                "'endpoint_url_path' can only be specified if 'execution_rule' is 'endpoint'."
            )
        body = {
            "pipeline_name": pipeline_name,
            "name": deployment_name,
            "description": description,
            "mode": mode,
            "enable_parallel_executions": enable_parallel_executions,
            "max_parallel_executions_per_pod": max_parallel_executions_per_pod,
            "ram_request": ram_request,
            "gpu_request": gpu_request,
            "schedule": schedule,
            "endpoint_url_path": endpoint_url_path,
            "inputs_mapping": inputs_mapping_to_dicts(inputs_mapping),
            "outputs_mapping": outputs_mapping_to_dicts(outputs_mapping),
            "use_cache": None if use_cache is True else use_cache,
        }
        body = {key: value for key, value in body.items() if value is not None}
        path = "endpoints" if execution_rule == "endpoint" else "periodic-deployment"
        log_action(self, "Please wait while deployment is being created. This may take a while...")
        self._post(self._env(path), json=body, allow_redirects=False)
        return self.get_deployment(deployment_name, wait_for_completion, timeout_s)

    def get_deployment(
        self,
        deployment_name: str,
        wait_for_completion: bool = False,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Get a deployment; with ``wait_for_completion``, wait until its status is final
        (``up``, ``creation_failed``, ``disabled`` or ``standby``).

        Returns:
            dict with ``name``, ``mode``, ``pipeline``, ``execution_rule``,
            ``status``, mappings, ``last_execution_id``, etc.
        """
        _check_timeout(timeout_s)
        url = self._env(f"deployments/{deployment_name}")
        if wait_for_completion:
            start = self._get_time()
            status: Any = DEPLOYMENT_STATUS.CREATION_PENDING.value
            deployment: Any = None
            while status not in FINAL_DEPLOYMENT_STATUSES and (
                timeout_s is None or self._get_time() - start < timeout_s
            ):
                deployment = self._get(f"{url}?wait_for_completion=true", allow_redirects=False)
                status = deployment.get("status") if isinstance(deployment, dict) else None
            if status == DEPLOYMENT_STATUS.CREATION_FAILED.value:
                raise SdkException(
                    "The deployment creation failed. Please check the logs for more details.",
                    name="CreationFailedException",
                )
            if status not in FINAL_DEPLOYMENT_STATUSES:
                raise SdkException(
                    "The deployment was not ready in time. It is still being created but this "
                    'function stopped trying. Please check its status with "get_deployment" '
                    "with wait_for_completion parameter set to false.",
                    name="TimeoutException",
                )
        else:
            deployment = self._get(url)
        if not isinstance(deployment, dict):
            return deployment
        latest = self._get(self._env(f"deployments/{deployment_name}/executions/latest"))
        result = {k: v for k, v in deployment.items() if k not in ("is_archived", "id")}
        result["last_execution_id"] = latest_execution_id(latest)
        if isinstance(result.get("pipeline"), dict):
            result["pipeline"] = {k: v for k, v in result["pipeline"].items() if k != "id"}
        return result

    def list_deployments(self) -> list[dict[str, Any]]:
        """Get all deployments (``name``, ``pipeline_name``, ``execution_rule``,
        ``mode``, ``is_enabled``, ``created_at``)."""
        return self._get(self._env("deployments"))

    @logged("Deployment update")
    def update_deployment(
        self,
        deployment_name: str,
        is_enabled: bool | None = None,
        inputs_mapping: Sequence[InputSource] | None = None,
        outputs_mapping: Sequence[OutputDestination] | None = None,
        schedule: str | None = None,
        wait_for_completion: bool = True,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Enable/disable a deployment, change constant/data-store mappings or the
        schedule. With no property, a low-latency deployment is reloaded.

        Returns:
            The deployment as returned by :meth:`get_deployment`.
        """
        _check_timeout(timeout_s)
        body = {
            "is_enabled": is_enabled,
            "schedule": schedule,
            "inputs_mapping": inputs_mapping_to_dicts(inputs_mapping),
            "outputs_mapping": outputs_mapping_to_dicts(outputs_mapping),
        }
        body = {key: value for key, value in body.items() if value is not None}
        self._patch(self._env(f"deployments/{deployment_name}"), json=body, allow_redirects=False)
        return self.get_deployment(deployment_name, wait_for_completion, timeout_s)

    def get_deployment_logs(
        self,
        deployment_name: str,
        from_datetime: datetime | None = None,
        to_datetime: datetime | None = None,
        limit: int | None = None,
        type: str | None = None,
    ) -> list[dict[str, Any]]:
        """Get the logs of a deployment (``timestamp``, ``message``, ``stream``,
        ``pod_id``, ``type``). ``type`` (e.g. ``"deployment"``) keeps only the logs of
        that type; it is applied locally."""
        body = logs_query(from_datetime, to_datetime, limit)
        log_action(self, "Please wait while logs are being fetched. This may take a while...")
        logs = self._post(self._env(f"deployments/{deployment_name}/logs"), json=body)
        if type is not None and isinstance(logs, list):
            logs = [
                log for log in logs if not isinstance(log, dict) or log.get("type", type) == type
            ]
        return logs

    @logged("Deployment deletion")
    def delete_deployment(self, deployment_name: str) -> dict[str, Any]:
        """Delete a deployment. Returns ``{"name", "execution_rule"}``."""
        return self._delete(self._env(f"deployments/{deployment_name}"))
