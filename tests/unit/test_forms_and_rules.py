"""Pure rules: form decoding (contract §3.2), I/O declarations, mappings, archives."""

from __future__ import annotations

import io
import sys
import tarfile

import pytest
from shipyard_service.api.common import unflatten
from shipyard_service.artifacts import inspect_archive
from shipyard_service.domain.io_types import check_total_size, parse_declarations
from shipyard_service.domain.mappings import (
    expand_datastore_path,
    parse_input_mappings,
    parse_output_mappings,
)
from shipyard_service.domain.projects import DEFAULT_SETTINGS
from shipyard_service.domain.steps import resolve_container_config
from shipyard_service.errors import BadRequest, PayloadTooLarge

CONTRACT_FIELDS = {
    "pipeline_name": "p",
    "function_path": "src/main.py",
    "function_name": "run",
    "container_config[language]": "python:3.10-slim",
    "container_config[included_folders][0]": "src",
    "container_config[included_folders][1]": "req.txt",
    "container_config[requirements_path]": "",
    "inputs[0][name]": "a",
    "inputs[0][data_type]": "number",
    "inputs[0][is_required]": "True",
    "inputs[0][default_value]": "5",
    "inputs[1][name]": "b",
    "inputs[1][data_type]": "json",
    "inputs[1][default_value][k][0]": "1",
    "inputs[1][default_value][k][1]": "2",
}


def test_unflatten_contract_example():
    data = unflatten(CONTRACT_FIELDS)
    assert data["container_config"] == {
        "language": "python:3.10-slim",
        "included_folders": ["src", "req.txt"],
        "requirements_path": "",
    }
    inputs = parse_declarations(data["inputs"], "inputs", from_form=True)
    assert inputs[0] == {"name": "a", "data_type": "number", "description": None,
                         "is_required": True, "default_value": 5}
    assert inputs[1]["default_value"] == {"k": [1, 2]}


def test_container_config_fallback_and_explicit_null():
    project = dict(DEFAULT_SETTINGS, requirements_path="reqs/base.txt")
    resolved = resolve_container_config(unflatten(CONTRACT_FIELDS)["container_config"], project)
    assert resolved["requirements_path"] is None  # "" = explicit null
    assert resolved["included_folders"] == ["src", "req.txt"]
    fallback = resolve_container_config({}, project)
    assert fallback["requirements_path"] == "reqs/base.txt"
    assert fallback["language"] == DEFAULT_SETTINGS["language"]


@pytest.mark.parametrize("config", [
    {"language": "ruby:3"}, {"language": "python:3.11; rm -rf /"}, {"unknown_key": 1},
    {"included_folders": "src"}, {"requirements_path": "../../etc/passwd"}, "not-a-dict",
])
def test_container_config_rejects(config):
    with pytest.raises(BadRequest):
        resolve_container_config(config, DEFAULT_SETTINGS)


@pytest.mark.parametrize("items", [
    [{"name": "1bad", "data_type": "string"}],
    [{"name": "a", "data_type": "tensor"}],
    [{"name": "a", "data_type": "string"}, {"name": "a", "data_type": "number"}],
    [{"name": "a", "data_type": "number", "default_value": "x"}],
    [{"name": "a", "data_type": "file", "default_value": "x"}],
    "nope",
])
def test_declarations_reject(items):
    with pytest.raises(BadRequest):
        parse_declarations(items, "inputs", from_form=False)


def test_boolean_default_from_form():
    [decl] = parse_declarations([{"name": "x", "data_type": "boolean", "default_value": "False"}],
                                "inputs", from_form=True)
    assert decl["default_value"] is False


def test_total_size_limit():
    check_total_size({"a": "x" * 59_000})
    with pytest.raises(PayloadTooLarge):
        check_total_size({"a": "x" * 61_000})


DECLARED_IN = [{"name": "f", "data_type": "file"}, {"name": "n", "data_type": "number"}]
DECLARED_OUT = [{"name": "o", "data_type": "string"}]


