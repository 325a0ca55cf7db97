"""The README documents every CLI command and every setting (Datasette's habit)."""

from __future__ import annotations

import argparse
import dataclasses
import re

from shipyard_service.cli import build_parser
from shipyard_service.config import Settings

from ..helpers import ROOT

README = (ROOT / "README.md").read_text()


def _commands(parser: argparse.ArgumentParser, prefix: str = "shipyard") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found.extend(_commands(sub, f"{prefix} {name}"))
    return found


def test_every_command_is_documented():
    missing = []
    for command in _commands(build_parser()):
        words = command.split()
        # `shipyard admin --data-dir DIR create-user` documents `shipyard admin create-user`.
        if not re.search(r"\s.*".join(map(re.escape, words)), README):
            missing.append(command)
    assert not missing, f"undocumented commands: {missing}"


def test_every_setting_is_documented():
    config = (ROOT / "service/shipyard_service/config.py").read_text()
    read_from_env = re.findall(r'_env\("([A-Z_]+)"', config)
    missing = [f"SHIPYARD_{name}" for name in read_from_env if f"SHIPYARD_{name}" not in README]
    assert not missing, f"undocumented settings: {missing}"
    assert {f.name for f in dataclasses.fields(Settings)} >= {"data_dir", "port"}
