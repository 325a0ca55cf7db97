"""``python -m shipyard_runner forkserver --socket PATH [--isolate] [--hide DIR ...]``: a warm
parent for elastic runs of one step environment.

It imports the runner (and nothing of any step), then waits on a Unix socket. It never
reads a connection itself: each one goes to a *keeper*, a child of its own, which reads the
one JSON line asked for::

    {"job": "/w/x/job.json", "cwd": "/w/x", "code_dir": "/steps/1/code", "env": {...},
     "log": "/w/x/runner.log"}

so no execution's variables or token ever sit in the parent's memory, which every later
child inherits. The keeper answers ``{"pid": N}`` (its runner), then ``{"exit": CODE}``
when it ends (codes of ``run``; minus the signal number when killed), and kills it on
``{"kill": true}`` or when the connection closes. The runner does exactly what ``run --job``
does, in its own session and folder, with exactly the variables given, stdin closed and
stdout/stderr to ``log``: it never ran another execution's code, and the step's module is
imported in it for the first time.

A keeper is forked *ahead*, as a spare: right after a connection is handed to one, the
fork server forks the next, which makes everything that depends on no request (the
sandbox below, then its runner, forked and waiting on a pipe) and waits for its
connection, passed over a socket pair (SCM_RIGHTS). So an execution waits for a few
mounts, not two forks and a sandbox. One spare at most per fork server; it serves one
execution only; a connection that comes while none is there gets a keeper forked for it.

With ``--isolate`` (the fork server runs in the sandbox) each execution also gets a sandbox
of its own inside the fork server's, before any of its code runs: new user, mount, IPC and
pid namespaces; a fresh empty ``/tmp`` and ``/dev/shm``; every ``--hide`` folder (the
folder of all executions' work folders, the socket's, all steps' code) covered by an empty
one. The runner then enters a second user namespace, with a mount namespace that is a slave
of the keeper's: the keeper's mounts are locked in it (the execution cannot unmount them to
see what they cover). Once the request is read, the keeper binds the execution's own work
folder (writable) and step code (read-only, and locked so) from under their covers; the
mounts reach the runner's namespace before the runner reads its request. The execution may
unmount those two (they are its own): under them is only the empty cover. The runner is
pid 1 of its own pid namespace: it cannot signal another execution.

End of stdin: the fork server stops taking executions, and exits once those running have
ended. It exits too when the process that started it goes away. Standard library only,
Python 3.8+, Linux.
"""

from __future__ import annotations

import array
import ctypes
import json
import os
import resource  # noqa: F401 - what each runner reports its resources with
import selectors
import shutil
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
MS_BIND, MS_REC, MS_PRIVATE, MS_SHARED = 4096, 16384, 1 << 18, 1 << 20
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


