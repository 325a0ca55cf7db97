"""Issue 13 point 4: hostile input and the protocol details an attacker probes, each
answered as documented, through plain HTTP against the real server."""

from __future__ import annotations

import requests

from ..archives import path_max_escape
from ..helpers import assert_error


def test_405_answers_carry_allow(server, api):
    r = requests.delete(server.url + "/api/v1/auth/refresh", timeout=10)
    assert_error(r, 405)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}, r.headers
    r = api.request("PUT", "/steps")
    assert_error(r, 405)
    assert {"GET", "POST"} <= set(r.headers["Allow"].replace(" ", "").split(","))


def test_path_max_symlink_chain_archive_is_a_clear_400(server, api):
    """The CVE-2025-4517 archive (tests/archives.py) aimed at the data folder: refused
    before anything is stored, nothing written anywhere."""
    archive = path_max_escape(3, "pwned.txt")  # steps/<id>/code -> the data folder
    before = sorted(p.name for p in server.data_dir.iterdir())
    r = api.request("POST", "/steps", data={"step_name": "cve-4517", "function_path": "main.py",
                                            "function_name": "run"},
                    files={"step_file": ("step_file", archive)})
    body = assert_error(r, 400, "BadRequest")
    assert "symbolic link" in body["message"], body
    assert not (server.data_dir / "pwned.txt").exists()
    assert sorted(p.name for p in server.data_dir.iterdir()) == before
    assert_error(api.request("GET", "/steps/cve-4517"), 404)
