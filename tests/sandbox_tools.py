"""bubblewrap for the sandbox tests: Debian's `bubblewrap`, installed with apt-get when
missing (as .ci/run and `make sandbox-tool` do). Under CI=true, not getting it fails."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def ensure_bwrap() -> None:
    if shutil.which("bwrap"):
        return
    why = "bubblewrap is not installed and installing it needs root"
    if os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                   "-o", "DPkg::Lock::Timeout=300", "bubblewrap"]
        if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=300"],
                           env=env, capture_output=True, timeout=600)
            done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
            why = f"apt-get install bubblewrap failed: {done.stdout[-1500:]}"
        if shutil.which("bwrap"):
            return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the sandbox tests must run on CI: {why}")
    pytest.skip(why)
