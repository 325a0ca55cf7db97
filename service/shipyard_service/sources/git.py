"""Fetching one ref of a Git repository over SSH with a deploy key.

How it runs:

* `git clone --depth 1 --single-branch --no-tags [--branch REF]`: only the files of the
  requested branch or tag (or of the remote's default branch) are transferred.
* ssh is driven by GIT_SSH_COMMAND: the deploy key is written to a private file (0600, in a
  0700 folder under DATA_DIR/tmp) used with `-i` and `IdentitiesOnly=yes`, no agent, no
  user ssh configuration (`-F /dev/null`), `BatchMode=yes` (never a prompt). The folder is
  removed when the fetch ends, whatever happens.
* Host keys (documented policy): `accept-new` by default — a host seen for the first time is
  trusted and pinned in DATA_DIR/ssh/known_hosts, and a later change of its key is refused.
  With `SHIPYARD_GIT_HOST_KEY_POLICY=strict` only hosts already in that file are accepted
  (fill it with `ssh-keyscan`).
* Only the ssh transport is allowed (GIT_ALLOW_PROTOCOL), symlinks are checked out as plain
  files (`core.symlinks=false`, so nothing can point outside the step's folder), no system
  or global git configuration is read, and every call is bounded in time
  (`SHIPYARD_GIT_TIMEOUT_S`, default 120 s; ssh's own connect timeout 15 s).
* Errors are classified (unreachable, unknown repository, unknown branch, refused key,
  changed host key) and their text is scrubbed of the key and of the key file's path.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadRequest

DEFAULT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 15
POLICIES = {"accept-new": "accept-new", "strict": "yes"}


class GitError(BadRequest):
    """A fetch that failed for a reason the user can act on (400, with a precise name)."""

    name = "GitError"


@dataclass(frozen=True)
class GitOptions:
    known_hosts: Path
    tmp_root: Path
    host_key_policy: str = "accept-new"
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_settings(cls, settings) -> GitOptions:
        policy = settings.git_host_key_policy or "accept-new"
        if policy not in POLICIES:
            raise ValueError(f"SHIPYARD_GIT_HOST_KEY_POLICY must be one of {sorted(POLICIES)}")
        timeout = float(settings.git_timeout_s or DEFAULT_TIMEOUT_S)
        data_dir = Path(settings.data_dir)
        return cls(known_hosts=data_dir / "ssh" / "known_hosts", tmp_root=data_dir / "tmp",
                   host_key_policy=policy, timeout_s=timeout)


@dataclass(frozen=True)
class Checkout:
    root: Path  # the working tree (its .git folder included)
    commit_id: str
    branch: str | None  # the branch checked out; None for a tag


@contextmanager
def checkout(url: str, ref: str | None, deploy_key: str, options: GitOptions) -> Iterator[Checkout]:
    """Clone `ref` (branch or tag; None = the remote's default branch) into a private
    temporary folder, removed on exit. Raises GitError with a scrubbed message."""
    options.tmp_root.mkdir(parents=True, exist_ok=True)
    options.known_hosts.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="git-", dir=options.tmp_root))  # mode 0700
    key_path = work / "deploy_key"
    scrub = _Scrubber(deploy_key, key_path)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(deploy_key)
        (work / "home").mkdir()
        env = _environment(work / "home", key_path, options)
        tree = work / "tree"
        cmd = ["git", "-c", "core.symlinks=false", "-c", "advice.detachedHead=false",
               "-c", "protocol.allow=never", "-c", "protocol.ssh.allow=always",
               "clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags", "--template="]
        if ref:
            cmd += ["--branch", ref]
        cmd += ["--", url, str(tree)]
        _run(cmd, env, options.timeout_s, scrub, url, ref)
        commit = _run(["git", "-C", str(tree), "rev-parse", "--verify", "-q", "HEAD"], env,
                      options.timeout_s, scrub, url, ref, allow_fail=True)
        if not commit:
            raise GitError(f"The repository {url} is empty: push a commit first",
                           {"repository_url": url}, name="GitRepositoryEmpty")
        branch = _run(["git", "-C", str(tree), "symbolic-ref", "-q", "--short", "HEAD"], env,
                      options.timeout_s, scrub, url, ref, allow_fail=True) or None
        yield Checkout(root=tree, commit_id=commit, branch=branch)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _environment(home: Path, key_path: Path, options: GitOptions) -> dict[str, str]:
    ssh = [
        "ssh", "-F", "/dev/null", "-i", str(key_path),
        "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
        "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
        "-o", f"StrictHostKeyChecking={POLICIES[options.host_key_policy]}",
        "-o", f"UserKnownHostsFile={options.known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
        "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=2",
        "-o", "ForwardAgent=no", "-o", "ForwardX11=no", "-o", "LogLevel=ERROR",
    ]
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LC_ALL": "C",
        "LANG": "C",
        "GIT_SSH_COMMAND": shlex.join(ssh),
        "GIT_SSH_VARIANT": "ssh",
        "GIT_ALLOW_PROTOCOL": "ssh",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_LFS_SKIP_SMUDGE": "1",
    }


def _run(cmd: list[str], env: dict, timeout_s: float, scrub: _Scrubber, url: str,
         ref: str | None, allow_fail: bool = False) -> str:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True, start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise GitError(
            f"The repository {url} did not answer within {timeout_s:g} s",
            {"repository_url": url}, name="GitRepositoryUnreachable",
        ) from None
    if proc.returncode != 0:
        if allow_fail:
            return ""
        raise classify(scrub(err), url, ref)
    return out.strip()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()


class _Scrubber:
    """Removes anything of the key (and its file's path) from text shown to users."""

    def __init__(self, key: str, key_path: Path):
        self.lines = [line.strip() for line in key.splitlines() if len(line.strip()) >= 8]
        self.key_path = str(key_path)

    def __call__(self, text: str) -> str:
        text = text.replace(self.key_path, "<deploy key>")
        for line in self.lines:
            text = text.replace(line, "<redacted>")
        return text


_RULES = (
    # (name, what to look for in lowercase stderr, message template)
    ("GitHostKeyChanged", ("remote host identification has changed",),
     "The SSH host key of the repository's server changed since it was first trusted; "
     "if the change is expected, remove its line from DATA_DIR/ssh/known_hosts"),
    ("GitHostKeyUnknown", ("host key verification failed", "no ed25519 host key is known",
                           "no rsa host key is known", "host key is known for"),
     "The SSH host key of the repository's server is not trusted (host key policy 'strict': "
     "add it to DATA_DIR/ssh/known_hosts)"),
    ("GitRepositoryUnreachable", ("could not resolve hostname", "connection refused",
                                  "connection timed out", "operation timed out",
                                  "no route to host", "network is unreachable",
                                  "kex_exchange_identification", "connection closed by",
                                  "connection reset"),
     "The repository {url} cannot be reached"),
    ("GitAuthenticationFailed", ("permission denied", "load key", "invalid format",
                                 "error in libcrypto", "too many authentication failures"),
     "The repository {url} refused the deploy key: check that its public key is a deploy "
     "key of this repository"),
    ("GitBranchNotFound", ("remote branch", "couldn't find remote ref", "not found in upstream"),
     "The branch or tag '{ref}' does not exist in {url}"),
    ("GitRepositoryNotFound", ("does not appear to be a git repository", "repository not found",
                               "not a git repository", "no such file or directory",
                               "could not read from remote repository"),
     "The repository {url} does not exist or this deploy key cannot read it"),
)


def classify(stderr: str, url: str, ref: str | None) -> GitError:
    """The user-facing error for a failed clone (stderr already scrubbed)."""
    low = stderr.lower()
    detail = "\n".join(stderr.strip().splitlines()[-8:])[-1500:]
    for name, needles, template in _RULES:
        if any(n in low for n in needles):
            message = template.format(url=url, ref=ref)
            return GitError(message, {"repository_url": url, "repository_branch": ref,
                                      "detail": detail}, name=name)
    return GitError(f"Fetching {url} failed", {"repository_url": url, "repository_branch": ref,
                                               "detail": detail})
