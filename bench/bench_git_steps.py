"""Creating a step from Git (POST until ready, environment cached) against two baselines
measured now: the same step from a local-folder archive, and a bare `git clone --depth 1`
over the same sshd (the floor of any fetch)."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import percentile, running_server, summary
from tests.gitserver import GitServer
from tests.helpers import create_step_http

ROUNDS = 10
TIME_LIMIT_S = 120
CODE = "def run():\n    return {'o': 'x'}\n"
OUTPUT = {"outputs[0][name]": "o", "outputs[0][data_type]": "string"}


def _bare_clones(git: GitServer, url: str, key_path: Path) -> list[float]:
    ssh = ["ssh", "-F", "/dev/null", "-i", str(key_path), "-o", "IdentitiesOnly=yes",
           "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
    env = dict(os.environ, GIT_SSH_COMMAND=shlex.join(ssh))
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(ROUNDS):
            start = time.perf_counter()
            subprocess.run(["git", "clone", "-q", "--depth", "1", "--single-branch", url,
                            f"{tmp}/c{i}"], env=env, check=True, timeout=60)
            times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-git-") as tmp:
        git = GitServer(Path(tmp) / "git").start()
        try:
            key = git.new_deploy_key("bench")
            url = git.create_repo("bench", {"main": {"main.py": CODE, "requirements.txt": ""}})
            clones = _bare_clones(git, url, git.root / "keys" / "bench")
            print(summary("baseline  git clone --depth 1 (ssh)", clones))
            with running_server() as (server, api):
                create_step_http(api, "warm", {"main.py": CODE, "requirements.txt": ""},
                                 fields=OUTPUT)  # builds the shared environment once
                local, remote = [], []
                deadline = time.monotonic() + TIME_LIMIT_S
                for i in range(ROUNDS):
                    if time.monotonic() > deadline:
                        break
                    start = time.perf_counter()
                    body = create_step_http(api, f"local-{i}", {"main.py": CODE,
                                                                 "requirements.txt": ""},
                                            fields=OUTPUT)
                    local.append((time.perf_counter() - start) * 1000)
                    assert body["creation_info"]["status"] == "ready", body
                    start = time.perf_counter()
                    r = api.request("POST", "/steps", data={
                        "step_name": f"git-{i}", "function_path": "main.py", "function_name": "run",
                        "container_config[repository_url]": url,
                        "container_config[repository_deploy_key]": key, **OUTPUT})
                    assert r.status_code == 201, r.text
                    got = api.request("GET", f"/steps/git-{i}?wait_for_completion=true").json()
                    remote.append((time.perf_counter() - start) * 1000)
                    assert got["creation_info"]["status"] == "ready", got
        finally:
            git.stop()
    print(summary("baseline  step from a local folder  ", local))
    print(summary("create_step from Git (until ready)  ", remote))
    print(f"ratio p50 Git step / p50 local-folder step: "
          f"{percentile(remote, 50) / percentile(local, 50):.1f}x; "
          f"p50 Git step / p50 bare clone: {percentile(remote, 50) / percentile(clones, 50):.1f}x")
