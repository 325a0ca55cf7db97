"""Pure builders of the Argo and Kubernetes objects: values in, manifest dicts out.

No network and no clock here: the same inputs always give the same manifest, which is what
`templates/` holds as golden examples. Argo kinds are built with Hera (`.to_dict()`),
Kubernetes kinds with the `kubernetes` client's models, serialised offline.

    step image      WorkflowTemplate  shipyard-step-<digest>   (one per step image)
    execution       Workflow          shipyard-exe-<id>        (workflowTemplateRef + Secret)
    pipeline graph  WorkflowTemplate  shipyard-pipe-<digest>   (DAG entrypoint, task per step)
    step build      Workflow          shipyard-build-<digest>  (fetch context, kaniko)
    periodic        CronWorkflow      shipyard-dep-<id>        (HTTP tick to the API)
    low-latency     Deployment        shipyard-dep-<id>        (+ Service, + Secret)
     multi-step     Deployment        shipyard-dep-<id>-<step> (+ Service) per step
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from hera.workflows import (
    DAG,
    HTTP,
    Container,
    CronWorkflow,
    Env,
    Parameter,
    Resources,
    SecretEnv,
    Task,
    UserContainer,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows.models import (
    Backoff,
    Capabilities,
    EmptyDirVolumeSource,
    ExecutorConfig,
    PodGC,
    PodSecurityContext,
    RetryStrategy,
    SecretKeySelector,
    SecretVolumeSource,
    SecurityContext,
    TTLStrategy,
    Volume,
    VolumeMount,
    WorkflowTemplateRef,
)
from hera.workflows.models.io.argoproj.workflow.v1alpha1 import HTTPHeader, HTTPHeaderSource
from kubernetes import client as k8s

from ...config import Settings
from ..base import DeploymentSpec
from . import names

RUNNER_PORT = 8080
WORKSPACE = "/workspace"
STEP_UID = 1000  # the user `step` of worker_image/Dockerfile: step code never runs as root
# Small CPU image that fetches a build context; needs tarfile's "data" filter (3.12).
FETCH_IMAGE = "python:3.12-slim"
# Requests of an elastic execution pod; low-latency pods take the deployment's ram/gpu.
EXECUTION_REQUESTS = {"cpu": "250m", "memory": "512Mi"}
RESIDENT_REQUESTS = {"cpu": "250m", "memory": "512Mi"}
# Finished workflows (and their pods) are garbage-collected by Argo after an hour: the
# store already holds status, outputs and logs.
WORKFLOW_TTL_S = 3600
SERVICE_ACCOUNT = "shipyard-workflow"
REGISTRY_SECRET = "shipyard-registry"  # docker config.json for kaniko, optional

FETCH_SCRIPT = """\
import os, tarfile, urllib.request
with urllib.request.urlopen(os.environ["CONTEXT_URL"], timeout=300) as response:
    with tarfile.open(fileobj=response, mode="r|gz") as archive:
        archive.extractall(os.environ.get("CONTEXT_DIR", "/workspace"), filter="data")
"""


@dataclass(frozen=True)
class ClusterConfig:
    """The settings the builders read (a subset of Settings, easy to fix in tests)."""

    namespace: str = "shipyard"
    image_registry: str = "registry.invalid/shipyard"
    builder_image: str = Settings.builder_image
    cuda_base_image: str = Settings.cuda_base_image
    execution_timeout_s: int = 24 * 3600

    @classmethod
    def from_settings(cls, settings: Settings) -> ClusterConfig:
        return cls(namespace=settings.namespace,
                   image_registry=(settings.image_registry or cls.image_registry).rstrip("/"),
                   builder_image=settings.builder_image,
                   cuda_base_image=settings.cuda_base_image,
                   execution_timeout_s=settings.execution_timeout_s)


# Step images ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRecipe:
    """How a step image is built: worker_image/Dockerfile's build arguments."""

    python_version: str
    base_image: str | None  # None: python:<version>-slim (the Dockerfile's default)
    system_dependencies: tuple[str, ...]

    def build_args(self) -> dict[str, str]:
        args = {"PYTHON_VERSION": self.python_version,
                "SYSTEM_DEPENDENCIES": " ".join(self.system_dependencies)}
        if self.base_image:
            args["BASE_IMAGE"] = self.base_image
        return args


