"""A throwaway Git server over SSH on 127.0.0.1: a real OpenSSH `sshd` (Debian
`openssh-server`) with its own host key and configuration under a temporary folder,
serving bare repositories to root with public-key authentication only.

    server = GitServer(tmp_path).start()
    key = server.new_deploy_key("k")          # ssh-keygen -m PEM -t rsa -b 4096, authorised
    url = server.create_repo("app", {"main": {"main.py": "..."}}, tags={"v1": "main"})
    ...
    server.stop()

sshd runs in the foreground (`-D -e -f CONFIG`) as a child of the test, as root (sshd needs
it to switch users; the tests run as root on CI). If /usr/sbin/sshd is missing it is
installed with apt-get (idempotent), without letting the package start a system daemon.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .helpers import free_port

SSHD = Path("/usr/sbin/sshd")
POLICY_RC = Path("/usr/sbin/policy-rc.d")


class Unavailable(Exception):
    """sshd cannot run here (not root, no apt): tests must skip with this reason."""


def ensure_sshd() -> None:
    if SSHD.exists():
        return
    if os.geteuid() != 0:
        raise Unavailable("openssh-server is not installed and installing it needs root")
    created_policy = False
    if not POLICY_RC.exists():
        # Keep the package's maintainer scripts from starting a system sshd on port 22.
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
        created_policy = True
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends",
               "-o", "DPkg::Lock::Timeout=300", "openssh-server"]
    try:
        if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=300"], env=env,
                           capture_output=True, timeout=600)
            proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise Unavailable(f"apt-get install openssh-server failed: {proc.stdout[-2000:]}")
    finally:
        if created_policy:
            POLICY_RC.unlink(missing_ok=True)
    if not SSHD.exists():
        raise Unavailable("openssh-server installed but /usr/sbin/sshd is missing")


def run(*cmd: str, cwd: Path | None = None, timeout: float = 60) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return proc.stdout.strip()


def generate_key(path: Path, kind: str = "rsa") -> tuple[str, str]:
    """(private key text, public key line). RSA keys exactly as the documentation asks."""
    if kind == "rsa":
        run("ssh-keygen", "-m", "PEM", "-t", "rsa", "-b", "4096", "-f", str(path), "-q",
            "-N", "", "-C", "")
    else:
        run("ssh-keygen", "-t", kind, "-f", str(path), "-q", "-N", "", "-C", "")
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


class GitServer:
    def __init__(self, root: Path, port: int | None = None, host_key: Path | None = None):
        self.root = Path(root)
        self.port = port or free_port()
        self.repos = self.root / "repos"
        self.config = self.root / "sshd_config"
        self.authorized_keys = self.root / "authorized_keys"
        self.host_key = host_key or self.root / "ssh_host_ed25519_key"
        self.log_path = self.root / "sshd.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 15) -> GitServer:
        ensure_sshd()
        self.repos.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        if not self.host_key.exists():
            run("ssh-keygen", "-t", "ed25519", "-f", str(self.host_key), "-q", "-N", "", "-C", "")
        self.authorized_keys.touch()
        self.config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "AuthenticationMethods publickey\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "AllowUsers root\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PrintMotd no\n"
            "LogLevel VERBOSE\n"
            "MaxStartups 50\n"
        )
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(self.config)],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd not ready in {timeout_s}s: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    # Keys and repositories ---------------------------------------------------------------
    def new_deploy_key(self, name: str, authorise: bool = True, kind: str = "rsa") -> str:
        keys = self.root / "keys"
        keys.mkdir(exist_ok=True)
        private, public = generate_key(keys / name, kind)
        if authorise:
            with open(self.authorized_keys, "a") as f:
                f.write(f"restrict {public}\n")
        return private

    def url(self, name: str) -> str:
        return f"ssh://root@127.0.0.1:{self.port}{self.repos / name}.git"

    def create_repo(self, name: str, branches: dict[str, dict[str, str | bytes]],
                    tags: dict[str, str] | None = None, default: str = "main") -> str:
        """A bare repository with one commit per branch ({branch: {path: content}}) and
        tags pointing at branches. Returns its ssh:// URL."""
        bare = self.repos / f"{name}.git"
        shutil.rmtree(bare, ignore_errors=True)
        run("git", "init", "-q", "--bare", "-b", default, str(bare))
        work = self.root / "work" / name
        shutil.rmtree(work, ignore_errors=True)
        for branch, files in branches.items():
            shutil.rmtree(work, ignore_errors=True)
            run("git", "init", "-q", "-b", branch, str(work))
            for rel, content in files.items():
                path = work / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    path.write_bytes(content)
                else:
                    path.write_text(content)
            run("git", "add", "-A", cwd=work)
            run("git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "commit",
                "-q", "-m", f"{branch} files", cwd=work)
            run("git", "push", "-q", str(bare), f"HEAD:refs/heads/{branch}", cwd=work)
        for tag, branch in (tags or {}).items():
            run("git", "--git-dir", str(bare), "tag", tag, f"refs/heads/{branch}")
        return self.url(name)

    def commit_of(self, name: str, ref: str) -> str:
        return run("git", "--git-dir", str(self.repos / f"{name}.git"), "rev-parse", ref + "^{commit}")
