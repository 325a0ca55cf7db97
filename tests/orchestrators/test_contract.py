"""The Orchestrator contract, one suite for every orchestrator (see conftest.py): what the
platform relies on, observed from the outside (callbacks, and what runners report to the
API), never from an implementation's internals."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from .conftest import RUN_TIMEOUT_S

HELLO = '''
import os

def run(name="world"):
    print("hello", name, os.environ.get("GREETING", "-"))
    return {"message": "hi " + name}
'''

FILES = '''
def run(data):
    with open(data["path"]) as f:
        text = f.read()
    with open("out.txt", "w") as f:
        f.write(text.upper())
    return {"upper": {"path": "out.txt"}, "size": len(text)}
'''

FAILS = '''
def run():
    raise ValueError("bad input")
'''

CRASHES = '''
import os, sys

def run():
    print("about to crash", file=sys.stderr, flush=True)
    os._exit(7)
'''

SLEEPS = '''
import time

def run():
    time.sleep(600)
'''

RESIDENT = '''
import os
# One number per import of the module: a pid would not tell processes apart inside the
# sandbox's pid namespace, where every runner sees the same small pid.
LOADED = int.from_bytes(os.urandom(6), "big")
print("module imported")

def run(x=1):
    return {"load_id": LOADED, "double": x * 2}
'''


def _built(harness, code: str):
    step_id, env_key, error = harness.build({"main.py": code})
    assert error is None, error
    assert env_key
    return env_key, harness.code_dirs[step_id]


def _finished(harness, launch):
    """The finish payload the runner posted to the API."""
    eid = launch.key
    assert harness.api.wait(lambda: eid in harness.api.finished, RUN_TIMEOUT_S), \
        [e for e in harness.recorder.events if eid in e]
    return harness.api.finished[eid]


def _answered(harness, deployment_id: int, launch) -> dict:
    """A resident runner's answer to a dispatched run: the future `dispatch` returns. The
    runner itself makes no finish call (the domain records the answer)."""
    answer = harness.orchestrator.dispatch(deployment_id, launch).result(RUN_TIMEOUT_S)
    assert answer.payload is not None, answer
    assert launch.key not in harness.api.finished
    return answer.payload


# Builds -------------------------------------------------------------------------------------
def test_build_gives_an_environment_key_and_logs(harness):
    step_id, env_key, error = harness.build({"main.py": HELLO})
    assert error is None and env_key
    assert harness.recorder.find("build_log", step_id), "a build says what it does"
    # The same step built again gives the same environment (nothing rebuilt from scratch).
    _, again, error = harness.build({"main.py": HELLO})
    assert error is None and again == env_key


def test_build_fails_when_the_function_file_is_missing(harness):
    _, env_key, error = harness.build({"other.py": HELLO}, function_path="main.py")
    assert env_key is None
    assert "main.py" in error


def test_build_fails_on_unresolvable_requirements(harness):
    _, env_key, error = harness.build({"main.py": HELLO},
                                      requirements="shipyard-unresolvable-package-xyz==0.0.1\n")
    assert env_key is None and error


# Elastic executions ----------------------------------------------------------------------------
def test_execution_reports_outputs_logs_and_exit(harness):
    env_key, code_dir = _built(harness, HELLO)
    launch = harness.launch(env_key, code_dir, inputs={"name": "argo"},
                            outputs=[{"name": "message", "data_type": "string"}],
                            environment_variables={"GREETING": "howdy"})
    harness.orchestrator.start_execution(launch)
    result = _finished(harness, launch)
    assert result["status"] == "Succeeded", result
    assert result["outputs"] == {"message": "hi argo"}
    assert harness.api.wait(lambda: any("hello argo howdy" in e.get("message", "")
                                        for e in harness.api.logs.get(launch.execution_id, [])),
                            30)
    exited = harness.recorder.wait("execution_exited", launch.execution_id)
    assert exited[2] == 0
    assert not harness.is_alive(launch.execution_id)


STEP = '''
import os, time

def run(tag):
    time.sleep(1)
    print("step", tag)
    return {"seen": os.environ.get("SHIPYARD_EXECUTION_ID", "") + "/" + tag}
'''


def test_steps_of_one_execution_run_side_by_side(harness):
    """A multi-step execution's steps: launches sharing the execution id, told apart by
    their run key (callbacks, objects) and token, running at once (fan-out)."""
    env_key, code_dir = _built(harness, STEP)
    execution_id = f"graph-{time.monotonic_ns() % 10**6}"
    launches = [harness.launch(env_key, code_dir, inputs={"tag": name},
                               outputs=[{"name": "seen", "data_type": "string"}],
                               execution_id=execution_id, step_name=name)
                for name in ("left", "right")]
    for launch in launches:
        harness.orchestrator.start_execution(launch)
    for launch, name in zip(launches, ("left", "right")):
        result = _finished(harness, launch)
        assert result["status"] == "Succeeded", result
        # The runner works for the execution (its SDK calls, metrics), as one of its steps.
        assert result["outputs"] == {"seen": f"{execution_id}/{name}"}
        assert harness.recorder.wait("execution_exited", launch.key)[2] == 0
        assert any(f"step {name}" in e.get("message", "")
                   for e in harness.api.logs.get(launch.key, []))
    assert not harness.recorder.find("execution_exited", execution_id)
    assert not any(harness.is_alive(launch.key) for launch in launches)


LATE = '''
import time

def run(tag, data=None):
    time.sleep(2)
    if data is not None:
        with open(data["path"]) as f:
            tag += "+" + f.read()
    return {"seen": tag}
'''


def test_a_runner_outlives_the_thread_that_started_it(harness):
    """Executions are started from threads that end soon after (request threads, the graph
    scheduler's, a finished runner's watcher): the runner must not end with its thread, as
    it did with bubblewrap's --die-with-parent (a parent-death signal sent when the spawning
    THREAD exits). Three launches on the local backend: the first of its environment (a cold
    start, which asks the starter thread for a fork server), one with a local file (cold),
    and one more (forked, when the fork server is up by then)."""
    env_key, code_dir = _built(harness, LATE)
    data = harness.settings.data_dir / "executions" / "late" / "inputs" / "data"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("file")
    launches = [harness.launch(env_key, code_dir, inputs=inputs,
                               outputs=[{"name": "seen", "data_type": "string"}])
                for inputs in ({"tag": "json"}, {"tag": "cold", "data": {"path": str(data)}},
                               {"tag": "again"})]
    for launch in launches:
        starter = threading.Thread(target=harness.orchestrator.start_execution, args=(launch,))
        starter.start()
        starter.join(60)
        assert not starter.is_alive()
    for launch, seen in zip(launches, ("json", "cold+file", "again")):
        result = _finished(harness, launch)
        assert result["status"] == "Succeeded", result
        assert result["outputs"] == {"seen": seen}
        assert harness.recorder.wait("execution_exited", launch.key)[2] == 0


def test_file_inputs_and_outputs(harness):
    env_key, code_dir = _built(harness, FILES)
    data = harness.settings.data_dir / "executions" / "x" / "inputs" / "data"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("some text")
    launch = harness.launch(env_key, code_dir, inputs={"data": {"path": str(data)}},
                            outputs=[{"name": "upper", "data_type": "file"},
                                     {"name": "size", "data_type": "number"}])
    harness.orchestrator.start_execution(launch)
    result = _finished(harness, launch)
    assert result["status"] == "Succeeded", result
    assert result["outputs"]["size"] == 9
    assert harness.api.outputs[launch.execution_id]["upper"] == b"SOME TEXT"


def test_a_failing_function_is_reported_failed(harness):
    env_key, code_dir = _built(harness, FAILS)
    launch = harness.launch(env_key, code_dir)
    harness.orchestrator.start_execution(launch)
    result = _finished(harness, launch)
    assert result["status"] == "Failed"
    assert result["error"]["type"] == "ValueError" and "bad input" in result["error"]["message"]
    assert harness.recorder.wait("execution_exited", launch.execution_id)[2] == 1


def test_a_runner_that_dies_is_reported_with_its_exit_code_and_output(harness):
    env_key, code_dir = _built(harness, CRASHES)
    launch = harness.launch(env_key, code_dir)
    harness.orchestrator.start_execution(launch)
    exited = harness.recorder.wait("execution_exited", launch.execution_id)
    assert exited[2] == 7
    assert "about to crash" in exited[3]
    assert launch.execution_id not in harness.api.finished


def test_cancel_stops_a_running_execution(harness):
    env_key, code_dir = _built(harness, SLEEPS)
    launch = harness.launch(env_key, code_dir)
    harness.orchestrator.start_execution(launch)
    harness.recorder.wait("execution_started", launch.execution_id)
    # is_alive is not asked here: the embedded backend kills what it finds alive (recovery).
    harness.orchestrator.cancel_execution(launch.execution_id)
    exited = harness.recorder.wait("execution_exited", launch.execution_id, 60)
    assert exited[2] != 0
    assert not harness.is_alive(launch.execution_id)
    assert launch.execution_id not in harness.api.finished


def test_unknown_executions_are_not_alive(harness):
    assert not harness.is_alive("never-started-1")


# Deployments ---------------------------------------------------------------------------------
def _wait_state(harness, deployment_id: int, status: str, timeout_s: float = 120,
                pods: int | None = None):
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        state = harness.orchestrator.deployment_state(deployment_id)
        if state.status == status and (pods is None or
                                       sum(p.status == "Running" for p in state.pods) == pods):
            return state
        time.sleep(0.3)
    raise AssertionError(f"deployment {deployment_id} is {state}, not {status}")


def test_low_latency_replicas_serve_dispatched_executions_and_reload(harness):
    env_key, code_dir = _built(harness, RESIDENT)
    spec = harness.spec(41, env_key, code_dir, replicas=2, max_parallel=2)
    harness.orchestrator.ensure_deployment(spec)
    state = _wait_state(harness, 41, "up", pods=2)
    assert len({p.pod_id for p in state.pods}) == 2
    assert harness.api.wait(lambda: any("module imported" in e.get("message", "")
                                        for e in harness.api.deployment_logs), 30)

    results = []
    for value in (1, 2, 3):
        launch = harness.launch(env_key, code_dir, inputs={"x": value},
                                outputs=[{"name": "load_id", "data_type": "number"},
                                         {"name": "double", "data_type": "number"}])
        results.append(_answered(harness, 41, launch))
    assert [r["outputs"]["double"] for r in results] == [2, 4, 6]

    # update_deployment: a new generation replaces the resident runners, so the module is
    # imported again (a new process) and executions then run there.
    old_loads = {r["outputs"]["load_id"] for r in results}
    harness.orchestrator.ensure_deployment(harness.spec(41, env_key, code_dir, replicas=2,
                                                        max_parallel=2, generation=2))
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the runners were not reloaded"
        if harness.orchestrator.deployment_state(41).status == "up":
            launch = harness.launch(env_key, code_dir, inputs={"x": 5},
                                    outputs=[{"name": "load_id", "data_type": "number"},
                                             {"name": "double", "data_type": "number"}])
            result = _answered(harness, 41, launch)
            assert result["outputs"]["double"] == 10
            if result["outputs"]["load_id"] not in old_loads:
                break
        time.sleep(0.5)

    harness.orchestrator.remove_deployment(41)
    deadline = time.monotonic() + 60
    while harness.orchestrator.deployment_state(41).status == "up":
        assert time.monotonic() < deadline, "still up after removal"
        time.sleep(0.3)


FIRST = '''
def run(x):
    return {"y": x + 1, "step": "first"}
'''
SECOND = '''
def run(y):
    return {"z": y * 10, "step": "second"}
'''


def test_low_latency_steps_each_have_their_resident_runners(harness):
    """A multi-step pipeline in low-latency mode: one spec per step under one deployment id,
    each step its own resident runners (on Argo its own Deployment + Service); a launch
    goes to its step's runners, which answer it; the deployment is up when every step is,
    and removing it removes every step's runners."""
    built = {name: _built(harness, code) for name, code in (("first", FIRST),
                                                             ("second", SECOND))}
    token = f"dep_steps_{time.monotonic_ns()}"
    for name, (env_key, code_dir) in built.items():
        harness.orchestrator.ensure_deployment(
            harness.spec(43, env_key, code_dir, step_name=name, runner_token=token))
    state = _wait_state(harness, 43, "up", pods=2)
    assert len({p.pod_id for p in state.pods}) == 2
    execution_id = f"graph-ll-{time.monotonic_ns() % 10**6}"
    value = 4
    for name, input_name, output_name in (("first", "x", "y"), ("second", "y", "z")):
        env_key, code_dir = built[name]
        launch = harness.launch(env_key, code_dir, inputs={input_name: value},
                                outputs=[{"name": output_name, "data_type": "number"},
                                         {"name": "step", "data_type": "string"}],
                                execution_id=execution_id, step_name=name)
        result = _answered(harness, 43, launch)
        assert result["status"] == "Succeeded", result
        assert result["outputs"]["step"] == name  # that step's code, in its runners
        value = result["outputs"][output_name]
    assert value == 50
    assert not harness.recorder.find("execution_exited", execution_id)
    if harness.stub is not None:  # one Deployment and one Service per step, nothing shared
        from shipyard_service.orchestrators.argo import names

        expected = {names.resident(43, "first"), names.resident(43, "second")}
        assert set(harness.stub.objects["deployments"]) == expected
        assert set(harness.stub.objects["services"]) == expected
        selectors = [harness.stub.objects["services"][n]["spec"]["selector"] for n in expected]
        assert selectors[0] != selectors[1]

    harness.orchestrator.remove_deployment(43)
    deadline = time.monotonic() + 60
    while harness.orchestrator.deployment_state(43).status == "up":
        assert time.monotonic() < deadline, "still up after removal"
        time.sleep(0.3)
    if harness.stub is not None:
        while harness.stub.objects["deployments"] or harness.stub.objects["services"]:
            assert time.monotonic() < deadline, harness.stub.objects["deployments"].keys()
            time.sleep(0.3)


def test_periodic_deployment_ticks_in_utc(harness):
    env_key, code_dir = _built(harness, HELLO)
    spec = harness.spec(42, env_key, code_dir, execution_rule="periodic", mode="elastic",
                        schedule="* * * * *")
    harness.orchestrator.ensure_deployment(spec)
    event = harness.next_tick(spec)
    fire_time = event[2]
    assert isinstance(fire_time, dt.datetime) and fire_time.tzinfo is None
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert fire_time.second == 0 and abs((now - fire_time).total_seconds()) < 120
    harness.orchestrator.remove_deployment(42)


@pytest.mark.parametrize("bad", ["", "not-an-image"])
def test_starting_without_a_usable_environment_fails_loudly(harness, bad, tmp_path):
    launch = harness.launch(bad, tmp_path)
    try:
        harness.orchestrator.start_execution(launch)
    except Exception:  # noqa: BLE001 - refused at once (each backend has its own error)
        return
    # Accepted: the failure must then be reported, never a silent pending execution.
    exited = harness.recorder.wait("execution_exited", launch.execution_id, 60)
    assert exited[2] != 0
    assert launch.execution_id not in harness.api.finished
