"""Every setting is a field of config.Settings, read from its SHIPYARD_<NAME> variable in
config.py only, and documented in docs/settings.md: the list comes from the fields."""

from __future__ import annotations

import dataclasses
import re

from shipyard_service.config import Settings

from ..helpers import ROOT

DOC = ROOT / "docs" / "settings.md"
SERVICE = ROOT / "service" / "shipyard_service"


def _variables() -> list[str]:
    return [f"SHIPYARD_{f.name.upper()}" for f in dataclasses.fields(Settings)]


def test_every_setting_is_documented():
    documented = set(re.findall(r"^\| `(SHIPYARD_\w+)` \|", DOC.read_text(), re.M))
    missing = [v for v in _variables() if v not in documented]
    assert not missing, f"add a row for each of these to docs/settings.md: {missing}"
    unknown = documented - set(_variables())
    assert not unknown, f"documented but not a field of config.Settings: {sorted(unknown)}"


def test_every_setting_is_read_from_its_variable(monkeypatch, tmp_path):
    expected = {}
    for f in dataclasses.fields(Settings):
        name = f"SHIPYARD_{f.name.upper()}"
        if f.name == "data_dir":
            value, want = str(tmp_path), tmp_path.resolve()
        elif f.type == "bool":
            default = f.default
            value, want = ("false", False) if default else ("true", True)
        elif f.type == "int":
            value, want = "7", 7
        elif f.type == "float":
            value, want = "2.5", 2.5
        elif f.name == "public_url":
            value, want = "http://example.test:9", "http://example.test:9"
        else:
            value, want = f"value-{f.name}", f"value-{f.name}"
        monkeypatch.setenv(name, value)
        expected[f.name] = want
    monkeypatch.setenv("SHIPYARD_DATASTORE", "local")  # backends.json is not consulted
    expected["datastore"] = "local"
    settings = Settings.from_env()
    wrong = {k: getattr(settings, k) for k, v in expected.items() if getattr(settings, k) != v}
    assert not wrong, wrong


def test_a_bad_number_names_its_variable(monkeypatch):
    monkeypatch.setenv("SHIPYARD_RESOURCE_SAMPLE_S", "often")
    try:
        Settings.from_env()
    except ValueError as exc:
        assert "SHIPYARD_RESOURCE_SAMPLE_S" in str(exc)
    else:
        raise AssertionError("a word for a number was accepted")


def test_settings_are_read_in_config_only():
    pattern = re.compile(r"""(environ\.get\(|getenv\(|environ\[)\s*f?["']SHIPYARD_""")
    offenders = [str(path.relative_to(ROOT)) for path in SERVICE.rglob("*.py")
                 if path.name != "config.py" and pattern.search(path.read_text())]
    assert not offenders, f"read settings through config.Settings: {offenders}"
