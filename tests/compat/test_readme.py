"""The README's "Use it from Python" section, run as written against a live server: its bash
blocks (a real `python3 -m venv` in a fresh HOME, `pip install ./sdk`, `pip install
craft-ai-sdk==0.60.0`), each `export` given the value the server printed under the label its
comment names, then its Python blocks with that virtualenv's python."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from ..helpers import ROOT, ServerProcess

SECTION = "## Use it from Python"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
EXPORT = re.compile(r"^export (\w+)=…\s+# the (.+?) printed by make run$")
PRINTED = re.compile(r"^  ([\w ]+?):\s+(\S+)$", re.M)
EXPECTED = re.compile(r"^print\(.*\)\s+# (.+)$", re.M)


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def readme_blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(readme_section())]


def test_readme_section_has_both_clients_and_no_fixed_port():
    blocks = readme_blocks()
    python = [code for lang, code in blocks if lang == "python"]
    assert any("from shipyard import" in c for c in python)
    assert any("from craft_ai_sdk import" in c for c in python)
    assert any("pip install ./sdk" in code for lang, code in blocks if lang == "bash")
    assert not re.search(r":\d{2,5}\b", readme_section()), "no hard-coded port in the examples"


@pytest.mark.compat
def test_readme_examples_run_as_written(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        printed = dict(PRINTED.findall(server.log_path.read_text()))
        assert {"web UI", "control URL", "environment URL", "SDK token"} <= set(printed), printed
        work = tmp_path / "work"
        work.mkdir()
        script = ["set -euo pipefail"]
        expected: list[str] = []
        for i, (lang, code) in enumerate(readme_blocks()):
            if lang == "bash":
                script.append(f"cd {shlex.quote(str(ROOT))}")
                for line in code.splitlines():
                    m = EXPORT.match(line)
                    if line.startswith("export "):
                        assert m, f"an export the test cannot fill: {line}"
                        script.append(f"export {m.group(1)}={shlex.quote(printed[m.group(2)])}")
                    else:
                        script.append(line)
            elif lang == "python":
                path = work / f"block{i}.py"
                path.write_text(code)
                expected += EXPECTED.findall(code)
                script += [f"cd {shlex.quote(str(work))}", f"python {path.name} >> printed.txt"]
        home = tmp_path / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SHIPYARD_", "CRAFT_AI_", "VIRTUAL_ENV"))}
        # pyenv's shims find their root through HOME unless told.
        env.setdefault("PYENV_ROOT", str(Path.home() / ".pyenv"))
        env["HOME"] = str(home)
        done = subprocess.run(["bash", "-c", "\n".join(script)], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert expected and (work / "printed.txt").read_text().splitlines() == expected
        assert not (ROOT / "my_project").exists()
    finally:
        server.stop()
