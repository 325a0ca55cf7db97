"""Under CI=true a skip of a test that must run here fails the run (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from ..helpers import ROOT

PROBE = '''
import os
import pytest

def test_something_missing():
    pytest.skip("something missing")

@pytest.mark.cluster
def test_needs_a_cluster():
    pytest.skip("no cluster here")

@pytest.mark.skipif(True, reason="left out of this pass on purpose")
def test_left_out():
    pass
'''


def _run(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "tests.conftest", "-p",
         "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull, str(probe)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_skip_fails_under_ci(tmp_path):
    done = _run(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout
    assert "1 failed, 2 skipped" in done.stdout, done.stdout
    assert "FAILED" in done.stdout and "test_something_missing" in done.stdout
    assert "skipped under CI=true, where this test must run" in done.stdout


def test_a_skip_is_a_skip_elsewhere(tmp_path):
    done = _run(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout
    assert "3 skipped" in done.stdout, done.stdout
