"""Environment variables of an environment: injected into executions, usable as inputs.

Values are sealed at rest (crypto.py). They are opened only to hand them to executions and
for the two documented routes that return them (list, and delete echoing the deleted
variable); the upsert answer carries names only."""

from __future__ import annotations

from .. import crypto
from ..errors import BadRequest, NotFound
from ..store import prepared
from ..store.db import utcnow
from ..store.models import Environment, EnvironmentVariable
from .names import check_env_var_name

MAX_VALUE_BYTES = 60_000


def upsert(svc, environment: Environment, variables: object) -> list[dict]:
    if not isinstance(variables, dict) or not variables:
        raise BadRequest(
            "'environment_variables' must be an object of NAME: value", {"field": "environment_variables"}
        )
    for name, value in variables.items():
        check_env_var_name(name)
        if not isinstance(value, str):
            raise BadRequest(f"The value of '{name}' must be a string", {"name": name})
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise BadRequest(f"The value of '{name}' is over {MAX_VALUE_BYTES} bytes", {"name": name})
    for name, value in variables.items():
        sealed = crypto.seal(value)
        (
            EnvironmentVariable.insert(environment=environment, name=name, value=sealed,
                                       updated_at=utcnow())
            .on_conflict(
                conflict_target=[EnvironmentVariable.environment, EnvironmentVariable.name],
                update={EnvironmentVariable.value: sealed, EnvironmentVariable.updated_at: utcnow()},
            )
            .execute()
        )
    svc.endpoints.forget_variables()  # the next execution gets the new values
    return [{"name": n} for n in variables]


def as_dict(environment: Environment) -> dict[str, str]:
    # Read for every execution: a prepared statement.
    rows = prepared.select(EnvironmentVariable, ("name", "value"), {"environment": environment})
    return {name: crypto.open_sealed(value) for name, value in rows}


def list_variables(environment: Environment, with_values: bool = True) -> list[dict]:
    """Without values (viewers), nothing is opened and each value is null."""
    if not with_values:
        rows = prepared.select(EnvironmentVariable, ("name", "value"), {"environment": environment})
        return [{"name": n, "value": None} for n in sorted(name for name, _ in rows)]
    return [{"name": n, "value": v} for n, v in sorted(as_dict(environment).items())]


def delete(svc, environment: Environment, name: str) -> dict:
    row = EnvironmentVariable.get_or_none(
        (EnvironmentVariable.environment == environment) & (EnvironmentVariable.name == name)
    )
    if row is None:
        raise NotFound(f"Environment variable '{name}' not found", {"name": name})
    row.delete_instance()
    svc.endpoints.forget_variables()
    return {"name": row.name, "value": crypto.open_sealed(row.value)}
