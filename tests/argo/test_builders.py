"""The pure parts of the Argo orchestrator: names, build contexts, image recipes, and how
cluster status becomes Shipyard status. No network."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest
from shipyard_service.api import signed
from shipyard_service.orchestrators.argo import builders, names, urls
from shipyard_service.orchestrators.argo.context import ContextError, build_context
from shipyard_service.orchestrators.argo.orchestrator import _exit, _resident_state
from shipyard_service.orchestrators.base import BuildRequest

ROOT = Path(__file__).resolve().parents[2]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def test_signed_artifact_salt_matches_the_api():
    assert urls.ARTIFACT_SALT == signed.ARTIFACT_SALT


@pytest.mark.parametrize("raw", ["iris-ab12c", "x" * 80, "Upper_Case.id", "-lead-", "ünï"])
def test_names_are_dns_labels_and_distinct(raw):
    name = names.execution_workflow(raw)
    assert DNS_LABEL.match(name), name
    assert names.execution_workflow(raw + "z") != name
    assert len(names.label_value(raw)) <= 63


def test_short_plain_ids_keep_readable_names():
    assert names.execution_workflow("iris-ab12c") == "shipyard-exe-iris-ab12c"
    assert names.deployment(7) == "shipyard-dep-7"
    assert names.step_template("a") != names.step_template("b")


def _request(tmp_path: Path, files: dict[str, str], requirements: str | None = None,
             function_path: str = "main.py") -> BuildRequest:
    code = tmp_path / "code"
    for name, text in files.items():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_text(text)
    return BuildRequest(step_id=1, code_dir=code, language="python:3.11-slim",
                        requirements_path=requirements, function_path=function_path)


def test_build_context_matches_the_dockerfile_and_is_reproducible(tmp_path):
    request = _request(tmp_path, {"main.py": "def run(): pass\n", "req.txt": "numpy==2.0\n",
                                  "pkg/util.py": "X = 1\n"}, requirements="req.txt")
    first = build_context(request)
    assert build_context(request).digest == first.digest
    assert build_context(request).data == first.data
    with tarfile.open(fileobj=io.BytesIO(first.data), mode="r:gz") as tar:
        members = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read()
    assert requirements == b"numpy==2.0\n"
    assert {"Dockerfile", "code/main.py", "code/pkg/util.py", "shipyard_runner/__main__.py",
            "sdk/shipyard/__init__.py"} <= members
    assert not any("__pycache__" in m for m in members)
    # Every COPY source of worker_image/Dockerfile is in the context.
    dockerfile = (ROOT / "worker_image" / "Dockerfile").read_text()
    for source in re.findall(r"^COPY\s+(\S+)\s+\S+", dockerfile, re.M):
        assert any(m == source or m.startswith(source.rstrip("/") + "/") for m in members), source
    (request.code_dir / "main.py").write_text("def run(): return None\n")
    assert build_context(request).digest != first.digest


def test_build_context_refuses_requirements_outside_the_step(tmp_path):
    request = _request(tmp_path, {"main.py": ""}, requirements="../../etc/passwd")
    with pytest.raises(ContextError):
        build_context(request)
    missing = BuildRequest(step_id=1, code_dir=tmp_path / "nope", language="python:3.11-slim",
                           requirements_path=None)
    with pytest.raises(ContextError):
        build_context(missing)


def test_image_recipes():
    cfg = builders.ClusterConfig(image_registry="reg.test/s")
    cpu = builders.image_recipe(cfg, "python:3.9-slim", ["git", "libgomp1"])
    assert cpu.build_args() == {"PYTHON_VERSION": "3.9", "SYSTEM_DEPENDENCIES": "git libgomp1"}
    gpu = builders.image_recipe(cfg, "python-cuda:3.10-11.8", [])
    assert gpu.build_args()["BASE_IMAGE"] == "reg.test/s/python-cuda:3.10-11.8"
    assert builders.image_digest("c", cpu) != builders.image_digest("c", gpu)
    assert builders.image_reference(cfg, "ab" * 32).startswith("reg.test/s/shipyard-step:")


def test_exit_codes_and_messages_of_finished_workflows():
    assert _exit({"phase": "Succeeded"}) == (0, "")
    failed = {"phase": "Failed", "message": "Error (exit code 7)",
              "nodes": {"n": {"type": "Pod", "outputs": {"exitCode": "7"}}}}
    assert _exit(failed) == (7, "Error (exit code 7)")
    assert _exit({"phase": "Error", "message": "pod deleted"}) == (1, "pod deleted")


def _pod(name: str, ready: bool, restarts: int = 0, waiting: str | None = None) -> dict:
    state = {"waiting": {"reason": waiting, "message": "m"}} if waiting else {"running": {}}
    return {"metadata": {"name": name}, "status": {
        "phase": "Running" if not waiting else "Pending",
        "containerStatuses": [{"ready": ready, "restartCount": restarts, "state": state}]}}


def test_resident_state_from_deployment_and_pods():
    up = _resident_state({"status": {"readyReplicas": 1}}, [_pod("b", True), _pod("a", False)])
    assert up.status == "up" and [p.pod_id for p in up.pods] == ["a", "b"]
    assert up.pods[1].status == "Running" and up.pods[0].status == "Pending"
    crashing = _resident_state({"status": {}}, [_pod("a", False, 3, "CrashLoopBackOff")])
    assert crashing.status == "down_retrying" and crashing.pods[0].status == "Restarting"
    bad_image = _resident_state({"status": {}}, [_pod("a", False, 0, "ImagePullBackOff")])
    assert bad_image.status == "creation_failed" and "ImagePullBackOff" in bad_image.detail
    assert _resident_state({"status": {}}, []).status == "creation_pending"


def test_backends_are_chosen_by_configuration(tmp_path):
    from shipyard_service.config import Settings
    from shipyard_service.orchestrators import make_orchestrator
    from shipyard_service.orchestrators.argo import ArgoOrchestrator
    from shipyard_service.orchestrators.local import LocalOrchestrator

    assert isinstance(make_orchestrator(Settings(data_dir=tmp_path)), LocalOrchestrator)
    argo = make_orchestrator(Settings(data_dir=tmp_path, orchestrator="argo"))
    assert isinstance(argo, ArgoOrchestrator)
    with pytest.raises(ValueError, match="SHIPYARD_ARGO_SERVER"):
        argo.client  # noqa: B018 - connecting needs the Argo Server's address
    with pytest.raises(ValueError, match="SHIPYARD_ORCHESTRATOR"):
        make_orchestrator(Settings(data_dir=tmp_path, orchestrator="nomad"))


def test_step_pods_run_as_non_root_with_only_their_token():
    """Issue 13: step code in a cluster runs as the image's user `step`, cannot gain
    privileges, and holds no credential but its execution (or deployment) token: no
    service account token in the step's container (Argo's executor gets its own)."""
    documents = _render_module().documents()
    template = documents["step-workflowtemplate.yaml"]["spec"]
    assert template["automountServiceAccountToken"] is False
    assert template["executor"] == {"serviceAccountName": builders.SERVICE_ACCOUNT}
    assert template["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000,
                                           "runAsGroup": 1000}
    [step] = template["templates"]
    container = step["container"]
    _assert_locked(container["securityContext"])
    secrets = [e for e in container["env"] if "valueFrom" in e]
    assert [e["name"] for e in secrets] == ["SHIPYARD_EXECUTION_TOKEN"]
    assert "volumeMounts" not in container

    pod = documents["low-latency-deployment.yaml"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000}
    [runner] = pod["containers"]
    _assert_locked(runner["securityContext"])
    secrets = [e["name"] for e in runner["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert secrets == ["SHIPYARD_DEPLOYMENT_TOKEN"]
    assert "volumes" not in pod and "volumeMounts" not in runner
    assert "USER 1000" in (ROOT / "worker_image" / "Dockerfile").read_text()


def _assert_locked(context: dict) -> None:
    assert context == {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                       "capabilities": {"drop": ["ALL"]}}


def _render_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("shipyard_templates_render_b",
                                                  ROOT / "templates" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_step_of_a_low_latency_graph_has_runners_of_its_own(tmp_path):
    """Multi-step, low-latency: a Deployment + Service per step, named apart from every
    other deployment's, each selecting its own step's pods only — and the cluster stub
    refuses Deployments whose selectors reach each other's pods (the mistake a shared
    selector would be)."""
    import requests

    from .schemas import require_schemas
    from .stub import ClusterStub

    render = _render_module()
    specs = {step: render._spec(deployment_id=9, env_key="registry.test/img:1", step_name=step)
             for step in ("train", "score")}
    made = {step: (builders.resident_deployment(builders.ClusterConfig(), spec),
                   builders.resident_service(builders.ClusterConfig(), spec))
            for step, spec in specs.items()}
    assert {d["metadata"]["name"] for d, _ in made.values()} == {
        "shipyard-dep-9-train", "shipyard-dep-9-score"}
    assert names.resident(9, "train") not in {names.deployment(i) for i in range(100)}
    assert DNS_LABEL.match(names.resident(9, "x" * 80))
    # Step names the label rules would merge ("abc-" -> "abc") stay apart.
    assert names.resident(9, "abc") != names.resident(9, "abc-")
    assert names.resident_selector(9, "abc") != names.resident_selector(9, "abc-")
    assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                    names.resident_selector(9, "abc-")[names.STEP])
    for step, (deployment, service) in made.items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
        for other, (other_deployment, _) in made.items():
            selects = all(pod_labels.get(k) == v for k, v in
                          other_deployment["spec"]["selector"]["matchLabels"].items())
            assert selects == (other == step), (step, other)

    require_schemas()
    stub = ClusterStub(tmp_path / "cluster").start()
    try:
        url = f"{stub.url}/apis/apps/v1/namespaces/{stub.namespace}/deployments"
        assert requests.post(url, json=made["train"][0], timeout=10).status_code == 201
        shared = builders.resident_deployment(builders.ClusterConfig(), render._spec(
            deployment_id=9, env_key="registry.test/img:1"))  # selects every step's pods
        refused = requests.post(url, json=shared, timeout=10)
        assert refused.status_code == 422 and "select each other's pods" in refused.text
        assert requests.post(url, json=made["score"][0], timeout=10).status_code == 201
        listed = requests.get(url, params={"labelSelector": "shipyard.io/step=score"},
                              timeout=10).json()["items"]
        assert [d["metadata"]["name"] for d in listed] == ["shipyard-dep-9-score"]
    finally:
        stub.stop()
    assert len(stub.errors) == 1
