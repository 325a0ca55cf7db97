"""``python -m shipyard_runner forkserver --socket PATH [--isolate] [--hide DIR ...]``: a warm
parent for elastic runs of one step environment.

It imports the runner (and nothing of any step), then waits on a Unix socket. It never
reads a connection itself: for each one it forks a *keeper* at once, which reads the one
JSON line asked for::

    {"job": "/w/x/job.json", "cwd": "/w/x", "code_dir": "/steps/1/code", "env": {...},
     "log": "/w/x/runner.log"}

so no execution's variables or token ever sit in the parent's memory, which every later
child inherits. The keeper forks the runner, answers ``{"pid": N}``, then ``{"exit": CODE}``
when it ends (codes of ``run``; minus the signal number when killed), and kills it on
``{"kill": true}`` or when the connection closes. The runner does exactly what ``run --job``
does, in its own session and folder, with exactly the variables given, stdin closed and
stdout/stderr to ``log``: it never ran another execution's code, and the step's module is
imported in it for the first time.

With ``--isolate`` (the fork server runs in the sandbox) each execution also gets a sandbox
of its own inside the fork server's, before any of its code runs: new user, mount, IPC and
pid namespaces; a fresh empty ``/tmp`` and ``/dev/shm``; every ``--hide`` folder (the
folder of all executions' work folders, the socket's, all steps' code) covered by an empty
one, in which only its own work folder (writable) and its own step code (read-only) are
mounted back. A second user namespace then locks those mounts: the execution cannot
unmount them to see what they cover. The runner is pid 1 of its own pid namespace: it
cannot signal another execution.

End of stdin: the fork server stops taking executions, and exits once those running have
ended. It exits too when the process that started it goes away. Standard library only,
Python 3.8+, Linux.
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import socket
import sys

# What `run` uses, imported once here so no child pays for it.
from . import __main__ as cli
from . import api, context, core, envvars, fdcapture, invoke, job, logs  # noqa: F401

MAX_REQUEST = 4 * 1024 * 1024
REQUEST_TIMEOUT_S = 10

CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationError(OSError):
    """The per-execution sandbox could not be made (user namespaces forbidden here?)."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise IsolationError(err, "%s: %s" % (what, os.strerror(err)))


def _mount(source, target: str, fstype, flags: int, data=None) -> None:
    _check(_libc.mount(source and source.encode(), target.encode(),
                       fstype and fstype.encode(), flags, data and data.encode()),
           "mount %s" % target)


def _unshare(flags: int) -> None:
    """New namespaces, in a new user namespace where this process keeps its own ids."""
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc.unshare(flags | CLONE_NEWUSER), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (uid, uid)),
                       ("gid_map", "%d %d 1" % (gid, gid))):
        with open("/proc/self/" + name, "w") as f:
            f.write(text)


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _unescape(field: str) -> str:
    parts = field.split("\\")
    return parts[0] + "".join(chr(int(p[:3], 8)) + p[3:] for p in parts[1:])


