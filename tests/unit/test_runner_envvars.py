"""The runner's per-execution environment variables (shipyard_runner/envvars.py): each
execution sees exactly its own, whatever ran before; a deployment's variables stay set
between two calls, an ended execution's id and token never do."""

from __future__ import annotations

import ctypes
import os
import subprocess

import pytest
from shipyard_runner import cenv, envvars

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


# --- per-execution id and token: seen by os.environ and by C (subprocesses), never kept ---

ON_GLIBC = hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
IDS = ("SHIPYARD_EXECUTION_ID", "CRAFT_AI_EXECUTION_ID")
TOKENS = ("SHIPYARD_EXECUTION_TOKEN", "SHIPYARD_SDK_TOKEN", "CRAFT_AI_SDK_TOKEN")


def _seen() -> tuple:
    """(os.environ's, a real subprocess's) id and token, "" when unset."""
    names = (*IDS, *TOKENS)
    python = tuple(os.environ.get(name, "") for name in names)
    script = "; ".join('printf "%%s\\n" "$%s"' % name for name in names)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    return python, tuple(out.stdout.split("\n")[:len(names)])


def _expect(execution_id: str | None) -> tuple:
    if execution_id is None:
        values = ("",) * 5
    else:
        values = (execution_id,) * 2 + ("tok-" + execution_id,) * 3
    return values, values


def test_subprocesses_see_each_execution_s_id_and_token_and_nothing_after_it():
    for execution_id in ("e1", "e2-longer-one", "e3"):  # each buffer of a pair, re-put
        with envvars.applied(object(), _env(execution_id, **{VAR: "1"})):
            assert _seen() == _expect(execution_id)
        assert _seen() == _expect(None)
    # Nested (stack semantics): the inner one's, then the outer one's again, then none.
    outer, inner = object(), object()
    envvars.push(outer, _env("outer"))
    envvars.push(inner, _env("inner"))
    assert _seen() == _expect("inner")
    envvars.pop(inner)
    assert _seen() == _expect("outer")
    envvars.pop(outer)
    assert _seen() == _expect(None)
    if ON_GLIBC:  # the leak-free path was the one taken
        assert cenv._writer() is not False


def test_step_code_changing_or_removing_the_id_does_not_reach_the_next_execution():
    def change() -> None:
        os.environ["SHIPYARD_EXECUTION_ID"] = "set by step code"  # glibc's setenv() now
        os.environ.pop("SHIPYARD_SDK_TOKEN")

    _run("a", [], change=change)
    assert _seen() == _expect(None)
    with envvars.applied(object(), _env("b")):
        assert _seen() == _expect("b")
    assert _seen() == _expect(None)


def test_a_value_too_long_for_the_buffers_takes_the_plain_path():
    long_id = "x" * cenv.CAPACITY
    with envvars.applied(object(), _env(long_id)):
        assert _seen() == _expect(long_id)
    with envvars.applied(object(), _env("short")):
        assert _seen() == _expect("short")
    assert _seen() == _expect(None)
    with pytest.raises(ValueError):  # what os.environ says of a NUL, as before
        cenv.put("SHIPYARD_EXECUTION_ID", "a\0b")


@pytest.mark.skipif(not ON_GLIBC, reason="the leak measured is glibc's setenv() "
                    "(mallinfo2, glibc >= 2.33)")
def test_new_ids_and_tokens_at_every_call_leave_no_memory_behind():
    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2

    def malloc_in_use() -> int:
        info = mallinfo2()
        return info.uordblks + info.hblkhd

    def cycles(start: int, count: int) -> None:
        for i in range(start, start + count):
            execution_id = "%032x" % i
            with envvars.applied(object(), envvars.execution_env(
                    execution_id, "exe_" + execution_id, None, {VAR: "same each call"})):
                pass

    cycles(0, 1_000)  # first buffers, dict sizes
    before = malloc_in_use()
    cycles(1_000, 20_000)
    per_cycle = (malloc_in_use() - before) / 20_000
    # Was ~500 B: glibc kept every "NAME=value" setenv() made (5 new ones per call).
    assert per_cycle < 50, "%.1f B of malloc'd memory kept per execution" % per_cycle


def test_where_the_c_buffers_are_not_used_the_plain_path_behaves_the_same(monkeypatch):
    monkeypatch.setattr(cenv, "_state", False)  # as on musl or an unexpected os.environ
    with envvars.applied(object(), _env("plain")):
        assert _seen() == _expect("plain")
    assert _seen() == _expect(None)
