"""Names and labels of the cluster objects Shipyard owns.

Every name is derived from what the store already holds (execution id, deployment id, the
image of a step), so the orchestrator keeps no state of its own: after a restart, or from
another API replica, it finds the same objects again."""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = {"app.kubernetes.io/managed-by": "shipyard"}
KIND = "shipyard.io/kind"  # execution | build | tick
EXECUTION_ID = "shipyard.io/execution-id"
DEPLOYMENT_ID = "shipyard.io/deployment-id"
DEPLOYMENT_NAME = "shipyard.io/deployment"
STEP = "shipyard.io/step"  # the step a resident runner serves (multi-step, low-latency)
PROJECT = "shipyard.io/project"
ENVIRONMENT = "shipyard.io/environment"
GENERATION = "shipyard.io/generation"
TOKEN_DIGEST = "shipyard.io/runner-token-digest"
TOKEN_KEY = "token"  # key of the token in every Secret
AUTH_HEADER_KEY = "authorization"  # full header value, for Argo HTTP templates

_INVALID = re.compile(r"[^a-z0-9-]+")
MAX_NAME = 63  # DNS label: Services, pod names derived from workflow names


def dns_label(raw: str, prefix: str = "shipyard-") -> str:
    """`prefix + raw` as a DNS-1123 label; long or unusual values get a digest suffix so
    two different inputs never share a name."""
    clean = _INVALID.sub("-", raw.lower()).strip("-")
    name = prefix + clean
    if clean == raw and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    return (name[:MAX_NAME - 11].rstrip("-") + "-" + digest).strip("-")


def label_value(raw: str) -> str:
    """A valid label value (≤ 63 chars, alphanumeric at both ends)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", raw)[:63]
    return clean.strip("._-") or "none"


def execution_workflow(execution_id: str) -> str:
    return dns_label(execution_id, "shipyard-exe-")


def execution_secret(execution_id: str) -> str:
    return execution_workflow(execution_id)


def graph_template(digest: str) -> str:
    """One WorkflowTemplate per pipeline graph (steps, images, dependencies)."""
    return "shipyard-pipe-" + digest[:16]


def step_token_key(step_name: str) -> str:
    """A step's token in a multi-step execution's Secret (step names are valid keys)."""
    return f"token-{step_name}"


def step_template(image: str) -> str:
    """One WorkflowTemplate per step image: pipelines sharing a step share its template."""
    return "shipyard-step-" + hashlib.sha256(image.encode()).hexdigest()[:16]


def build_workflow(digest: str) -> str:
    return "shipyard-build-" + digest[:16]


def deployment(deployment_id: int) -> str:
    """Deployment, Service, CronWorkflow and Secret of one Shipyard deployment."""
    return f"shipyard-dep-{int(deployment_id)}"


def resident(deployment_id: int, step_name: str | None = None) -> str:
    """Deployment and Service of the resident runners: the deployment's own name, or for a
    multi-step pipeline in low-latency mode one per step (`shipyard-dep-<id>-<step>`; the
    '-' after the id keeps it apart from every other deployment's names)."""
    if step_name is None:
        return deployment(deployment_id)
    return dns_label(f"{int(deployment_id)}-{step_name}", "shipyard-dep-")


def resident_selector(deployment_id: int, step_name: str | None = None) -> dict:
    """The labels selecting a deployment's resident pods, or one step's: each step's
    Deployment and Service select its own pods only."""
    labels = {DEPLOYMENT_ID: str(int(deployment_id)), **MANAGED_BY}
    if step_name is not None:
        labels[STEP] = step_label(step_name)
    return labels


def step_label(step_name: str) -> str:
    """The step's name as a label value, distinct for distinct names: a name the label rules
    would change (`abc-` would become `abc`) gets a digest suffix."""
    value = label_value(step_name)
    if value == step_name:
        return value
    digest = hashlib.sha256(step_name.encode()).hexdigest()[:10]
    return f"{value[:52].rstrip('._-')}-{digest}"


def deployment_labels(deployment_id: int, name: str, project: str, environment: str) -> dict:
    return {**MANAGED_BY, DEPLOYMENT_ID: str(int(deployment_id)),
            DEPLOYMENT_NAME: label_value(name), PROJECT: label_value(project),
            ENVIRONMENT: label_value(environment)}


def selector(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())
