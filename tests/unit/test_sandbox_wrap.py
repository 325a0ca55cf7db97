"""Sandbox.wrap without a server: what happens when bubblewrap is missing (auto: step code
runs unsandboxed with a warning; bwrap: refused), and, with the real bwrap, that a child
sees an empty data folder, a read-only machine, and its own work folder."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from shipyard_service.orchestrators.local import sandbox as sandbox_module
from shipyard_service.orchestrators.local.sandbox import Sandbox, SandboxUnavailable

from ..sandbox_tools import ensure_bwrap


def test_without_bwrap_auto_warns_and_bwrap_refuses(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    argv = [sys.executable, "-c", "pass"]
    with caplog.at_level(logging.WARNING):
        assert Sandbox(tmp_path / "data", "auto").wrap(argv, tmp_path) == argv
    assert "WITHOUT a sandbox" in caplog.text
    with pytest.raises(SandboxUnavailable):
        Sandbox(tmp_path / "data", "bwrap").wrap(argv, tmp_path)
    assert Sandbox(tmp_path / "data", "off").wrap(argv, tmp_path) == argv
    with pytest.raises(ValueError):
        Sandbox(tmp_path / "data", "maybe")


def test_child_sees_an_empty_data_folder_and_a_read_only_machine(tmp_path):
    ensure_bwrap()
    data = tmp_path / "data"
    (data / "work" / "job").mkdir(parents=True)
    (data / "secret.key").write_text("signing key")
    work = data / "work" / "job"
    probe = ("import os, sys\n"
             "data, here = sys.argv[1], sys.argv[2]\n"
             "print(sorted(os.listdir(data)))\n"
             "open(os.path.join(here, 'ok.txt'), 'w').write('ok')\n"
             "open('/tmp/scratch', 'w').write('ok')\n"
             "for target in (os.path.join(data, 'x'), '/etc/x', sys.argv[3]):\n"
             "    try:\n"
             "        open(target, 'w')\n"
             "        print('WROTE', target)\n"
             "    except OSError as exc:\n"
             "        print('refused', type(exc).__name__)\n"
             "print(os.getuid())\n")
    box = Sandbox(data, "bwrap")
    outside = tmp_path / "outside.txt"
    argv = box.wrap([sys.executable, "-c", probe, str(data), str(work), str(outside)], work)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "['work']"  # the way to its own folder, nothing else
    assert all(line.startswith("refused") for line in lines[1:4]), lines
    assert (work / "ok.txt").read_text() == "ok"
    assert not outside.exists() and not (data / "x").exists()
    if os.geteuid() == 0:
        assert lines[4] == "65534"


NOT_ROOT = '''
import importlib.util, json, os, subprocess, sys
spec = importlib.util.spec_from_file_location("sandbox", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
data = os.path.join(sys.argv[2], "data")
work = os.path.join(data, "work", "job")
os.makedirs(work)
open(os.path.join(data, "secret.key"), "w").write("signing key")
box = module.Sandbox(data, "bwrap")
child = ("import os, sys; print(sorted(os.listdir(sys.argv[1]))); "
         "open('mine.txt', 'w').write('ok'); print(os.getuid())")
argv = box.wrap([sys.executable, "-c", child, data], module.Path(work))
done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
print(json.dumps({"drop": box.drop_to_nobody, "uid": os.getuid(), "code": done.returncode,
                  "out": done.stdout.splitlines(), "err": done.stderr[-300:]}))
'''


def test_a_server_not_running_as_root_still_hides_the_data_folder(tmp_path):
    """docs/sandbox.md: as another user, bubblewrap uses a user namespace; the runner keeps
    the server's user id but sees the same mounts. Run here as `nobody` (from root) with
    Debian's /usr/bin/python3 and sandbox.py alone."""
    ensure_bwrap()
    if os.geteuid() == 0:
        root = tempfile.mkdtemp(prefix="shipyard-nonroot-")
        os.chmod(root, 0o755)
        os.chown(root, 65534, 65534)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    else:
        root, prefix = str(tmp_path), []
    try:
        done = subprocess.run([*prefix, "/usr/bin/python3", "-c", NOT_ROOT,
                               sandbox_module.__file__, root],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
        assert not seen["drop"] and seen["code"] == 0, seen
        # The data folder shows only the way to the work folder (no secret.key), and the
        # runner keeps the server's user id.
        assert seen["out"] == ["['work']", str(seen["uid"])], seen
        assert (Path(root) / "data" / "work" / "job" / "mine.txt").read_text() == "ok"
    finally:
        if os.geteuid() == 0:
            shutil.rmtree(root, ignore_errors=True)


ISOLATED = '''
import importlib.util, json, os, subprocess, sys
spec = importlib.util.spec_from_file_location("sandbox", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
runner_parent, root = sys.argv[2], sys.argv[3]
data = os.path.join(root, "data")
work_root = os.path.join(data, "work", "fork")
for name in ("mine", "theirs"):
    os.makedirs(os.path.join(work_root, name))
open(os.path.join(work_root, "theirs", "secret"), "w").write("theirs")
box = module.Sandbox(data, "bwrap")
child = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from shipyard_runner import forkserver
work_root = sys.argv[2]
mine = os.path.join(work_root, "mine")
open("/tmp/forkserver-file", "w").write("x")
pid, covered, pipe = forkserver.fork_ahead(True, [work_root], [])
if pid == 0:
    assert json.loads(pipe) == {"cwd": mine}
    seen = {"work_root": sorted(os.listdir(work_root)), "tmp": os.listdir("/tmp"),
            "pid": os.getpid()}
    try:
        open(os.path.join(work_root, "theirs", "secret")).read()
        seen["theirs"] = "READ"
    except OSError as exc:
        seen["theirs"] = type(exc).__name__
    open(os.path.join(mine, "ok.txt"), "w").write("ok")
    print(json.dumps(seen), flush=True)
    os._exit(0)
forkserver.start_runner(covered, pipe, {"cwd": mine})
os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""
argv = box.wrap([sys.executable, "-c", child, runner_parent, work_root],
                module.Path(work_root), read_only=[module.Path(runner_parent)])
done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
print(json.dumps({"code": done.returncode, "out": done.stdout, "err": done.stderr[-500:],
                  "ok": os.path.exists(os.path.join(work_root, "mine", "ok.txt"))}))
'''


@pytest.mark.parametrize("server_user", ["this one", "not root"])
def test_a_forked_execution_gets_a_sandbox_of_its_own(server_user):
    """What the fork server does for each execution (shipyard_runner/forkserver.py
    `fork_ahead`, then `start_runner` once the request came), inside its own sandbox:
    under a root server (the fork server runs as `nobody`) and under a server that is not
    root (bubblewrap's user namespace), the execution sees only its own folder of the work
    root, a fresh /tmp, and is pid 1."""
    ensure_bwrap()
    prefix = []
    if server_user == "not root" and os.geteuid() == 0:
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    root = tempfile.mkdtemp(prefix="shipyard-isolate-")
    os.chmod(root, 0o755)
    if prefix:
        os.chown(root, 65534, 65534)
    runner_parent = str(Path(__file__).resolve().parents[2] / "worker_image")
    try:
        done = subprocess.run([*prefix, "/usr/bin/python3", "-c", ISOLATED,
                               sandbox_module.__file__, runner_parent, root],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["code"] == 0, result
        seen = json.loads(result["out"])
        # /tmp: empty but for the way to its own folder (the work root is under /tmp here)
        assert seen == {"work_root": ["mine"], "tmp": [Path(root).name], "pid": 1,
                        "theirs": "FileNotFoundError"}, seen
        assert result["ok"], result
    finally:
        shutil.rmtree(root, ignore_errors=True)
