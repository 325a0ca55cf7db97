"""Every manifest Shipyard renders or ships validates offline and strictly:

* templates/*.yaml are current (templates/render.py --check) and valid: Argo kinds against
  the Argo JSON schema with unknown fields refused, Kubernetes kinds with kubernetes-validate
  in strict mode;
* deploy/ overlays, built with the kustomize features they use (resources, namespace,
  labels, images, replicas, config map and secret generators; any other kustomization key
  fails this test), give valid objects whose references (Secrets, ConfigMaps, service
  accounts, volumes, Service selectors) all resolve, and RBAC that covers every call the
  API makes.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
from pathlib import Path

import pytest
import yaml
from shipyard_service.orchestrators.argo import builders

from .schemas import validate_any, validate_argo, validate_kubernetes

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
DEPLOY = ROOT / "deploy"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources", "images",
                  "replicas", "configMapGenerator", "secretGenerator"}
# Provided by the operator in production (docs/cluster.md), not by the manifests.
OPERATOR_SECRETS = {"production": {"shipyard-secrets"}}


def _render_module():
    spec = importlib.util.spec_from_file_location("shipyard_templates_render",
                                                  TEMPLATES / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# templates/ -------------------------------------------------------------------------------------
def test_templates_are_current_and_strictly_valid():
    render = _render_module()
    documents = render.documents()
    on_disk = {p.name for p in TEMPLATES.glob("*.yaml")}
    assert on_disk == set(documents), "templates/ and render.py disagree on the files"
    for name, document in documents.items():
        assert (TEMPLATES / name).read_text() == render.render(document), \
            f"templates/{name} is stale: run .venv/bin/python templates/render.py"
        loaded = yaml.safe_load((TEMPLATES / name).read_text())
        assert loaded == document
        validate_any(loaded)


def test_strict_validation_catches_mistakes():
    """The checks above can fail: a misspelled field, a wrong type, an unknown kind field."""
    cfg = builders.ClusterConfig()
    template = builders.step_template(cfg, "registry.test/shipyard/step:x")
    validate_argo(template)
    misspelled = copy.deepcopy(template)
    misspelled["spec"]["templates"][0]["container"]["imagePullPolice"] = "Always"
    with pytest.raises(AssertionError, match="imagePullPolice"):
        validate_argo(misspelled)
    wrong_type = copy.deepcopy(template)
    wrong_type["spec"]["ttlStrategy"]["secondsAfterCompletion"] = "an hour"
    with pytest.raises(AssertionError):
        validate_argo(wrong_type)
    service = yaml.safe_load((TEMPLATES / "low-latency-service.yaml").read_text())
    service["spec"]["portz"] = []
    with pytest.raises(Exception, match="portz"):
        validate_kubernetes(service)


# deploy/ ----------------------------------------------------------------------------------------
def _load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _generated(kind: str, spec: dict) -> dict:
    data = {}
    for literal in spec.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    document = {"apiVersion": "v1", "kind": kind, "metadata": {"name": spec["name"]}}
    if kind == "Secret":
        document["type"] = "Opaque"
        document["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        document["data"] = data
    return document


def build(folder: Path) -> list[dict]:
    """`kustomize build folder`, for the features Shipyard's manifests use."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED_KEYS
    assert not unknown, f"{folder}: kustomization keys this check does not model: {unknown}"
    documents: list[dict] = []
    for resource in spec.get("resources", []):
        path = (folder / resource).resolve()
        documents += build(path) if path.is_dir() else _load(path)
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for generator in spec.get(key, []):
            made = _generated(kind, generator)
            existing = next((d for d in documents if d["kind"] == kind
                             and d["metadata"]["name"] == generator["name"]), None)
            if generator.get("behavior") == "merge":
                assert existing is not None, f"nothing to merge into: {generator['name']}"
                existing["data"].update(made["data"])
            else:
                assert existing is None, f"generated twice: {generator['name']}"
                documents.append(made)
    for document in documents:
        meta = document.setdefault("metadata", {})
        if spec.get("namespace") and document["kind"] not in CLUSTER_SCOPED:
            meta["namespace"] = spec["namespace"]
        for label in spec.get("labels", []):
            meta.setdefault("labels", {}).update(label["pairs"])
        pod = ((document.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            for image in spec.get("images", []):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    for replicas in spec.get("replicas", []):
        target = [d for d in documents if d["kind"] in ("Deployment", "StatefulSet")
                  and d["metadata"]["name"] == replicas["name"]]
        assert target, f"no workload {replicas['name']}"
        target[0]["spec"]["replicas"] = replicas["count"]
    return documents


OVERLAYS = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if p.is_dir())


def _references(documents: list[dict]) -> list[tuple[str, str]]:
    """(kind, name) of everything the workloads refer to."""
    refs = []
    for document in documents:
        pod = ((document.get("spec") or {}).get("template") or {}).get("spec")
        if not pod:
            continue
        if pod.get("serviceAccountName"):
            refs.append(("ServiceAccount", pod["serviceAccountName"]))
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                refs.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for container in pod.get("containers", []):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    refs.append(("ConfigMap", source["configMapRef"]["name"]))
                if "secretRef" in source:
                    refs.append(("Secret", source["secretRef"]["name"]))
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    refs.append(("Secret", ref["name"]))
    return refs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_overlays_build_into_valid_consistent_objects(overlay):
    documents = build(DEPLOY / "overlays" / overlay)
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "StatefulSet", "Service", "Role", "RoleBinding", "ServiceAccount",
            "ConfigMap", "PersistentVolumeClaim", "Namespace"} <= kinds
    for document in documents:
        validate_kubernetes(document)
    names = {(d["kind"], d["metadata"]["name"]) for d in documents}
    provided = {("Secret", n) for n in OPERATOR_SECRETS.get(overlay, set())}
    missing = [ref for ref in _references(documents) if ref not in names | provided]
    assert not missing, f"{overlay}: unresolved references {missing}"
    # Every Service selects the pods of some workload.
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in documents
            if d["kind"] in ("Deployment", "StatefulSet")]
    for service in (d for d in documents if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pods), service["metadata"]
    api = next(d for d in documents if d["kind"] == "Deployment"
               and d["metadata"]["name"] == "shipyard-api")
    assert ":" in api["spec"]["template"]["spec"]["containers"][0]["image"]  # an image was set
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    assert config["SHIPYARD_ORCHESTRATOR"] == "argo" and config["SHIPYARD_DATASTORE"] == "s3"
    if overlay == "production":
        assert api["spec"]["replicas"] >= 2  # several stateless replicas
        assert not [d for d in documents if d["kind"] == "Secret"], "no secret in git"


