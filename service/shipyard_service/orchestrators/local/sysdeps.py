"""System dependencies (Debian packages) of steps in embedded mode.

Step environments are virtualenvs on this machine, so a step's `system_dependencies` are
packages of this machine: they make shared libraries and programs (ffmpeg, libgomp, git...)
available to the step's code. They do not add Python modules to the step's virtualenv:
Debian's `python3-*` packages belong to the system Python (use requirements for modules).

Before a build, every requested package is checked with dpkg. Missing ones are installed
with `apt-get install -y --no-install-recommends` only when the server allows it
(`SHIPYARD_ALLOW_APT_INSTALL=true`, and the server runs as root); otherwise the build fails
with a message naming them. Installs are serialised in this process and wait for apt's
lock (another apt user on the machine) for a bounded time.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable

from .commands import run_logged

ALLOW_ENV = "SHIPYARD_ALLOW_APT_INSTALL"
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$")
DPKG_TIMEOUT_S = 60
APT_TIMEOUT_S = 15 * 60
APT_LOCK_WAIT_S = 300

_apt_lock = threading.Lock()


def apt_install_allowed(settings) -> bool:
    return bool(settings.allow_apt_install)


def missing_packages(packages: list[str]) -> list[str]:
    """The packages dpkg does not report as installed (one dpkg-query call)."""
    names = list(dict.fromkeys(packages))
    if not names:
        return []
    bad = [n for n in names if not PACKAGE.fullmatch(n)]
    if bad:  # the API refuses them already; never hand them to dpkg/apt as options
        raise ValueError(f"invalid Debian package names: {bad}")
    try:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package}\t${db:Status-Status}\n", "--", *names],
            capture_output=True, text=True, timeout=DPKG_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError):
        return names  # no dpkg here: nothing can be confirmed
    installed = set()
    for line in proc.stdout.splitlines():
        name, _, status = line.partition("\t")
        if status.strip() == "installed":
            installed.add(name.strip())
    return [n for n in names if n.split(":", 1)[0] not in installed]


def ensure_installed(packages: list[str], allow_install: bool,
                     log: Callable[[str], None]) -> list[str]:
    """Check (and install when allowed); returns the packages still missing."""
    missing = missing_packages(packages)
    if packages:
        log(f"System dependencies: {', '.join(packages)}"
            + (f" (missing: {', '.join(missing)})" if missing else " (all installed)"))
    if not missing or not allow_install:
        return missing
    if os.geteuid() != 0:
        log("apt-get needs root: the server does not run as root, nothing is installed")
        return missing
    with _apt_lock:
        missing = missing_packages(missing)  # another build may have installed them meanwhile
        if missing:
            # A failure is most often stale or absent package lists: refresh once, retry.
            if not _apt_install(missing, log):
                _apt(["update"], log)
                _apt_install(missing, log)
            missing = missing_packages(missing)
    return missing


def _apt_install(packages: list[str], log: Callable[[str], None]) -> bool:
    return _apt(["install", "-y", "--no-install-recommends", "--", *packages], log)


def _apt(args: list[str], log: Callable[[str], None]) -> bool:
    cmd = ["apt-get", "-q", "-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT_S}", *args]
    log("$ " + " ".join(cmd))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
    try:
        code = run_logged(cmd, env, log, APT_TIMEOUT_S)
    except OSError as exc:
        log(f"apt-get cannot run: {exc}")
        return False
    if code is None:
        log(f"apt-get took over {APT_TIMEOUT_S} s: stopped")
        return False
    return code == 0


def missing_message(missing: list[str]) -> str:
    return (
        "System dependencies are not installed on this server: " + ", ".join(missing)
        + f". Install them on the server (apt-get install {' '.join(missing)}), or start it "
        f"with {ALLOW_ENV}=true to let it install them"
    )
