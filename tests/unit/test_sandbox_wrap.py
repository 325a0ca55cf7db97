"""Sandbox.wrap without a server: what happens when bubblewrap is missing (auto: step code
runs unsandboxed with a warning; bwrap: refused), and, with the real bwrap, that a child
sees an empty data folder, a read-only machine, and its own work folder."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

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