def _allowed(rules: list[dict], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
               for r in rules)


def test_rbac_covers_every_call_of_the_api_and_of_workflow_pods():
    documents = build(DEPLOY / "base")
    roles = {d["metadata"]["name"]: d["rules"] for d in documents if d["kind"] == "Role"}
    bindings = {d["metadata"]["name"]: d for d in documents if d["kind"] == "RoleBinding"}
    for name in ("shipyard-api", "shipyard-workflow"):
        assert bindings[name]["roleRef"]["name"] == name
        assert bindings[name]["subjects"][0]["name"] == name
    api_calls = [("argoproj.io", "workflows", v) for v in ("create", "get", "list", "delete")]
    api_calls += [("argoproj.io", "workflowtemplates", "create"),
                  ("argoproj.io", "cronworkflows", "create"), ("argoproj.io", "cronworkflows", "update"),
                  ("argoproj.io", "cronworkflows", "delete"), ("apps", "deployments", "create"),
                  ("apps", "deployments", "update"), ("apps", "deployments", "get"),
                  ("apps", "deployments", "list"),
                  ("apps", "deployments", "delete"), ("", "services", "create"),
                  ("", "services", "delete"), ("", "secrets", "create"), ("", "secrets", "update"),
                  ("", "secrets", "delete"), ("", "pods", "list"), ("", "pods/log", "get")]
    for call in api_calls:
        assert _allowed(roles["shipyard-api"], *call), call
    for call in (("argoproj.io", "workflowtaskresults", "create"),
                 ("argoproj.io", "workflowtasksets/status", "patch"), ("", "secrets", "get")):
        assert _allowed(roles["shipyard-workflow"], *call), call
    assert not _allowed(roles["shipyard-workflow"], "", "secrets", "create")
    # The service account the builders put in workflows is the one deploy/ creates.
    assert builders.SERVICE_ACCOUNT == "shipyard-workflow"
