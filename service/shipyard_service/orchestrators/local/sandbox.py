"""The sandbox of step code in embedded mode: every runner process (elastic, resident, and
the fork servers of elastic runners) is started through `Sandbox.wrap`.

With bubblewrap (Debian `bubblewrap`), the runner sees the machine read-only, an empty
folder in place of the server's data folder, a private /tmp, its own pid and IPC
namespaces, and only these folders of the data folder: its work folder (writable), its step
environment and its step code (read-only). The network stays shared so the runner reaches
the API on loopback.

When the server runs as root, the runner also runs as the unprivileged user `nobody`
(setpriv, util-linux) with no capabilities, so it cannot undo the mounts; folders on the
way to what it needs that `nobody` may not cross (e.g. /root, 0700, holding pyenv's
interpreters) are replaced by empty folders in which only what it needs is mounted. When
the server runs as another user, bubblewrap uses an unprivileged user namespace and the
runner keeps the server's user (see docs/sandbox.md).

A wrapped command is started with `Sandbox.popen`, which the orchestrator points at one
long-lived thread (spawner.py): bubblewrap's --die-with-parent fires when the THREAD that
started it exits. (This module imports nothing of the project: a test runs it alone.)"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODES = ("auto", "bwrap", "off")
NOBODY = 65534  # uid and gid of `nobody` / `nogroup` on Debian
PROBE_TIMEOUT_S = 20


class SandboxUnavailable(RuntimeError):
    """SHIPYARD_SANDBOX=bwrap and bubblewrap cannot run here."""


class Sandbox:
    def __init__(self, data_dir: Path, mode: str = "auto",
                 popen: Callable[..., subprocess.Popen] = subprocess.Popen):
        if mode not in MODES:
            raise ValueError(f"sandbox mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.data_dir = Path(data_dir).resolve()
        self.mode = mode
        self.drop_to_nobody = os.geteuid() == 0
        self._bwrap = shutil.which("bwrap")
        self._setpriv = shutil.which("setpriv")
        self._works: bool | None = None
        self._lock = threading.Lock()
        self._popen = popen

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start a command made by `wrap` (subprocess.Popen's arguments) with the `popen`
        given: the orchestrator's spawner thread, so it does not die with the caller's."""
        return self._popen(list(argv), **kwargs)

    @property
    def active(self) -> bool:
        """Whether runners are sandboxed: checked once by running `true` in a sandbox."""
        if self.mode == "off":
            return False
        with self._lock:
            if self._works is None:
                self._works, why = self._probe()
                if not self._works:
                    if self.mode == "bwrap":
                        log.error("Step sandbox unavailable: %s", why)
                    else:
                        log.warning("Step code runs WITHOUT a sandbox: %s "
                                    "(install bubblewrap, or set SHIPYARD_SANDBOX=off)", why)
            works = self._works
        if not works and self.mode == "bwrap":
            raise SandboxUnavailable(
                "SHIPYARD_SANDBOX=bwrap but bubblewrap cannot run here (see the server log)")
        return works

    def _probe(self) -> tuple[bool, str]:
        if not self._bwrap:
            return False, "bwrap is not installed (Debian package bubblewrap)"
        if self.drop_to_nobody and not self._setpriv:
            return False, "setpriv is not installed (Debian package util-linux)"
        with tempfile.TemporaryDirectory(prefix="shipyard-sandbox-probe-") as work:
            argv = self._wrapped(["true"], Path(work), [], [])
            try:
                done = subprocess.run(argv, capture_output=True, text=True,
                                      timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
            except (OSError, subprocess.SubprocessError) as exc:
                return False, f"bwrap did not run: {exc}"
        if done.returncode != 0:
            return False, f"bwrap failed ({done.returncode}): {done.stderr.strip()[-500:]}"
        return True, ""

    def wrap(self, argv: Sequence[str], work_dir: Path, *, read_only: Iterable[Path] = (),
             writable: Iterable[Path] = ()) -> list[str]:
        """The command running `argv` in the sandbox, in `work_dir` (writable, made the
        runner's own when it runs as `nobody`), seeing `read_only` and `writable` as well.
        `argv[0]` is the interpreter: its installation is made readable. `argv` itself
        when the sandbox is off (or unavailable with SHIPYARD_SANDBOX=auto)."""
        if not self.active:
            return list(argv)
        work_dir = Path(work_dir)
        writable = [Path(p) for p in writable]
        if self.drop_to_nobody:
            for folder in (work_dir, *writable):
                _give_to_nobody(folder)
        read_only = [Path(p) for p in read_only] + _interpreter_homes(argv[0])
        return self._wrapped(list(argv), work_dir, read_only, writable)

    def hand_over(self, folder: Path) -> None:
        """Make a folder created after `wrap` (inside a writable one) usable by the runner:
        its own when the runner runs as `nobody`."""
        if self.drop_to_nobody and self.active:
            _give_to_nobody(Path(folder))

    def variables(self, work_dir: Path) -> dict[str, str]:
        """The variables `wrap` sets in the sandbox, over those the runner is started with
        (what a fork server's child, started with its execution's, must get too)."""
        if not self.active:
            return {}
        return self._variables(Path(work_dir))

    def _variables(self, work_dir: Path) -> dict[str, str]:
        variables = {"TMPDIR": "/tmp"}
        if self.drop_to_nobody:
            variables["HOME"] = str(work_dir)
        return variables

    def _wrapped(self, argv: list[str], work_dir: Path, read_only: list[Path],
                 writable: list[Path]) -> list[str]:
        assert self._bwrap is not None
        cmd = [self._bwrap, "--ro-bind", "/", "/", "--dev", "/dev",
               "--perms", "1777", "--tmpfs", "/dev/shm", "--proc", "/proc",
               "--perms", "1777", "--tmpfs", "/tmp"]
        exposed = [work_dir, *writable, *read_only]
        closed = set()
        if self.drop_to_nobody:
            closed = {p for path in exposed for p in _closed_ancestors(path)}
        emptied = [Path("/tmp")]
        for folder in sorted(closed | {self.data_dir}, key=lambda p: len(p.parts)):
            if not any(_within(folder, e) for e in emptied):
                cmd += ["--tmpfs", str(folder)]  # empty, and crossable (0755)
                emptied.append(folder)
        # Folders on the way to a mount inside an empty folder: bubblewrap would create
        # them 0700, which `nobody` cannot cross.
        on_the_way = {p for path in exposed for p in path.parents
                      if any(e in p.parents for e in emptied)}
        for folder in sorted(on_the_way, key=lambda p: len(p.parts)):
            cmd += ["--perms", "0755", "--dir", str(folder)]
        binds = [("--ro-bind", p) for p in read_only if p.exists()]
        binds += [("--bind", p) for p in (work_dir, *writable)]
        for option, path in sorted(binds, key=lambda b: len(b[1].parts)):
            cmd += [option, str(path), str(path)]
        cmd += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--chdir", str(work_dir)]
        for name, value in self._variables(work_dir).items():
            cmd += ["--setenv", name, value]
        if self.drop_to_nobody:
            assert self._setpriv is not None
            cmd += ["--", self._setpriv,
                    f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        return cmd + ["--", *argv]


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _closed_ancestors(path: Path) -> list[Path]:
    """Folders above `path` that `nobody` may not cross (no search permission for others)."""
    closed = []
    for parent in Path(path).parents:
        try:
            if not os.stat(parent).st_mode & 0o001:
                closed.append(parent)
        except OSError:
            pass
    return closed


def _interpreter_homes(python: str) -> list[Path]:
    """The installation behind a venv's interpreter (a symlink to, e.g., pyenv's)."""
    real = Path(python).resolve()
    return [real.parent.parent] if real.parent.name == "bin" else [real.parent]


def _give_to_nobody(folder: Path) -> None:
    """The runner's folders, and what the server put in them, become `nobody`'s."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, NOBODY, NOBODY)
    for entry in folder.iterdir():
        if not entry.is_symlink():
            os.chown(entry, NOBODY, NOBODY)