def test_mappings_rules():
    maps = parse_input_mappings(
        [{"pipeline_input_name": "n", "constant_value": 3},
         {"step_input_name": "f", "datastore_path": "in/f.csv"}], DECLARED_IN, "run")
    assert maps["n"] == {"mapping_type": "constant", "mapping_value": {"constant_value": 3}}
    assert maps["f"]["mapping_type"] == "datastore"
    with pytest.raises(BadRequest, match="not allowed"):
        parse_input_mappings([{"pipeline_input_name": "n", "endpoint_input_name": "x"}],
                             DECLARED_IN, "run")
    with pytest.raises(BadRequest, match="constant mapping cannot carry the file"):
        parse_input_mappings([{"pipeline_input_name": "f", "constant_value": "x"}],
                             DECLARED_IN, "run")
    with pytest.raises(BadRequest, match="exactly one"):
        parse_input_mappings([{"pipeline_input_name": "n", "constant_value": 1, "is_null": True}],
                             DECLARED_IN, "run")
    with pytest.raises(BadRequest, match="unknown"):
        parse_output_mappings([{"pipeline_output_name": "zz", "is_null": True}], DECLARED_OUT, "run")
    with pytest.raises(BadRequest, match="type number"):
        parse_input_mappings([{"pipeline_input_name": "n", "constant_value": "three"}],
                             DECLARED_IN, "run")


def test_input_source_without_source_and_compatibility_table():
    """The seed: an InputSource naming no source is an endpoint input; environment variables
    feed only non-file inputs and data store files only file inputs, for runs and deployments."""
    bare = [{"pipeline_input_name": "n"}]
    assert parse_input_mappings(bare, DECLARED_IN, "endpoint")["n"] == {
        "mapping_type": "endpoint",
        "mapping_value": {"endpoint_input_name": "n", "is_required": False,
                          "default_value": None}}
    assert parse_input_mappings(bare, DECLARED_IN, "run") == {}  # the run's own input
    with pytest.raises(BadRequest, match="exactly one"):
        parse_input_mappings(bare, DECLARED_IN, "periodic")
    for rule in ("run", "endpoint", "periodic"):
        with pytest.raises(BadRequest, match="environment_variable mapping cannot carry the file"):
            parse_input_mappings([{"pipeline_input_name": "f", "environment_variable_name": "V"}],
                                 DECLARED_IN, rule)
        with pytest.raises(BadRequest, match="datastore mapping cannot carry the number"):
            parse_input_mappings([{"pipeline_input_name": "n", "datastore_path": "in/n.txt"}],
                                 DECLARED_IN, rule)
        assert parse_input_mappings(
            [{"pipeline_input_name": "n", "environment_variable_name": "V"},
             {"pipeline_input_name": "f", "datastore_path": "in/f.csv"}], DECLARED_IN, rule)


def test_datastore_placeholders():
    import datetime as dt

    now = dt.datetime(2024, 5, 1, 10, 2, 3)
    assert expand_datastore_path("out/{execution_id}/{date}/{date_time}.csv", "p-abcde", now) == (
        "out/p-abcde/20240501/20240501_100203.csv"
    )


