"""``python -m shipyard_runner spare``: a runner started before its execution is known.

The embedded backend starts one per step environment ahead of time, in a sandbox of its
own with its own work folder (orchestrators/local/spares.py), so an execution does not
wait for an interpreter to start. It imports the runner (and nothing of any step), writes
``ready`` on stdout, then reads ONE JSON line on stdin::

    {"job": "/work/spare-x/job.json", "env": {...}}

and becomes exactly what ``run --job`` is, with exactly the variables given (nothing of
its own start), stdin closed and stdout joined to stderr (its log). It serves that one
execution and exits: it never ran another execution's code, and the step's module is
imported in it for the first time. End of input without a request: it exits 0 (the
server stopped it or no longer needs it).

Standard library only, Python 3.8+.
"""

from __future__ import annotations

import json
import os
import sys

# What `run` uses, imported now so that the execution does not wait for it.
from . import __main__ as cli
from . import api, context, core, envvars, fdcapture, invoke, job, logs  # noqa: F401

MAX_REQUEST = 4 * 1024 * 1024


def _read_request() -> dict | None:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
    if not data.strip():
        return None
    request = json.loads(data.decode("utf-8"))
    if not isinstance(request, dict) or not isinstance(request.get("job"), str) \
            or not isinstance(request.get("env"), dict):
        raise ValueError("bad request")
    return request


def main(argv: list) -> int:
    if argv:
        sys.stderr.write("usage: python -m shipyard_runner spare\n")
        return 2
    try:
        os.write(1, b"ready\n")
    except OSError:  # the server stopped waiting for the signal: still usable
        pass
    try:
        request = _read_request()
    except (OSError, ValueError) as exc:
        sys.stderr.write("shipyard_runner spare: %s\n" % exc)
        return 2
    if request is None:
        return 0
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # stderr is the execution's log, as stdout and stderr are for `run`
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    sys.argv = ["shipyard_runner", "run", "--job", request["job"]]
    return cli.run_command(["--job", request["job"]])  # exits the process itself