def _mounts_under(folder: str) -> list:
    """The outermost mount points strictly below `folder` (the fork server's own mounts:
    its environment, runner, data folder... when they live under /tmp)."""
    with open("/proc/self/mountinfo") as f:
        points = {_unescape(line.split()[4]) for line in f}
    below = sorted(p for p in points if p.startswith(folder + "/"))
    return [p for p in below if not any(p.startswith(q + "/") for q in below)]


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def isolate(cwd: str, code_dir, hide: list) -> None:
    """Give this process (and what it forks next) a sandbox of its own: see the module's
    docstring. Raises IsolationError when it cannot."""
    _unshare(CLONE_NEWNS | CLONE_NEWIPC)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Held open (in the new mount namespace: a bind mount's source must be in it) while
    # what leads to them is covered, then mounted back: what the fork server mounted
    # under /tmp (but the hidden folders), then the execution's own folders.
    hidden = [h.rstrip("/") for h in hide]
    outside = [p for p in _mounts_under("/tmp") if not any(_within(p, h) for h in hidden)]
    own = [(cwd, False)] + ([(code_dir, True)] if code_dir else [])
    held = [(os.open(p, os.O_PATH | os.O_DIRECTORY), p, False) for p in outside]
    held += [(os.open(p, os.O_PATH | os.O_DIRECTORY), p, ro) for p, ro in own]
    # The folders leading to them under the new /tmp: on a read-only tmpfs of their own,
    # as they were read-only for the runner in the fork server's sandbox.
    tops = {"/tmp/" + p[len("/tmp/"):].split("/")[0] for _, p, _ in held
            if p.startswith("/tmp/")} - set(outside)
    covers = []  # the empty folders this makes, made read-only at the end
    try:
        for folder in ("/tmp", "/dev/shm"):
            if os.path.isdir(folder):
                _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
        for folder in sorted(tops):
            os.makedirs(folder, exist_ok=True)
            _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
            covers.append(folder)
        for fd, path, _ in held[:len(outside)]:
            os.makedirs(path, exist_ok=True)
            _mount("/proc/self/fd/%d" % fd, path, None, MS_BIND | MS_REC)
        for folder in hidden:
            if os.path.isdir(folder):
                _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
                covers.append(folder)
        for fd, path, read_only in held[len(outside):]:
            os.makedirs(path, exist_ok=True)
            _mount("/proc/self/fd/%d" % fd, path, None, MS_BIND | MS_REC)
            # Bound from the fork server's read-only view, step code stays read-only.
            if read_only and not os.statvfs(path).f_flag & MS_RDONLY:
                raise IsolationError(0, "the step code is writable: %s" % path)
        for folder in covers:
            _mount(None, folder, None,
                   MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    finally:
        for fd, _, _ in held:
            os.close(fd)
    _unshare(CLONE_NEWNS | CLONE_NEWPID)  # locks the mounts above; next child is pid 1


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
            or not isinstance(request.get("env"), dict) \
            or not isinstance(request.get("code_dir"), (str, type(None))):
        raise ValueError("bad request")
    return request


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode("utf-8") + b"\n")
    except OSError:
        pass


def _keeper(conn: socket.socket, inherited: list, isolated: bool, hide: list) -> None:
    """In a child of the fork server, for one connection: never returns."""
    try:
        for item in inherited:  # the fork server's sockets and selector
            item.close()
        _die_with_parent()
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        conn.settimeout(REQUEST_TIMEOUT_S)
        request = _read_request(conn)
        if isolated:
            isolate(request["cwd"], request.get("code_dir"), hide)
            # Other executions see the fork server's /proc: its cwd there (the work root,
            # uncovered in the fork server's mounts) must not lead to their folders, and
            # this keeper and its runner must not be readable (environ, mem, cwd, root,
            # fd) by another process of the same user. Not dumpable: only root may.
            os.chdir("/")
            _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl")
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        pid = os.fork()
        if pid == 0:
            _runner(request, [conn, wake_r, wake_w])
        _send(conn, {"pid": pid})
        code = _watch(conn, wake_r, pid)
        _send(conn, {"exit": code})
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001 - nothing may return into the parent's loop
        _send(conn, {"error": "%s: %s" % (type(exc).__name__, exc)})
        os._exit(1)


def _watch(conn: socket.socket, wake_r: socket.socket, pid: int) -> int:
    conn.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(conn, selectors.EVENT_READ, "conn")
    selector.register(wake_r, selectors.EVENT_READ, "wake")
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return _exit_code(status)
        for key, _ in selector.select(timeout=1.0):
            if key.data == "wake":
                try:
                    while wake_r.recv(4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            try:
                data = conn.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data or b"kill" in data:  # the server gave up on this execution
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if not data:
                    selector.unregister(conn)


def _runner(request: dict, inherited: list) -> None:
    """The execution's process: what `run --job` does. Never returns."""
    code = 4
    try:
        _die_with_parent()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        for sock in inherited:
            sock.close()
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
    except BaseException:  # noqa: BLE001
        import traceback

        try:
            os.write(2, ("shipyard_runner forkserver: runner setup failed\n"
                         + traceback.format_exc()).encode("utf-8", "replace"))
        except OSError:
            pass
    os._exit(code)


def _probe(hide: list) -> None:
    """Make one per-execution sandbox before taking any execution: exit with the reason
    if this machine forbids it (the server then starts runners cold)."""
    pid = os.fork()
    if pid == 0:
        try:
            isolate(os.getcwd(), None, hide)
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001
            os.write(2, ("cannot isolate executions: %s\n" % exc).encode("utf-8", "replace"))
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if _exit_code(status) != 0:
        raise SystemExit(3)


def serve(socket_path: str, isolated: bool, hide: list) -> int:
    if isolated:
        _probe(hide)
    try:
        os.unlink(socket_path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    os.chmod(socket_path, 0o600)
    listener.listen(64)
    # SIGCHLD wakes the loop through this pipe: keepers are reaped as soon as they end.
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "wake")
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    keepers: set = set()
    parent = os.getppid()
    accepting = True
    try:
        while os.getppid() == parent and (accepting or keepers):
            for key, _ in selector.select(timeout=1.0):
                if key.data == "accept":
                    conn, _ = listener.accept()
                    pid = os.fork()
                    if pid == 0:
                        _keeper(conn, [selector, listener, wake_r, wake_w], isolated, hide)
                    conn.close()
                    keepers.add(pid)
                elif key.data == "wake":
                    try:
                        while wake_r.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
                elif not os.read(sys.stdin.fileno(), 4096) and accepting:
                    # Retired: no new execution; those running end as they would.
                    accepting = False
                    selector.unregister(listener)
                    selector.unregister(sys.stdin.fileno())
                    listener.close()
                    os.unlink(socket_path)
            _reap(keepers)
    finally:
        for pid in keepers:
            try:
                os.kill(pid, signal.SIGKILL)  # its runner dies with it
            except ProcessLookupError:
                pass
        if accepting:
            try:
                os.unlink(socket_path)
            except OSError:
                pass
    return 0


def _reap(keepers: set) -> None:
    while keepers:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            keepers.clear()
            return
        if pid == 0:
            return
        keepers.discard(pid)


def main(argv: list) -> int:
    usage = "usage: python -m shipyard_runner forkserver --socket PATH [--isolate] [--hide DIR]...\n"
    socket_path, isolated, hide = None, False, []
    it = iter(argv)
    for arg in it:
        if arg == "--socket":
            socket_path = next(it, None)
        elif arg == "--isolate":
            isolated = True
        elif arg == "--hide":
            folder = next(it, None)
            if not folder:
                sys.stderr.write(usage)
                return 2
            hide.append(folder)
        else:
            sys.stderr.write(usage)
            return 2
    if not socket_path:
        sys.stderr.write(usage)
        return 2
    return serve(socket_path, isolated, hide)
