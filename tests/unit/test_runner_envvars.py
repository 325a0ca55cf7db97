"""The runner's per-execution environment variables (shipyard_runner/envvars.py): each
execution sees exactly its own, whatever ran before; a deployment's variables stay set
between two calls, an ended execution's id and token never do."""

from __future__ import annotations

import os

import pytest
from shipyard_runner import envvars

VAR = "SHIPYARD_TEST_ENVVARS_VAR"
OTHER = "SHIPYARD_TEST_ENVVARS_OTHER"


@pytest.fixture(autouse=True)
def _clean_environment():
    names = (VAR, OTHER, *envvars._PER_EXECUTION)
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    yield
    assert envvars._running == 0 and not envvars._stacks, "an execution was left pushed"
    envvars.push(object(), {})  # puts back what the last execution left
    envvars.pop(object())
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _env(execution_id: str, **user: str) -> dict:
    return envvars.execution_env(execution_id, "tok-" + execution_id, None, user)


def _run(execution_id: str, seen: list, change=None, **user: str) -> None:
    owner = object()
    with envvars.applied(owner, _env(execution_id, **user)):
        seen.append((os.environ.get("SHIPYARD_EXECUTION_ID"), os.environ.get(VAR),
                     os.environ.get(OTHER)))
        if change is not None:
            change()


def test_each_execution_sees_its_own_variables_whatever_ran_before():
    seen: list = []
    _run("a", seen, **{VAR: "1", OTHER: "x"})
    # Between two calls: the deployment's variables stay, the execution's id and token go.
    assert os.environ.get(VAR) == "1"
    assert not any(os.environ.get(name) for name in envvars._PER_EXECUTION)
    _run("b", seen, **{VAR: "1"})  # OTHER not set by this one: put back (unset) first
    _run("c", seen, **{VAR: "2"})
    _run("d", seen)
    assert seen == [("a", "1", "x"), ("b", "1", None), ("c", "2", None), ("d", None, None)]
    envvars.push(object(), {})
    envvars.pop(object())
    assert os.environ.get(VAR) is None and os.environ.get(OTHER) is None


def test_a_value_step_code_changed_is_not_seen_by_the_next_execution():
    seen: list = []
    os.environ[VAR] = "base"

    def change() -> None:
        os.environ[VAR] = "changed by step code"

    _run("a", seen, change=change, **{VAR: "1"})
    _run("b", seen, **{VAR: "1"})
    _run("c", seen)
    assert [s[1] for s in seen] == ["1", "1", "base"]


def test_parallel_executions_put_back_at_once_what_only_the_ended_one_set():
    a, b = object(), object()
    envvars.push(a, _env("a", **{VAR: "1", OTHER: "x"}))
    envvars.push(b, _env("b", **{VAR: "2"}))
    assert (os.environ.get(VAR), os.environ.get(OTHER)) == ("2", "x")
    envvars.pop(a)  # b still runs: a's OTHER goes now, VAR is b's
    assert (os.environ.get(VAR), os.environ.get(OTHER)) == ("2", None)
    assert os.environ.get("SHIPYARD_EXECUTION_ID") == "b"
    envvars.pop(b)
    assert os.environ.get("SHIPYARD_EXECUTION_ID") is None
