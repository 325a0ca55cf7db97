"""Offline, strict validation of what the Argo orchestrator renders and sends.

* Argo kinds and Argo Server request bodies: JSON schemas generated from Hera's pydantic
  models of the Argo Workflows v4 API (`hera.workflows.models`, an installed package), with
  `additionalProperties: false` added to every object definition, so a misspelled or
  unknown field is an error (the models themselves ignore unknown fields).
* Kubernetes kinds: `kubernetes_validate.validate(..., strict=True)`.

Nothing is read from outside the repository: the schemas come from installed packages."""

from __future__ import annotations

import copy
import functools

import jsonschema

K8S_VERSION = "1.33.0"
ARGO_KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate")
ARGO_PREFIX = "io.argoproj.workflow.v1alpha1."


def require_schemas() -> None:
    """The schemas come from Hera, a dependency of the service: always there."""
    _definitions(ARGO_PREFIX + "Workflow")


def _strict(definitions: dict) -> dict:
    definitions = copy.deepcopy(definitions)
    for definition in definitions.values():
        if definition.get("type") == "object" and "properties" in definition \
                and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return definitions


@functools.cache
def _definitions(name: str) -> dict:
    """`name` (an Argo definition name, e.g. io.argoproj.workflow.v1alpha1.Workflow) and
    every definition it refers to, from Hera's model of the same name."""
    from hera.workflows import models

    assert name.startswith(ARGO_PREFIX), name
    model = getattr(models, name[len(ARGO_PREFIX):])
    schema = model.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    definitions[name] = schema
    return _strict(definitions)


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
    name = ARGO_PREFIX + kind
    _validate(_definitions(name), name, document)


def validate_argo_request(definition: str, body: object) -> None:
    """A request body of the Argo Server, e.g. `io.argoproj.workflow.v1alpha1.WorkflowCreateRequest`."""
    _validate(_definitions(definition), definition, body)


def validate_kubernetes(document: dict) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def validate_any(document: dict) -> None:
    if document.get("kind") in ARGO_KINDS:
        validate_argo(document)
    else:
        validate_kubernetes(document)
