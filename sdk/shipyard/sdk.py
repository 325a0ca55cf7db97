"""The :class:`CraftAiSdk` client, assembled from one mixin per platform resource."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

from . import _datastore
from ._api.data_store import DataStoreMixin
from ._api.deployments import DeploymentsMixin
from ._api.endpoints import EndpointsMixin
from ._api.environment_variables import EnvironmentVariablesMixin
from ._api.executions import ExecutionsMixin
from ._api.metrics import MetricsMixin
from ._api.pipelines import PipelinesMixin
from ._api.projects import ProjectsMixin
from ._api.steps import StepsMixin
from ._api.users import UsersMixin
from ._http import HttpClient
from ._version import __version__


def _setting(argument: str | None, name: str) -> str | None:
    """The argument if given, else ``SHIPYARD_<name>``, else ``CRAFT_AI_<name>``."""
    if argument is not None:
        return argument
    return os.environ.get(f"SHIPYARD_{name}") or os.environ.get(f"CRAFT_AI_{name}")


def server_root(url: str) -> str:
    """``scheme://host[:port]`` of a URL (where Shipyard serves its control API)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"Invalid environment URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


class CraftAiSdk(
    UsersMixin,
    StepsMixin,
    PipelinesMixin,
    ExecutionsMixin,
    DeploymentsMixin,
    EndpointsMixin,
    EnvironmentVariablesMixin,
    DataStoreMixin,
    MetricsMixin,
    ProjectsMixin,
):
    """Client of a Shipyard environment (same functions as ``craft-ai-sdk`` 0.60).

    Args:
        sdk_token: SDK token. Defaults to ``SHIPYARD_SDK_TOKEN``, then
            ``CRAFT_AI_SDK_TOKEN``.
        environment_url: URL of the environment. Defaults to
            ``SHIPYARD_ENVIRONMENT_URL``, then ``CRAFT_AI_ENVIRONMENT_URL``.
        control_url: URL of the control API. Defaults to ``SHIPYARD_CONTROL_URL``, then
            ``CRAFT_AI_CONTROL_URL``, then the root (``scheme://host:port``) of the
            environment URL.
        verbose_log: print progress messages on stderr. Defaults to the
            ``SDK_VERBOSE_LOG`` variable (``true``/``false``), else True only in an
            interactive Python session.
        warn_on_metric_outside_of_step: warn when a metric is recorded outside an
            execution. Defaults to True.

    Raises:
        ValueError: when the token or the environment URL is missing.

    Attributes:
        base_environment_url, base_environment_api_url, base_control_url,
        base_control_api_url: the URLs in use.
    """

    _MULTIPART_THRESHOLD: int = _datastore.MULTIPART_THRESHOLD
    _MULTIPART_PART_SIZE: int = _datastore.MULTIPART_PART_SIZE
    _version = __version__

    def __init__(
        self,
        sdk_token: str | None = None,
        environment_url: str | None = None,
        control_url: str | None = None,
        verbose_log: bool | None = None,
        warn_on_metric_outside_of_step: bool = True,
    ) -> None:
        sdk_token = _setting(sdk_token, "SDK_TOKEN")
        if not sdk_token:
            raise ValueError(
                'Parameter "sdk_token" should be set, since neither "SHIPYARD_SDK_TOKEN" '
                'nor "CRAFT_AI_SDK_TOKEN" environment variable is defined.'
            )
        environment_url = _setting(environment_url, "ENVIRONMENT_URL")
        if not environment_url:
            raise ValueError(
                'Parameter "environment_url" should be set, since neither '
                '"SHIPYARD_ENVIRONMENT_URL" nor "CRAFT_AI_ENVIRONMENT_URL" environment '
                "variable is defined."
            )
        environment_url = environment_url.rstrip("/")
        control_url = _setting(control_url, "CONTROL_URL") or server_root(environment_url)
        control_url = control_url.rstrip("/")

        self.base_environment_url = environment_url
        self.base_environment_api_url = f"{environment_url}/api/v1"
        self.base_control_url = control_url
        self.base_control_api_url = f"{control_url}/api/v1"

        env_verbose = os.environ.get("SDK_VERBOSE_LOG", "").lower()
        explicit_verbose_log = verbose_log
        if verbose_log is None:
            if env_verbose in ("true", "false"):
                verbose_log = env_verbose == "true"
            else:
                verbose_log = hasattr(sys, "ps1")
        # Progress bars are off when logs are explicitly turned off.
        self._progress_enabled = explicit_verbose_log is not False and env_verbose != "false"
        self.verbose_log = bool(verbose_log)
        self.warn_on_metric_outside_of_step = warn_on_metric_outside_of_step
        self._http = HttpClient(self.base_control_api_url, sdk_token)

    @property
    def warn_on_metric_outside_of_step(self) -> bool:
        """Whether recording a metric outside an execution emits a warning."""
        return self._warn_on_metric_outside_of_step

    @warn_on_metric_outside_of_step.setter
    def warn_on_metric_outside_of_step(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError("warn_on_metric_outside_of_step must be a boolean")
        self._warn_on_metric_outside_of_step = value

    def __repr__(self) -> str:
        return f"CraftAiSdk(environment_url={self.base_environment_url!r})"
