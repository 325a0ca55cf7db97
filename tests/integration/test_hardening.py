"""Issue 13 point 4: hostile input and the protocol details an attacker probes, each
answered as documented, through plain HTTP against the real server."""

from __future__ import annotations

import requests

from ..helpers import assert_error


def test_405_answers_carry_allow(server, api):
    r = requests.delete(server.url + "/api/v1/auth/refresh", timeout=10)
    assert_error(r, 405)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}, r.headers
    r = api.request("PUT", "/steps")
    assert_error(r, 405)
    assert {"GET", "POST"} <= set(r.headers["Allow"].replace(" ", "").split(","))
