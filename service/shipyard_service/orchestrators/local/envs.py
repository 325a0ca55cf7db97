"""Step environments: one virtualenv per (interpreter, requirements), built with uv, shared
by every step that asks for the same thing."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from uv import find_uv_bin

from ..base import BuildRequest
from .commands import kill_running, run_logged
from .pythons import available_versions, find_python

# What the runner needs so `from shipyard import CraftAiSdk` works in step code.
BASE_PACKAGES = ("requests>=2.25", "pyjwt>=2")
BUILD_TIMEOUT_S = 15 * 60


class BuildError(Exception):
    pass


class EnvironmentBuilder:
    def __init__(self, root: Path, uv_cache_dir: str | None = None):
        self.root = root
        self.uv = find_uv_bin()
        self.uv_cache_dir = uv_cache_dir
        self._locks: dict[str, threading.Lock] = {}
        self._running: set = set()  # uv commands under way (run_logged)
        self._guard = threading.Lock()

    def python_of(self, env_key: str) -> Path:
        return self.root / env_key / "bin" / "python"

    def is_built(self, env_key: str) -> bool:
        return (self.root / env_key / ".ready").exists()

    def build(self, request: BuildRequest, log: Callable[[str], None]) -> str:
        version = request.language.split(":", 1)[1].split("-", 1)[0]
        python = find_python(version)
        if python is None:
            raise BuildError(
                f"Python {version} is not available on this server; available: "
                f"{', '.join(available_versions()) or 'none'}"
            )
        requirements = self._requirements(request)
        key = hashlib.sha256(
            "\n".join([python, version, requirements, *BASE_PACKAGES]).encode()
        ).hexdigest()[:20]
        with self._lock(key):
            if (self.root / key / ".ready").exists():
                log(f"Reusing the cached environment {key} (Python {version})")
                return key
            self._create(key, python, requirements, log)
        return key

    def _requirements(self, request: BuildRequest) -> str:
        if not request.requirements_path:
            return ""
        path = (request.code_dir / request.requirements_path.lstrip("/")).resolve()
        if not str(path).startswith(str(request.code_dir.resolve())):
            raise BuildError("requirements_path must stay inside the step's folder")
        if not path.is_file():
            return ""
        return path.read_text()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _create(self, key: str, python: str, requirements: str, log: Callable[[str], None]) -> None:
        target = self.root / key
        tmp = self.root / f".{key}.{os.getpid()}.{int(time.time() * 1000)}"
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        env = dict(os.environ, VIRTUAL_ENV=str(tmp))
        if self.uv_cache_dir:
            env["UV_CACHE_DIR"] = self.uv_cache_dir
        try:
            self._run([self.uv, "venv", "--quiet", "--python", python, str(tmp)], env, log)
            req_file = tmp / "requirements.txt"
            req_file.write_text(requirements + "\n" + "\n".join(BASE_PACKAGES) + "\n")
            log("Installing requirements:\n" + (requirements.strip() or "(none)"))
            # Bytecode compiled now: a sandboxed runner sees the environment read-only and
            # would otherwise compile every module it imports at every start.
            self._run([self.uv, "pip", "install", "--compile-bytecode", "--python",
                       str(tmp / "bin" / "python"), "-r", str(req_file)], env, log)
            (tmp / ".ready").write_text(python)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log(f"Environment {key} is ready")

    def stop(self) -> None:
        """Builds under way end now: the server stops (no uv process outlives it)."""
        kill_running(self._running)

    def _run(self, cmd: list[str], env: dict, log: Callable[[str], None]) -> None:
        code = run_logged(cmd, env, log, BUILD_TIMEOUT_S, self._running)
        if code is None:
            raise BuildError(f"The build took over {BUILD_TIMEOUT_S} s")
        if code != 0:
            raise BuildError(f"`{' '.join(Path(c).name for c in cmd[:3])}` failed with code {code}")