def _tar(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_archive_checks():
    inspect_archive(_tar([_file("src/main.py"), _file("src/main.py")]), 1000, 10)  # duplicates ok
    with pytest.raises(BadRequest, match="Unsafe"):
        inspect_archive(_tar([_file("../evil.py")]), 1000, 10)
    with pytest.raises(BadRequest, match="Unsafe"):
        inspect_archive(_tar([_file("/etc/evil.py")]), 1000, 10)
    link = tarfile.TarInfo("src/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../../../etc/passwd"
    with pytest.raises(BadRequest, match="Unsafe"):
        inspect_archive(_tar([(link, None)]), 1000, 10)
    with pytest.raises(PayloadTooLarge):
        inspect_archive(_tar([_file("big.bin", b"0" * 2000)]), 1000, 10)
    with pytest.raises(BadRequest, match="not a valid"):
        inspect_archive(b"not a tarball", 1000, 10)
    hard = tarfile.TarInfo("src/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "src/main.py"
    with pytest.raises(BadRequest, match="hard link"):
        inspect_archive(_tar([_file("src/main.py"), (hard, None)]), 1000, 10)
    inside = tarfile.TarInfo("src/inside")  # even a link that stays inside
    inside.type, inside.linkname = tarfile.SYMTYPE, "main.py"
    with pytest.raises(BadRequest, match="symbolic link"):
        inspect_archive(_tar([_file("src/main.py"), (inside, None)]), 1000, 10)
    fifo = tarfile.TarInfo("src/fifo")
    fifo.type = tarfile.FIFOTYPE
    with pytest.raises(BadRequest, match="special file"):
        inspect_archive(_tar([(fifo, None)]), 1000, 10)
    many = [_file(f"f{i}.py") for i in range(11)]
    with pytest.raises(BadRequest, match="over 10 files"):
        inspect_archive(_tar(many), 1000, 10)
    inspect_archive(_tar(many[:10]), 1000, 10)


def test_path_max_symlink_chain_is_refused(tmp_path):
    """CVE-2025-4517 on the Python the server runs: the `data` filter alone lets this
    archive write outside the folder; our check and our extraction filter refuse it."""
    from shipyard_service.artifacts import _extraction_filter

    from ..archives import path_max_escape

    archive = path_max_escape(2, "pwned.txt")
    if sys.version_info < (3, 11, 13):  # the unfixed tarfile: the pattern is real here
        dest = tmp_path / "plain" / "code"
        dest.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
        assert (tmp_path / "pwned.txt").read_bytes() == b"pwned"
        (tmp_path / "pwned.txt").unlink()
    with pytest.raises(BadRequest, match="symbolic link"):
        inspect_archive(archive, 5 * 1024 * 1024, 10_000)
    dest = tmp_path / "ours" / "code"
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar, \
            pytest.raises(BadRequest, match="symbolic link"):
        tar.extractall(dest, filter=_extraction_filter)
    assert not (tmp_path / "pwned.txt").exists() and not (tmp_path / "ours" / "pwned.txt").exists()



def test_time_chart_breaks_lines_at_gaps_only():
    from shipyard_service.ui.charts import time_chart

    regular = [(t * 1000, 1.0) for t in range(0, 10)] + [(t * 1000, 2.0) for t in range(60, 70)]
    other = [(t * 1000 + 500, 3.0) for t in range(0, 10)]
    chart = time_chart("cpu", {"a": regular, "b": other}, "%", 100, x_range=(0, 100_000))
    a, b = chart["series"]
    assert len(a["gaps"]) == 1  # one hole, 10 s to 60 s, in `a` only
    gap_x = chart["x"][a["gaps"][0]]
    assert 9 < gap_x < 60 and a["values"][a["gaps"][0]] is None
    assert b["gaps"] == []  # `b`'s absent values at `a`'s ticks are not holes
    assert (chart["x_min"], chart["x_max"]) == (0, 100)


def test_rules_are_whole_text_matches():
    """A final `$` with `re.match` also matched before a trailing newline: "acc\n" was a
    valid metric name, "512MiB\n" a RAM request, "curl\n" a Debian package."""
    from shipyard_service.domain.metrics import check_metric_name
    from shipyard_service.domain.projects import check_language
    from shipyard_service.domain.repositories import check_packages
    from shipyard_service.orchestrators.local.sysdeps import missing_packages

    assert check_metric_name("acc") == "acc"
    assert check_language("python:3.12-slim") == "python:3.12-slim"
    assert check_packages(["curl"]) == ["curl"]
    for bad in (lambda: check_metric_name("acc\n"), lambda: check_language("python:3.12-slim\n"),
                lambda: check_packages(["curl\n"])):
        with pytest.raises(BadRequest):
            bad()
    with pytest.raises(ValueError):
        missing_packages(["curl\n"])