def image_recipe(cfg: ClusterConfig, language: str, system_dependencies: list[str]) -> ImageRecipe:
    """`python:3.X-slim` or `python-cuda:3.X-Y.Z` (checked upstream) to build arguments."""
    kind, _, version = language.partition(":")
    python, _, cuda = version.partition("-")
    base = None
    if kind == "python-cuda":
        base = cfg.cuda_base_image.format(registry=cfg.image_registry, python=python, cuda=cuda)
    return ImageRecipe(python, base, tuple(system_dependencies))


def image_digest(context_digest: str, recipe: ImageRecipe) -> str:
    """Same context and same build arguments: same image, built once."""
    payload = json.dumps({"context": context_digest, "args": recipe.build_args()},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def image_reference(cfg: ClusterConfig, digest: str) -> str:
    return f"{cfg.image_registry}/shipyard-step:{digest[:32]}"


def build_workflow(cfg: ClusterConfig, digest: str, image: str, recipe: ImageRecipe,
                   context_url: str) -> dict:
    """One pod: an init container unpacks the context from a signed URL into an emptyDir,
    kaniko builds worker_image/Dockerfile from it and pushes `image`."""
    args = [f"--context=dir://{WORKSPACE}", f"--dockerfile={WORKSPACE}/Dockerfile",
            f"--destination={image}", "--cache=true", "--snapshot-mode=redo"]
    args += [f"--build-arg={k}={v}" for k, v in sorted(recipe.build_args().items())]
    workspace = VolumeMount(name="workspace", mount_path=WORKSPACE)
    fetch = UserContainer(
        name="fetch-context", image=FETCH_IMAGE, command=["python", "-c", FETCH_SCRIPT],
        env=[Env(name="CONTEXT_URL", value=context_url), Env(name="CONTEXT_DIR", value=WORKSPACE)],
        volume_mounts=[workspace])
    with Workflow(
        name=names.build_workflow(digest), namespace=cfg.namespace, entrypoint="build",
        labels={**names.MANAGED_BY, names.KIND: "build"},
        annotations={"shipyard.io/image": image},
        service_account_name=SERVICE_ACCOUNT,
        ttl_strategy=TTLStrategy(seconds_after_completion=WORKFLOW_TTL_S),
        pod_gc=PodGC(strategy="OnPodSuccess"),
        volumes=[
            Volume(name="workspace", empty_dir=EmptyDirVolumeSource()),
            Volume(name="registry", secret=SecretVolumeSource(
                secret_name=REGISTRY_SECRET, optional=True,
                items=[{"key": ".dockerconfigjson", "path": "config.json"}])),
        ],
    ) as workflow:
        Container(
            name="build", image=cfg.builder_image, args=args, init_containers=[fetch],
            volume_mounts=[workspace, VolumeMount(name="registry", mount_path="/kaniko/.docker")],
            resources=Resources(cpu_request="500m", memory_request="1Gi"),
            # IntOrString: Argo's schema spells it as a string.
            active_deadline_seconds=str(30 * 60))
    return workflow.to_dict()


# Elastic executions -------------------------------------------------------------------------
def retry_strategy(max_retries: int, retry_delay_s: int) -> RetryStrategy | None:
    """A step's retries as Argo runs them: up to `max_retries` new pods after a failed
    one, the n-th after retry_delay_s * 2**(n-1) seconds (the API's own rule)."""
    if not max_retries:
        return None
    return RetryStrategy(
        limit=str(max_retries), retry_policy="OnFailure",
        backoff=Backoff(duration=str(retry_delay_s), factor="2") if retry_delay_s else None)


def _runner_container(cfg: ClusterConfig, name: str, image: str, token_key: str,
                      retries: tuple[int, int] = (0, 0)) -> Container:
    """`python -m shipyard_runner run` as the step user: it fetches its job from the API
    (inputs, code) and reports back; its token is read from the execution's Secret."""
    return Container(
        retry_strategy=retry_strategy(*retries),
        name=name, image=image, command=["python", "-m", "shipyard_runner"],
        security_context=SecurityContext(
            run_as_non_root=True, allow_privilege_escalation=False,
            capabilities=Capabilities(drop=["ALL"])),
        args=["run", "--execution-id", "{{workflow.parameters.execution-id}}"],
        env=[
            Env(name="SHIPYARD_API_URL", value="{{workflow.parameters.api-url}}"),
            SecretEnv(name="SHIPYARD_EXECUTION_TOKEN",
                      secret_name="{{workflow.parameters.token-secret}}",
                      secret_key=token_key),
        ],
        resources=Resources(cpu_request=EXECUTION_REQUESTS["cpu"],
                            memory_request=EXECUTION_REQUESTS["memory"]),
        active_deadline_seconds=str(cfg.execution_timeout_s))


def step_template(cfg: ClusterConfig, image: str) -> dict:
    """The WorkflowTemplate of a step image: `python -m shipyard_runner run` fetches the job
    (inputs as signed URLs, code as a signed URL) from the API and reports back to it. The
    execution token comes from a per-execution Secret named by a parameter, so it never
    appears in the workflow object the Argo UI shows."""
    with WorkflowTemplate(
        name=names.step_template(image), namespace=cfg.namespace, entrypoint="run",
        labels={**names.MANAGED_BY, names.KIND: "step"},
        annotations={"shipyard.io/image": image},
        **_execution_template_settings(),
    ) as template:
        _runner_container(cfg, "run", image, names.TOKEN_KEY)
    return template.to_dict()


def _execution_template_settings() -> dict:
    """What every WorkflowTemplate that runs step code shares: the execution's parameters,
    and pods that run non-root and hold no Kubernetes credential — the service account's
    token goes to Argo's executor containers only, never to the step's (issue 13)."""
    return dict(
        arguments=[Parameter(name="execution-id"), Parameter(name="api-url"),
                   Parameter(name="token-secret")],
        service_account_name=SERVICE_ACCOUNT, automount_service_account_token=False,
        executor=ExecutorConfig(service_account_name=SERVICE_ACCOUNT),
        security_context=PodSecurityContext(run_as_non_root=True, run_as_user=STEP_UID,
                                            run_as_group=STEP_UID),
        ttl_strategy=TTLStrategy(seconds_after_completion=WORKFLOW_TTL_S),
        pod_gc=PodGC(strategy="OnPodSuccess"),
    )


def graph_digest(steps: list[tuple[str, str]], upstream: dict[str, list[str]],
                 retries: dict[str, tuple[int, int]] | None = None) -> str:
    """Same steps (names, images), same dependencies and same retries: same
    WorkflowTemplate."""
    document: dict = {"steps": steps, "upstream": {k: sorted(v) for k, v in upstream.items()}}
    if retries:  # (graphs without retries keep the names they had before retries existed)
        document["retries"] = {k: list(v) for k, v in retries.items()}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def graph_template(cfg: ClusterConfig, steps: list[tuple[str, str]],
                   upstream: dict[str, list[str]],
                   retries: dict[str, tuple[int, int]] | None = None) -> dict:
    """A multi-step pipeline: one WorkflowTemplate whose entrypoint is a DAG, a task per
    step (in `steps` order, `(step_name, image)`) waiting for its upstream steps. Values and
    files go from step to step through the API (each task's job holds its inputs: values,
    and upstream files as signed URLs), so a task needs no Argo parameter or artifact
    besides the execution's; each task reads its own token (`token-<step>`). A step that
    retries (`retries`: step -> (max_retries, retry_delay_s)) has a retryStrategy on its
    task's template: each new pod asks the API for its job as the step's next attempt."""
    retries = retries or {}
    with WorkflowTemplate(
        name=names.graph_template(graph_digest(steps, upstream, retries)),
        namespace=cfg.namespace,
        entrypoint="graph", labels={**names.MANAGED_BY, names.KIND: "pipeline"},
        **_execution_template_settings(),
    ) as template:
        containers = {name: _runner_container(cfg, name, image, names.step_token_key(name),
                                              retries.get(name, (0, 0)))
                      for name, image in steps}
        with DAG(name="graph"):
            for name, _ in steps:
                Task(name=name, template=containers[name],
                     dependencies=sorted(upstream.get(name, [])) or None)
    return template.to_dict()


def graph_workflow(cfg: ClusterConfig, template_name: str, execution_id: str,
                   api_url: str) -> dict:
    """One execution of a multi-step pipeline: its Workflow references the graph's
    WorkflowTemplate (the same naming as a single-step execution's, so cancelling and
    status reports do not tell them apart)."""
    return Workflow(
        name=names.execution_workflow(execution_id), namespace=cfg.namespace,
        labels={**names.MANAGED_BY, names.KIND: "execution",
                names.EXECUTION_ID: names.label_value(execution_id)},
        annotations={"shipyard.io/execution-id": execution_id},
        workflow_template_ref=WorkflowTemplateRef(name=template_name),
        arguments=[Parameter(name="execution-id", value=execution_id),
                   Parameter(name="api-url", value=api_url),
                   Parameter(name="token-secret", value=names.execution_secret(execution_id))],
    ).to_dict()


def graph_secret(cfg: ClusterConfig, execution_id: str, tokens: dict[str, str]) -> dict:
    labels = {**names.MANAGED_BY, names.KIND: "execution",
              names.EXECUTION_ID: names.label_value(execution_id)}
    return secret(cfg, names.execution_secret(execution_id), labels,
                  {names.step_token_key(step): token for step, token in tokens.items()})


def execution_workflow(cfg: ClusterConfig, image: str, execution_id: str, api_url: str,
                       run_key: str | None = None) -> dict:
    """One run of a step. `run_key` names one step of a multi-step execution
    ("<execution_id>.<step>"): the objects and the status reports go by it, while the
    runner works for the execution itself (its job, its metrics)."""
    key = run_key or execution_id
    return Workflow(
        name=names.execution_workflow(key), namespace=cfg.namespace,
        labels={**names.MANAGED_BY, names.KIND: "execution",
                names.EXECUTION_ID: names.label_value(key)},
        annotations={"shipyard.io/execution-id": key},
        workflow_template_ref=WorkflowTemplateRef(name=names.step_template(image)),
        arguments=[Parameter(name="execution-id", value=execution_id),
                   Parameter(name="api-url", value=api_url),
                   Parameter(name="token-secret", value=names.execution_secret(key))],
    ).to_dict()


def secret(cfg: ClusterConfig, name: str, labels: dict, data: dict[str, str]) -> dict:
    body = k8s.V1Secret(api_version="v1", kind="Secret",
                        metadata=k8s.V1ObjectMeta(name=name, namespace=cfg.namespace,
                                                  labels=dict(labels)),
                        type="Opaque", string_data=dict(data))
    return k8s.ApiClient().sanitize_for_serialization(body)


def execution_secret(cfg: ClusterConfig, execution_id: str, token: str) -> dict:
    labels = {**names.MANAGED_BY, names.KIND: "execution",
              names.EXECUTION_ID: names.label_value(execution_id)}
    return secret(cfg, names.execution_secret(execution_id), labels, {names.TOKEN_KEY: token})


# Deployments --------------------------------------------------------------------------------
def _labels(spec: DeploymentSpec) -> dict:
    return names.deployment_labels(spec.deployment_id, spec.name, spec.project, spec.environment)


def deployment_secret(cfg: ClusterConfig, spec: DeploymentSpec) -> dict:
    """The runner token of a deployment: raw for resident runners, as a whole header value
    for the CronWorkflow's HTTP template."""
    return secret(cfg, names.deployment(spec.deployment_id), _labels(spec), {
        names.TOKEN_KEY: spec.runner_token,
        names.AUTH_HEADER_KEY: f"DeploymentToken {spec.runner_token}",
    })


def tick_url(spec: DeploymentSpec) -> str:
    return f"{spec.environment_url}/api/v1/runner/deployments/{spec.deployment_id}/ticks"


def cron_workflow(cfg: ClusterConfig, spec: DeploymentSpec, starting_deadline_s: int) -> dict:
    """A periodic deployment: each tick is an Argo HTTP template (run by the Argo agent, no
    pod) that asks the API to start the tick's execution. The API then runs it like any
    other (a Workflow, or a resident runner in low-latency mode) and records the tick once,
    so a retried or duplicated tick never runs twice."""
    with CronWorkflow(
        name=names.deployment(spec.deployment_id), namespace=cfg.namespace,
        labels={**_labels(spec), names.KIND: "tick"},
        schedules=[spec.schedule or ""], timezone="UTC",
        # Ticks are independent executions, as in embedded mode.
        concurrency_policy="Allow",
        starting_deadline_seconds=starting_deadline_s,
        cron_suspend=not spec.is_enabled,
        successful_jobs_history_limit=3, failed_jobs_history_limit=3,
        entrypoint="tick", service_account_name=SERVICE_ACCOUNT,
        ttl_strategy=TTLStrategy(seconds_after_completion=WORKFLOW_TTL_S),
    ) as cron:
        HTTP(
            name="tick", url=tick_url(spec), method="POST", timeout_seconds=60,
            headers=[
                HTTPHeader(name="Content-Type", value="application/json"),
                HTTPHeader(name="Authorization", value_from=HTTPHeaderSource(
                    secret_key_ref=SecretKeySelector(name=names.deployment(spec.deployment_id),
                                                     key=names.AUTH_HEADER_KEY))),
            ],
            body='{"fire_time": "{{workflow.scheduledTime}}"}',
            success_condition="response.statusCode == 200")
    return cron.to_dict()


def _resident_labels(spec: DeploymentSpec) -> dict:
    """A step's resident runners (multi-step pipeline, low-latency) also carry its name."""
    return {**_labels(spec), **names.resident_selector(spec.deployment_id, spec.step_name)}


def _k8s_quantity(ram: str) -> str:
    """`512MiB` (the API's spelling) to `512Mi` (Kubernetes')."""
    return ram[:-1] if ram.endswith("iB") else ram


def resident_deployment(cfg: ClusterConfig, spec: DeploymentSpec) -> dict:
    """Resident runners of a low-latency deployment. A new generation (update_deployment)
    or a new runner token changes the pod template's annotations: Kubernetes then replaces
    the pods one by one (maxUnavailable 0), each new one ready before an old one goes."""
    labels = _resident_labels(spec)
    pod_labels = names.resident_selector(spec.deployment_id, spec.step_name)
    requests = dict(RESIDENT_REQUESTS)
    limits = {}
    if spec.ram_request:
        requests["memory"] = limits["memory"] = _k8s_quantity(spec.ram_request)
    if spec.gpu_request:
        limits["nvidia.com/gpu"] = str(int(spec.gpu_request))
    token_digest = hashlib.sha256(spec.runner_token.encode()).hexdigest()[:16]
    health = k8s.V1HTTPGetAction(path="/health", port=RUNNER_PORT)
    container = k8s.V1Container(
        name="runner", image=spec.env_key,
        command=["python", "-m", "shipyard_runner"],
        args=["serve", "--host", "0.0.0.0", "--port", str(RUNNER_PORT),
              "--function-path", spec.function_path, "--function-name", spec.function_name,
              "--max-parallel", str(max(1, spec.max_parallel))],
        ports=[k8s.V1ContainerPort(name="http", container_port=RUNNER_PORT)],
        env=[
            k8s.V1EnvVar(name="SHIPYARD_API_URL", value=spec.environment_url),
            k8s.V1EnvVar(name="SHIPYARD_DEPLOYMENT_TOKEN", value_from=k8s.V1EnvVarSource(
                secret_key_ref=k8s.V1SecretKeySelector(name=names.deployment(spec.deployment_id),
                                                       key=names.TOKEN_KEY))),
            k8s.V1EnvVar(name="SHIPYARD_POD_ID", value_from=k8s.V1EnvVarSource(
                field_ref=k8s.V1ObjectFieldSelector(field_path="metadata.name"))),
        ],
        resources=k8s.V1ResourceRequirements(requests=requests, limits=limits or None),
        security_context=k8s.V1SecurityContext(
            run_as_non_root=True, allow_privilege_escalation=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"])),
        # Importing the module may take long (models to load): the startup probe allows
        # 30 minutes, then liveness restarts a runner that stops answering.
        startup_probe=k8s.V1Probe(http_get=health, period_seconds=5, failure_threshold=360),
        readiness_probe=k8s.V1Probe(http_get=health, period_seconds=2, failure_threshold=2),
        liveness_probe=k8s.V1Probe(http_get=health, period_seconds=10, failure_threshold=6),
    )
    body = k8s.V1Deployment(
        api_version="apps/v1", kind="Deployment",
        metadata=k8s.V1ObjectMeta(name=names.resident(spec.deployment_id, spec.step_name),
                                  namespace=cfg.namespace, labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=max(1, spec.replicas) if spec.is_enabled else 0,
            selector=k8s.V1LabelSelector(match_labels=pod_labels),
            strategy=k8s.V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=k8s.V1RollingUpdateDeployment(max_surge=1, max_unavailable=0)),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(
                    labels={**labels, **pod_labels},
                    annotations={names.GENERATION: str(spec.generation),
                                 names.TOKEN_DIGEST: token_digest}),
                spec=k8s.V1PodSpec(containers=[container], termination_grace_period_seconds=30,
                                   automount_service_account_token=False,
                                   security_context=k8s.V1PodSecurityContext(
                                       run_as_non_root=True, run_as_user=STEP_UID,
                                       run_as_group=STEP_UID))),
        ),
    )
    return k8s.ApiClient().sanitize_for_serialization(body)


def resident_service(cfg: ClusterConfig, spec: DeploymentSpec) -> dict:
    body = k8s.V1Service(
        api_version="v1", kind="Service",
        metadata=k8s.V1ObjectMeta(name=names.resident(spec.deployment_id, spec.step_name),
                                  namespace=cfg.namespace, labels=_resident_labels(spec)),
        spec=k8s.V1ServiceSpec(
            selector=names.resident_selector(spec.deployment_id, spec.step_name),
            ports=[k8s.V1ServicePort(name="http", port=RUNNER_PORT, target_port="http")]),
    )
    return k8s.ApiClient().sanitize_for_serialization(body)
