"""Public enumerations and special creation-parameter values."""

from __future__ import annotations

from enum import Enum


class _StrEnum(str, Enum):
    """A ``str`` enumeration whose members print, format and compare as their value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


class DEPLOYMENT_EXECUTION_RULES(_StrEnum):
    """Enumeration for deployments execution rules."""

    ENDPOINT = "endpoint"
    PERIODIC = "periodic"


class DEPLOYMENT_MODES(_StrEnum):
    """Enumeration for deployments modes."""

    LOW_LATENCY = "low_latency"
    ELASTIC = "elastic"


class DEPLOYMENT_STATUS(_StrEnum):
    """Enumeration for deployments status."""

    CREATION_PENDING = "creation_pending"
    UP = "up"
    CREATION_FAILED = "creation_failed"
    DOWN_RETRYING = "down_retrying"
    STANDBY = "standby"
    DISABLED = "disabled"


#: Deployment statuses that end ``get_deployment(wait_for_completion=True)``.
FINAL_DEPLOYMENT_STATUSES = frozenset(
    {
        DEPLOYMENT_STATUS.UP.value,
        DEPLOYMENT_STATUS.CREATION_FAILED.value,
        DEPLOYMENT_STATUS.DISABLED.value,
        DEPLOYMENT_STATUS.STANDBY.value,
    }
)


class CREATION_PARAMETER_VALUE(Enum):
    """Special values for the ``container_config`` entries of step/pipeline creation."""

    #: Use the value from the project settings (same as not giving the key).
    FALLBACK_PROJECT = "FALLBACK_PROJECT"
    #: Explicitly set the parameter to null instead of the project value.
    NULL = "NULL"


#: Name used by the product documentation for :class:`CREATION_PARAMETER_VALUE`.
STEP_PARAMETER = CREATION_PARAMETER_VALUE
