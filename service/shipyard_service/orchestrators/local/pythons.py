"""Finding the Python interpreters present on this machine (uv cannot download any here)."""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess


@functools.cache
def find_python(version: str) -> str | None:
    """Path of an interpreter for '3.X', from PATH, pyenv or the usual prefixes."""
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"),
                         reverse=True)
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for path in candidates:
        if path and os.path.exists(path) and "/shims/" not in path and _reports(path, version):
            return os.path.realpath(path)
    return None


def _reports(path: str, version: str) -> bool:
    try:
        out = subprocess.run([path, "-c", "import sys;print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


@functools.lru_cache(maxsize=1)
def available_versions() -> list[str]:
    return [f"3.{minor}" for minor in range(8, 15) if find_python(f"3.{minor}")]
