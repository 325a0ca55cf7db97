"""``python -m shipyard_runner forkserver --socket PATH``: a warm parent for elastic runs.

It imports the runner (and nothing of any step), then waits on a Unix socket. Each
connection asks for one execution with one JSON line::

    {"job": "/work/x/job.json", "cwd": "/work/x", "env": {...}, "log": "/work/x/runner.log"}

and gets ``{"pid": N}`` once a fresh child is forked for it, then ``{"exit": CODE}`` when that
child ends (codes of ``run``; minus the signal number when killed). The child runs exactly
what ``run --job`` runs, in its own session, folder and environment (the variables given,
nothing of the parent's), with stdin closed and stdout/stderr to ``log``: it never ran
another execution's code, and the step's module is imported in it for the first time.
Writing ``{"kill": true}`` on the connection, or closing it, kills the child's session.

The parent exits when the process that started it goes away. Standard library only,
Python 3.8+, POSIX.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys

# What `run` uses, imported once here so no child pays for it.
from . import __main__ as cli  # noqa: F401
from . import api, context, core, envvars, fdcapture, invoke, job, logs  # noqa: F401

MAX_REQUEST = 4 * 1024 * 1024


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 4


def _read_request(conn: socket.socket) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
    request = json.loads(data.decode("utf-8"))
    if not isinstance(request, dict) or not all(
            isinstance(request.get(k), str) for k in ("job", "cwd", "log")) \
            or not isinstance(request.get("env"), dict):
        raise ValueError("bad request")
    return request


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode("utf-8") + b"\n")
    except OSError:
        pass


def _child(request: dict, open_sockets: list) -> None:
    """In the forked child: become a fresh `run --job` process, never return."""
    code = 4
    try:
        for sock in open_sockets:
            sock.close()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        os.chdir(request["cwd"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        sys.argv = ["shipyard_runner", "run", "--job", request["job"]]
        code = cli.run_command(["--job", request["job"]])  # exits the process itself
    except BaseException:  # noqa: BLE001 - nothing may return into the parent's loop
        import traceback

        try:
            os.write(2, ("shipyard_runner forkserver: child setup failed\n"
                         + traceback.format_exc()).encode("utf-8", "replace"))
        except OSError:
            pass
    os._exit(code)


def serve(socket_path: str) -> int:
    try:
        os.unlink(socket_path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    os.chmod(socket_path, 0o600)
    listener.listen(64)
    # SIGCHLD wakes the loop through this pipe: children are reaped as soon as they end.
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "wake")
    children: dict = {}  # pid -> connection
    parent = os.getppid()
    try:
        while os.getppid() == parent:
            for key, _ in selector.select(timeout=1.0):
                if key.data == "accept":
                    _accept(listener, selector, children, [listener, wake_r, wake_w])
                elif key.data == "wake":
                    try:
                        while wake_r.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
                else:  # a message, or the end, on one execution's connection
                    _from_client(key.fileobj, key.data, selector, children)
            _reap(children, selector)
    finally:
        for pid in list(children):
            _kill(pid)
        try:
            os.unlink(socket_path)
        except OSError:
            pass
    return 0


def _accept(listener, selector, children: dict, own: list) -> None:
    conn, _ = listener.accept()
    try:
        conn.settimeout(10)
        request = _read_request(conn)
    except (OSError, ValueError) as exc:
        _send(conn, {"error": str(exc)})
        conn.close()
        return
    pid = os.fork()
    if pid == 0:
        _child(request, own + [conn] + list(children.values()))
    children[pid] = conn
    _send(conn, {"pid": pid})
    conn.setblocking(False)
    selector.register(conn, selectors.EVENT_READ, pid)


def _from_client(conn, pid: int, selector, children: dict) -> None:
    try:
        data = conn.recv(4096)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:  # the server went away or gave up on this execution
        selector.unregister(conn)
        _kill(pid)
    elif b"kill" in data:
        _kill(pid)


def _kill(pid: int) -> None:
    # The child's session, and the child itself: just forked, it may not have called
    # setsid() yet, and then its group does not exist.
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(children: dict, selector) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            try:
                selector.unregister(conn)
            except (KeyError, ValueError):
                pass
            conn.setblocking(True)
            _send(conn, {"exit": _exit_code(status)})
            conn.close()


def main(argv: list) -> int:
    if len(argv) != 2 or argv[0] != "--socket":
        sys.stderr.write("usage: python -m shipyard_runner forkserver --socket PATH\n")
        return 2
    return serve(argv[1])
