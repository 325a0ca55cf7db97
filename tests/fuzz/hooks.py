"""schemathesis hooks for the fuzz of docs/openapi.json (loaded by `st` through
SCHEMATHESIS_HOOKS=tests.fuzz.hooks)."""

from __future__ import annotations

import schemathesis


@schemathesis.check
def no_server_error_but_execution_failed(ctx, response, case) -> None:
    """No 5xx, except the documented 500 `ExecutionFailed` of the results routes (a user
    function that failed), which must carry the error body."""
    if response.status_code < 500:
        return
    name = None
    try:
        body = response.json()
        name = body.get("name") if isinstance(body, dict) else None
    except ValueError:
        pass
    if response.status_code == 500 and name == "ExecutionFailed":
        return
    raise AssertionError(f"Server error {response.status_code} ({name or 'no error name'})")


@schemathesis.check
def method_not_allowed_has_allow(ctx, response, case) -> None:
    # schemathesis keeps headers with lowercase names and a list of values each.
    allow = [v for v in response.headers.get("allow", []) if v.strip()]
    if response.status_code == 405 and not allow:
        raise AssertionError("405 without an Allow header")
