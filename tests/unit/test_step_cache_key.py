"""The step cache's key (domain/step_cache.key_of) and the statuses of steps that take a
result instead of running (lifecycle: Pending -> Reused | Cached only)."""

from __future__ import annotations

import io
import tarfile

import pytest
from shipyard_service.artifacts import files_hash
from shipyard_service.domain.lifecycle import STEP_DONE, StepExecutionStatus, allowed
from shipyard_service.domain.step_cache import key_of
from shipyard_service.store.models import Step


def _step(**changes) -> Step:
    fields = dict(environment=1, name="train", function_path="main.py", function_name="run",
                  inputs=[{"name": "x", "data_type": "number"}],
                  outputs=[{"name": "y", "data_type": "number"}],
                  container_config={"language": "python:3.11-slim",
                                    "requirements_path": "requirements.txt",
                                    "system_dependencies": ["curl"], "dockerfile_path": None},
                  env_key="venv-a", code_hash="code-a")
    fields.update(changes)
    return Step(**fields)


BASE = key_of(None, _step(), {"x": 1}, {"f": "hash-a"})


@pytest.mark.parametrize("changed", [
    {"code_hash": "code-b"},  # another file, or the requirements file's content
    {"env_key": "venv-b"},  # another built environment (interpreter, requirements)
    {"container_config": {"language": "python:3.12-slim", "requirements_path": "requirements.txt",
                          "system_dependencies": ["curl"], "dockerfile_path": None}},
    {"container_config": {"language": "python:3.11-slim", "requirements_path": "requirements.txt",
                          "system_dependencies": ["curl", "git"], "dockerfile_path": None}},
    {"function_name": "other"},
    {"outputs": [{"name": "y", "data_type": "string"}]},
    {"name": "evaluate"},
    {"environment": 2},
])
def test_the_key_changes_with_code_environment_and_step(changed):
    assert key_of(None, _step(**changed), {"x": 1}, {"f": "hash-a"}) != BASE


def test_the_key_changes_with_inputs_and_not_with_their_order():
    assert key_of(None, _step(), {"x": 2}, {"f": "hash-a"}) != BASE
    assert key_of(None, _step(), {"x": 1}, {"f": "hash-b"}) != BASE
    assert key_of(None, _step(), {"x": 1, "z": None}, {"f": "hash-a"}) != BASE
    assert key_of(None, _step(), {"x": 1}, {"f": "hash-a"}) == BASE
    two = key_of(None, _step(), {"a": {"k": 1, "j": 2}, "b": 3}, {})
    assert key_of(None, _step(), {"b": 3, "a": {"j": 2, "k": 1}}, {}) == two


def _archive(files: dict[str, bytes], mtime: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_files_hash_is_of_the_files_not_of_the_archive():
    files = {"main.py": b"def run(): pass\n", "requirements.txt": b"numpy==1\n"}
    reordered = dict(reversed(list(files.items())))
    assert files_hash(_archive(files, 1)) == files_hash(_archive(reordered, 999))
    assert files_hash(_archive(files, 1)) != files_hash(
        _archive({**files, "requirements.txt": b"numpy==2\n"}, 1))


def test_only_a_pending_step_takes_a_result():
    S = StepExecutionStatus
    for target in (S.REUSED, S.CACHED):
        assert allowed("Pending", target)
        assert not allowed("Running", target) and not allowed("Failed", target)
    assert set(STEP_DONE) == {"Succeeded", "Reused", "Cached"}
