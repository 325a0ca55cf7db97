"""Creating a step (domain/steps.py, artifacts.inspect_archive) in-process: every bad form
or archive is a clear 4xx before anything is stored or built."""

from __future__ import annotations

import io
import tarfile

import pytest

from ..helpers import make_archive
from .conftest import assert_error

GOOD = {"step_name": "s1", "function_path": "main.py", "function_name": "run"}
CODE = {"main.py": "def run():\n    return {}\n"}


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return buf.getvalue()


def _symlink() -> tarfile.TarInfo:
    link = tarfile.TarInfo("main.py")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return link


@pytest.mark.parametrize("fields, words", [
    ({"step_name": "Bad Name"}, "step_name"),
    ({"function_path": "../outside.py"}, "inside the step's folder"),
    ({"function_path": "main.txt"}, ".py file"),
    ({"function_name": "not-an-identifier"}, "Python identifier"),
    ({"inputs[0][name]": "x", "inputs[0][data_type]": "complex"}, "data_type"),
    ({"inputs[0][name]": "x", "inputs[0][data_type]": "number",
      "inputs[1][name]": "x", "inputs[1][data_type]": "string"}, "Duplicate input name 'x'"),
    ({"inputs[0][name]": "f", "inputs[0][data_type]": "file",
      "inputs[0][default_value]": "a"}, "file input cannot have a default"),
    ({"outputs[0][name]": "1bad", "outputs[0][data_type]": "number"}, "outputs[0].name"),
])
def test_bad_step_forms_are_400s(admin, fields, words):
    r = admin.env_call("POST", "/steps", content_type="multipart/form-data",
                       data={**GOOD, **fields,
                             "step_file": (io.BytesIO(make_archive(CODE)), "step_file")})
    body = assert_error(r, 400, "BadRequest")
    assert words in body["message"] + str(body["additional_data"]), body
    assert_error(admin.env_call("GET", "/steps/s1"), 404)


@pytest.mark.parametrize("archive, words", [
    (b"not a tar at all", "not a valid tar.gz"),
    (_tar_with(tarfile.TarInfo("../evil.py"), b"x"), "Unsafe path"),
    (_tar_with(tarfile.TarInfo("/abs.py"), b"x"), "Unsafe path"),
    (_tar_with(_symlink()), "symbolic link"),
])
def test_unsafe_archives_are_400s(admin, archive, words):
    r = admin.env_call("POST", "/steps", content_type="multipart/form-data",
                       data={**GOOD, "step_file": (io.BytesIO(archive), "step_file")})
    body = assert_error(r, 400, "BadRequest")
    assert words in body["message"], body
    assert_error(admin.env_call("GET", "/steps/s1"), 404)


def test_a_step_without_code_or_repository_is_a_400(admin):
    r = admin.env_call("POST", "/steps", json=GOOD)
    body = assert_error(r, 400, "NoStepCode")
    assert "no code" in body["message"], body
