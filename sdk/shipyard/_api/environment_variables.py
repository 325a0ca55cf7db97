"""Environment variables injected into every execution (§6.8)."""

from __future__ import annotations

from .._logging import logged
from .base import SdkBase


class EnvironmentVariablesMixin(SdkBase):
    @logged("Environment variable definition")
    def create_or_update_environment_variable(
        self, environment_variable_name: str, environment_variable_value: str | float
    ) -> None:
        """Create or update an environment variable available to all executions (a number
        is stored as its text: 6 becomes "6")."""
        self._put(
            self._env("environment-variables"),
            json={"environment_variables": {environment_variable_name: environment_variable_value}},
        )

    def list_environment_variables(self) -> list[dict[str, str]]:
        """List the environment variables (``name``, ``value``)."""
        return self._get(self._env("environment-variables"))

    @logged("Environment variable deletion")
    def delete_environment_variable(self, environment_variable_name: str) -> dict[str, str]:
        """Delete an environment variable. Returns the deleted ``{"name", "value"}``."""
        return self._delete(self._env(f"environment-variables/{environment_variable_name}"))