def prepare(hide: list) -> list:
    """The part of an execution's sandbox that depends on no request, made ahead in a
    spare keeper (see the module's docstring): new user, mount and IPC namespaces, fresh
    /tmp and /dev/shm, the fork server's own mounts under /tmp mounted back, and every
    `hide` folder covered by an empty one. Returns (fd, folder) of each covered folder,
    held open (O_PATH, in this mount namespace) so that `mount_own` can bind a folder
    from under its cover. Raises IsolationError when it cannot."""
    _unshare(CLONE_NEWNS | CLONE_NEWIPC)
    # Other executions see the fork server's /proc: this keeper, which holds the covered
    # folders open, must not be readable (environ, mem, cwd, root, fd) by another process
    # of the same user. Not dumpable: only root may.
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    hidden = [h.rstrip("/") for h in hide]
    outside = [p for p in _mounts_under("/tmp") if not any(_within(p, h) for h in hidden)]
    # Held open (in the new mount namespace: a bind mount's source must be in it) while
    # what leads to them is covered.
    held = [(os.open(p, os.O_PATH | os.O_DIRECTORY), p) for p in outside]
    covered = [(os.open(h, os.O_PATH | os.O_DIRECTORY), h) for h in hidden if os.path.isdir(h)]
    # The folders leading to them under the new /tmp: on a read-only tmpfs of their own,
    # as they were read-only for the runner in the fork server's sandbox.
    tops = {"/tmp/" + p[len("/tmp/"):].split("/")[0] for _, p in held + covered
            if p.startswith("/tmp/")} - set(outside)
    try:
        for folder in ("/tmp", "/dev/shm"):
            if os.path.isdir(folder):
                _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
        for folder in sorted(tops):
            os.makedirs(folder, exist_ok=True)
            _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        for fd, path in held:
            os.makedirs(path, exist_ok=True)
            _mount("/proc/self/fd/%d" % fd, path, None, MS_BIND | MS_REC)
        for _, folder in covered:
            # Writable here, where the keeper makes the mount points of the execution's
            # own folders; shared, so that the runner's mount namespace (its slave, made
            # next) receives those mounts, locked (runner_namespaces).
            os.makedirs(folder, exist_ok=True)
            _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
            _mount(None, folder, None, MS_SHARED)
        for folder in sorted(tops):
            _mount(None, folder, None,
                   MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    except BaseException:
        for fd, _ in covered:
            os.close(fd)
        raise
    finally:
        for fd, _ in held:
            os.close(fd)
    return covered


def runner_namespaces(covered: list) -> None:
    """In the runner, once forked (pid 1 of the keeper's new pid namespace): a second user
    namespace and a mount namespace that is a slave of the keeper's. The mounts above are
    locked in it (the step cannot unmount them to see what they cover); the two that
    `mount_own` propagates into it later, it may unmount, which shows the empty cover. The
    covers read-only here."""
    _unshare(CLONE_NEWNS)
    for _, folder in covered:
        _mount(None, folder, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def mount_own(covered: list, cwd: str, code_dir) -> None:
    """In the keeper, once the request is read: the execution's work folder (writable)
    and step code (read-only) bound back from under their covers; the mounts propagate
    to the runner's namespace before it reads its request."""
    own = [(cwd, False)] + ([(code_dir, True)] if code_dir else [])
    for path, read_only in own:
        path = os.path.normpath(path)
        cover = next(((fd, c) for fd, c in covered if path.startswith(c + "/")), None)
        if cover is None:
            raise IsolationError(0, "not in a covered folder: %s" % path)
        fd, folder = cover
        source = os.open(path[len(folder) + 1:], os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW,
                         dir_fd=fd)
        try:
            os.makedirs(path, exist_ok=True)
            _mount("/proc/self/fd/%d" % source, path, None, MS_BIND | MS_REC)
        finally:
            os.close(source)
        # Bound from the fork server's read-only view, step code stays read-only.
        if read_only and not os.statvfs(path).f_flag & MS_RDONLY:
            raise IsolationError(0, "the step code is writable: %s" % path)


def fork_ahead(isolated: bool, hide: list, inherited: list) -> tuple:
    """Fork an execution's runner before its request, in its sandbox when `isolated`
    (prepare; a pid namespace, the runner its pid 1; runner_namespaces), like os.fork:
    in the keeper, returns (runner pid, covered folders, pipe); `start_runner` then sends
    the request. In the runner, returns (0, [], the request's bytes) once it came (b"" if
    the keeper went away first). `inherited`: what the runner closes at once."""
    covered = []
    if isolated:
        # Other executions see the fork server's /proc: this keeper's cwd there (the work
        # root, uncovered in the fork server's mounts) must not lead to their folders.
        os.chdir("/")
        covered = prepare(hide)
        _check(_libc.unshare(CLONE_NEWPID), "unshare")
    request_r, request_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(request_r)
        return pid, covered, request_w
    try:
        _die_with_parent()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.close(request_w)
        for item in inherited:
            item.close()
        for fd, _ in covered:  # the uncovered folders: never in the runner
            os.close(fd)
        if covered:
            # Its user namespace's maps are written by itself: dumpable for that moment,
            # holding nothing yet (no request, the folders above closed).
            _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl")
            runner_namespaces(covered)
            _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl")
        # What every runner starts with, while it waits: the capture's pipes and reader
        # threads and the log shipper's thread (no execution waits for a thread to start).
        fdcapture.prepare()
        logs.shipper.start()
        data = b""
        while True:
            chunk = os.read(request_r, 65536)
            if not chunk:
                break
            data += chunk
        os.close(request_r)
        return 0, [], data
    except BaseException:  # noqa: BLE001 - never back into the keeper's code
        import traceback

        try:
            os.write(2, ("shipyard_runner forkserver: runner setup failed\n"
                         + traceback.format_exc()).encode("utf-8", "replace"))
        except OSError:
            pass
        os._exit(4)


def start_runner(covered: list, request_w: int, request: dict) -> None:
    """In the keeper: the execution's own folders mounted (when covered), then its request
    to the runner forked ahead, which starts with it."""
    try:
        if covered:
            mount_own(covered, request["cwd"], request.get("code_dir"))
    finally:
        for fd, _ in covered:
            os.close(fd)
    try:
        with os.fdopen(request_w, "wb") as out:  # the runner starts once it is closed
            out.write(json.dumps(request).encode("utf-8"))
    except OSError:
        pass  # the runner is gone already: its exit status says how


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


def _keeper(source: socket.socket, spare: bool, inherited: list, isolated: bool,
            hide: list) -> None:
    """In a child of the fork server, for one execution: never returns. `source` is its
    connection, or (`spare`) the channel on which the fork server hands it one later:
    all that depends on no request (namespaces, covers, the runner's fork) is done before
    it, so that an execution handed to a spare starts in the time of a few mounts."""
    conn = None if spare else source
    error = None
    try:
        for item in inherited:  # the fork server's sockets and selector
            item.close()
        _die_with_parent()
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a write to a gone peer: an error
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        try:
            pid, covered, pipe = fork_ahead(isolated, hide, [source, wake_r, wake_w])
            if pid == 0:  # the runner, with its request
                _runner(pipe)
        except OSError as exc:
            error = exc
        if spare:
            conn = _receive_connection(source)
            if conn is None:  # retired, or the fork server is gone: nothing to run
                os._exit(0)
        conn.settimeout(REQUEST_TIMEOUT_S)
        request = _read_request(conn)
        if error is not None:
            raise error
        start_runner(covered, pipe, request)
        _send(conn, {"pid": pid})
        code = _watch(conn, wake_r, pid)
        _send(conn, {"exit": code})
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001 - nothing may return into the parent's loop
        if conn is not None:
            _send(conn, {"error": "%s: %s" % (type(exc).__name__, exc)})
        os._exit(1)


def _receive_connection(channel: socket.socket):
    """The connection the fork server hands this spare (SCM_RIGHTS); None at end of file."""
    size = socket.CMSG_SPACE(array.array("i").itemsize)
    try:
        data, ancillary, _, _ = channel.recvmsg(1, size)
    except OSError:
        return None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            channel.close()
            return socket.socket(fileno=fds[0])
    return None


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


def _runner(data: bytes) -> None:
    """The execution's process, once its keeper sent its request: what `run --job` does.
    Never returns."""
    code = 4
    try:
        if not data:  # the keeper went away (or retired) before any request
            os._exit(0)
        request = json.loads(data.decode("utf-8"))
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
    """Make one per-execution sandbox before taking any execution, a folder of the work
    root bound into it the way an execution's is: exit with the reason if this machine
    forbids it (the server then starts runners cold)."""
    folder = os.path.join(os.getcwd(), ".probe")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seen"), "w"):
        pass
    pid = os.fork()
    if pid == 0:
        try:
            runner, covered, request_w = fork_ahead(True, hide, [])
            if runner == 0:
                os._exit(0 if os.path.isfile(os.path.join(folder, "seen")) else 1)
            start_runner(covered, request_w, {"cwd": folder})
            _, status = os.waitpid(runner, 0)
            if _exit_code(status) != 0:
                raise IsolationError(0, "a folder mounted for the runner did not reach it")
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001
            os.write(2, ("cannot isolate executions: %s\n" % exc).encode("utf-8", "replace"))
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(folder, ignore_errors=True)
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
    spare = None  # (pid, channel): a keeper made ready ahead, for the next connection

    def fork_keeper(source: socket.socket, is_spare: bool, inherited: list) -> int:
        pid = os.fork()
        if pid == 0:
            _keeper(source, is_spare, [selector, listener, wake_r, wake_w] + inherited,
                    isolated, hide)
        keepers.add(pid)
        return pid

    def new_spare() -> tuple:
        ours, theirs = socket.socketpair()
        pid = fork_keeper(theirs, True, [ours])
        theirs.close()
        return pid, ours

    parent = os.getppid()
    accepting = True
    spare = new_spare()
    try:
        while os.getppid() == parent and (accepting or keepers):
            for key, _ in selector.select(timeout=1.0):
                if key.data == "accept":
                    conn, _ = listener.accept()
                    if spare is None or not _hand_over(spare[1], conn):
                        fork_keeper(conn, False, [spare[1]] if spare else [])
                    conn.close()
                    if spare is not None:
                        spare[1].close()
                    spare = new_spare()  # one at most: the one just handed a connection
                    # is on its way
                elif key.data == "wake":
                    try:
                        while wake_r.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
                elif not os.read(sys.stdin.fileno(), 4096) and accepting:
                    # Retired: no new execution; those running end as they would, the
                    # spare at once (end of its channel).
                    accepting = False
                    selector.unregister(listener)
                    selector.unregister(sys.stdin.fileno())
                    listener.close()
                    os.unlink(socket_path)
                    if spare is not None:
                        spare[1].close()
                        spare = None
            _reap(keepers)
            if spare is not None and spare[0] not in keepers:  # it died: next time, anew
                spare[1].close()
                spare = None
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


def _hand_over(channel: socket.socket, conn: socket.socket) -> bool:
    """Pass the connection to the spare keeper (SCM_RIGHTS); False if it is gone."""
    try:
        channel.sendmsg([b"c"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                  array.array("i", [conn.fileno()]))])
        return True
    except OSError:
        return False


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
