from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import ROOT

CLIENT_PACKAGES = ["craft-ai-sdk==0.60.0", "scikit-learn", "pandas", "pyarrow", "numpy"]


@pytest.fixture(scope="session")
def client_python() -> Path:
    """A separate virtualenv holding the unmodified official client (and our SDK beside it),
    plus what the Get Started notebook imports. Kept in .compat-venv between runs."""
    from uv import find_uv_bin

    uv = find_uv_bin()
    venv = ROOT / ".compat-venv"
    python = venv / "bin" / "python"
    marker = venv / ".installed-v1"
    if not marker.exists():
        subprocess.run([uv, "venv", "--quiet", "--allow-existing", "-p", sys.executable, str(venv)],
                       check=True, timeout=300)
        subprocess.run([uv, "pip", "install", "--quiet", "-p", str(python), *CLIENT_PACKAGES,
                        "-e", str(ROOT / "sdk")], check=True, timeout=900)
        marker.write_text("ok")
    return python
