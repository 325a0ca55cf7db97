"""Offline, strict validation of what the Argo orchestrator renders and sends.

* Argo kinds: the Argo Workflows JSON schema from `../shared/schemas/` (or the folder in
  SHIPYARD_ARGO_SCHEMAS), with `additionalProperties: false` added to every object
  definition, so a misspelled or unknown field is an error.
* Argo Server requests: the bodies of the routes the client calls, against the Argo Server
  OpenAPI (swagger) definitions, made strict the same way.
* Kubernetes kinds: `kubernetes_validate.validate(..., strict=True)`.

The schemas are data of the Argo project and are not copied into this repository: when
they are absent, the tests that need them skip with a clear message."""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARGO_SCHEMA = "argo-workflows-v4.1.2.jsonschema.json"
ARGO_SWAGGER = "argo-server-v4.1.2.swagger.json"
K8S_VERSION = "1.33.0"
ARGO_KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate")


def schema_dir() -> Path | None:
    for candidate in (os.environ.get("SHIPYARD_ARGO_SCHEMAS"), ROOT.parent / "shared" / "schemas"):
        if candidate and (Path(candidate) / ARGO_SCHEMA).is_file():
            return Path(candidate)
    return None


def require_schemas() -> Path:
    folder = schema_dir()
    if folder is None:
        pytest.skip("Argo schemas not found: put argo-workflows-v4.1.2.jsonschema.json and "
                    "argo-server-v4.1.2.swagger.json in ../shared/schemas/ or set "
                    "SHIPYARD_ARGO_SCHEMAS to their folder")
    return folder


def _strict(definitions: dict) -> dict:
    definitions = copy.deepcopy(definitions)
    for definition in definitions.values():
        if definition.get("type") == "object" and "properties" in definition \
                and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return definitions


@functools.cache
def _argo_definitions() -> dict:
    folder = require_schemas()
    return _strict(json.loads((folder / ARGO_SCHEMA).read_text())["definitions"])


@functools.cache
def _swagger_definitions() -> dict:
    folder = require_schemas()
    return _strict(json.loads((folder / ARGO_SWAGGER).read_text())["definitions"])


def _validate(definitions: dict, name: str, document: object) -> None:
    schema = {"$ref": f"#/definitions/{name}", "definitions": definitions}
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        details = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                            for e in errors[:5])
        raise AssertionError(f"{name} is invalid: {details}")


def validate_argo(document: dict) -> None:
    kind = document.get("kind")
    assert kind in ARGO_KINDS, f"not an Argo kind: {kind!r}"
    assert document.get("apiVersion") == "argoproj.io/v1alpha1", document.get("apiVersion")
    _validate(_argo_definitions(), f"io.argoproj.workflow.v1alpha1.{kind}", document)


def validate_argo_request(definition: str, body: object) -> None:
    """A request body of the Argo Server, e.g. `io.argoproj.workflow.v1alpha1.WorkflowCreateRequest`."""
    _validate(_swagger_definitions(), definition, body)


def validate_kubernetes(document: dict) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def validate_any(document: dict) -> None:
    if document.get("kind") in ARGO_KINDS:
        validate_argo(document)
    else:
        validate_kubernetes(document)
