"""The one class that talks to the cluster: the Argo Server through Hera's WorkflowsService,
the Kubernetes API through the `kubernetes` client. Everything it sends comes from
builders.py; it answers plain dicts, and raises NotFoundError / ConflictError / ClusterError
so the orchestrator never sees a library's exception types."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from hera import exceptions as hera_errors
from hera.workflows.models import (
    CreateCronWorkflowRequest,
    UpdateCronWorkflowRequest,
    WorkflowCreateRequest,
    WorkflowTemplateCreateRequest,
    WorkflowTerminateRequest,
)
from hera.workflows.models import CronWorkflow as CronWorkflowModel
from hera.workflows.models import Workflow as WorkflowModel
from hera.workflows.models import WorkflowTemplate as WorkflowTemplateModel
from hera.workflows.service import WorkflowsService
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from ...config import Settings

log = logging.getLogger("shipyard.argo")
T = TypeVar("T")
TIMEOUT_S = 30
LOG_TAIL_BYTES = 64 * 1024


def _json() -> dict:
    """Headers of a write: the generated client sends no Content-Type on creates unless
    given one (and mutates the dict, hence a new one each call)."""
    return {"Content-Type": "application/json"}



class ClusterError(Exception):
    """The cluster refused or could not be reached."""


class NotFoundError(ClusterError):
    pass


class ConflictError(ClusterError):
    pass


def _argo_call(what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except hera_errors.NotFound as exc:
        raise NotFoundError(f"{what}: not found") from exc
    except hera_errors.AlreadyExists as exc:
        raise ConflictError(f"{what}: already exists") from exc
    except hera_errors.HeraException as exc:
        raise ClusterError(f"{what}: {exc}") from exc
    except requests.RequestException as exc:
        raise ClusterError(f"{what}: the Argo Server cannot be reached ({exc})") from exc


def _k8s_call(what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except ApiException as exc:
        if exc.status == 404:
            raise NotFoundError(f"{what}: not found") from exc
        if exc.status == 409:
            raise ConflictError(f"{what}: already exists") from exc
        raise ClusterError(f"{what}: {exc.status} {exc.reason}: {str(exc.body)[:500]}") from exc
    except Exception as exc:  # urllib3 connection errors and the like
        if isinstance(exc, ClusterError):
            raise
        raise ClusterError(f"{what}: the Kubernetes API cannot be reached ({exc})") from exc


def _dump(model: Any) -> dict:
    return json.loads(model.model_dump_json(by_alias=True, exclude_none=True))


class ClusterClient:
    def __init__(self, settings: Settings):
        if not settings.argo_server:
            raise ValueError("SHIPYARD_ORCHESTRATOR=argo needs SHIPYARD_ARGO_SERVER")
        self.namespace = settings.namespace
        self.dispatch_via = settings.dispatch_via
        self._token_file = "" if settings.argo_token else settings.argo_token_file
        self._token_mtime = 0.0
        self._argo = WorkflowsService(host=settings.argo_server.rstrip("/"),
                                      token=settings.argo_token or None,
                                      verify_ssl=settings.argo_verify_tls,
                                      namespace=settings.namespace)
        configuration = k8s.Configuration()
        if settings.kubeconfig:
            k8s_config.load_kube_config(config_file=settings.kubeconfig,
                                        client_configuration=configuration)
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)
        self.api_client = k8s.ApiClient(configuration)
        self.core = k8s.CoreV1Api(self.api_client)
        self.apps = k8s.AppsV1Api(self.api_client)
        self._http = requests.Session()

    @property
    def argo(self) -> WorkflowsService:
        """The Argo Server client, its token re-read when the token file changed."""
        if self._token_file:
            try:
                mtime = os.stat(self._token_file).st_mtime
                if mtime != self._token_mtime:
                    with open(self._token_file) as f:
                        self._argo.token = "Bearer " + f.read().strip()
                    self._token_mtime = mtime
            except OSError as exc:
                log.warning("cannot read the Argo token file: %s", exc)
        return self._argo

    def close(self) -> None:
        self.argo.close()
        self._http.close()
        self.api_client.close()

    # Argo: templates and workflows ------------------------------------------------------
    def ensure_workflow_template(self, document: dict) -> None:
        """Create unless it exists: step templates are named after their content."""
        name = document["metadata"]["name"]
        request = WorkflowTemplateCreateRequest(
            namespace=self.namespace, template=WorkflowTemplateModel.model_validate(document))
        try:
            _argo_call(f"WorkflowTemplate {name}",
                       lambda: self.argo.create_workflow_template(request, self.namespace))
        except ConflictError:
            pass

    def create_workflow(self, document: dict) -> dict:
        request = WorkflowCreateRequest(namespace=self.namespace,
                                        workflow=WorkflowModel.model_validate(document))
        name = document["metadata"].get("name")
        return _dump(_argo_call(f"Workflow {name}",
                                lambda: self.argo.create_workflow(request, self.namespace)))

    def get_workflow(self, name: str) -> dict | None:
        try:
            return _dump(_argo_call(f"Workflow {name}",
                                    lambda: self.argo.get_workflow(name, self.namespace)))
        except NotFoundError:
            return None

    def list_workflows(self, label_selector: str) -> list[dict]:
        fields = ("items.metadata.name,items.metadata.labels,items.metadata.annotations,"
                  "items.status.phase,items.status.message,items.status.nodes")
        result = _argo_call("list workflows", lambda: self.argo.list_workflows(
            self.namespace, label_selector=label_selector, fields=fields))
        return [_dump(item) for item in (result.items or [])]

    def terminate_workflow(self, name: str) -> None:
        request = WorkflowTerminateRequest(name=name, namespace=self.namespace)
        try:
            _argo_call(f"terminate {name}",
                       lambda: self.argo.terminate_workflow(name, request, self.namespace))
        except NotFoundError:
            pass

    def delete_workflow(self, name: str) -> None:
        try:
            _argo_call(f"delete {name}", lambda: self.argo.delete_workflow(name, self.namespace))
        except NotFoundError:
            pass

    def workflow_log_tail(self, name: str, max_bytes: int = LOG_TAIL_BYTES) -> str:
        """The end of the main container's log. Read with requests, not Hera: the route
        answers newline-delimited JSON, which Hera's `workflow_logs` cannot parse."""
        url = f"{self.argo.host}/api/v1/workflows/{self.namespace}/{name}/log"
        headers = {"Authorization": self.argo.token} if self.argo.token else {}
        lines: list[str] = []
        size = 0
        try:
            with self._http.get(url, params={"logOptions.container": "main"}, headers=headers,
                                stream=True, timeout=TIMEOUT_S, verify=self.argo.verify_ssl) as r:
                if r.status_code != 200:
                    return ""
                for raw in r.iter_lines():
                    try:
                        content = json.loads(raw).get("result", {}).get("content", "")
                    except ValueError:
                        continue
                    lines.append(content)
                    size += len(content) + 1
                    while size > max_bytes and len(lines) > 1:
                        size -= len(lines.pop(0)) + 1
        except requests.RequestException as exc:
            log.warning("could not read the log of %s: %s", name, exc)
        return "\n".join(lines)

    # Argo: cron workflows ---------------------------------------------------------------
    def apply_cron_workflow(self, document: dict) -> None:
        name = document["metadata"]["name"]
        model = CronWorkflowModel.model_validate(document)
        try:
            _argo_call(f"CronWorkflow {name}", lambda: self.argo.create_cron_workflow(
                CreateCronWorkflowRequest(namespace=self.namespace, cron_workflow=model),
                self.namespace))
            return
        except ConflictError:
            pass
        current = _argo_call(f"CronWorkflow {name}",
                             lambda: self.argo.get_cron_workflow(name, self.namespace))
        model.metadata.resource_version = current.metadata.resource_version
        _argo_call(f"CronWorkflow {name}", lambda: self.argo.update_cron_workflow(
            name, UpdateCronWorkflowRequest(name=name, namespace=self.namespace,
                                            cron_workflow=model), self.namespace))

    def get_cron_workflow(self, name: str) -> dict | None:
        try:
            return _dump(_argo_call(f"CronWorkflow {name}",
                                    lambda: self.argo.get_cron_workflow(name, self.namespace)))
        except NotFoundError:
            return None

    def delete_cron_workflow(self, name: str) -> None:
        try:
            _argo_call(f"delete CronWorkflow {name}",
                       lambda: self.argo.delete_cron_workflow(name, self.namespace))
        except NotFoundError:
            pass

    # Kubernetes ---------------------------------------------------------------------------
    def apply_secret(self, document: dict) -> None:
        name = document["metadata"]["name"]
        body = k8s.V1Secret.from_dict(document)
        try:
            _k8s_call(f"Secret {name}", lambda: self.core.create_namespaced_secret(
                self.namespace, body, _headers=_json()))
        except ConflictError:
            _k8s_call(f"Secret {name}", lambda: self.core.replace_namespaced_secret(
                name, self.namespace, body, _headers=_json()))

    def delete_secret(self, name: str) -> None:
        try:
            _k8s_call(f"delete Secret {name}",
                      lambda: self.core.delete_namespaced_secret(name, self.namespace))
        except NotFoundError:
            pass

    def apply_deployment(self, document: dict) -> None:
        name = document["metadata"]["name"]
        body = k8s.V1Deployment.from_dict(document)
        try:
            _k8s_call(f"Deployment {name}", lambda: self.apps.create_namespaced_deployment(
                self.namespace, body, _headers=_json()))
        except ConflictError:
            _k8s_call(f"Deployment {name}", lambda: self.apps.replace_namespaced_deployment(
                name, self.namespace, body, _headers=_json()))

    def ensure_service(self, document: dict) -> None:
        """Create unless it exists (its spec never changes; clusterIP is immutable)."""
        name = document["metadata"]["name"]
        body = k8s.V1Service.from_dict(document)
        try:
            _k8s_call(f"Service {name}", lambda: self.core.create_namespaced_service(
                self.namespace, body, _headers=_json()))
        except ConflictError:
            pass

    def read_deployment(self, name: str) -> dict | None:
        try:
            found = _k8s_call(f"Deployment {name}",
                              lambda: self.apps.read_namespaced_deployment(name, self.namespace))
        except NotFoundError:
            return None
        return self.api_client.sanitize_for_serialization(found)

    def list_deployments(self, label_selector: str) -> list[str]:
        """Names of the Deployments with these labels."""
        found = _k8s_call("list Deployments", lambda: self.apps.list_namespaced_deployment(
            self.namespace, label_selector=label_selector))
        return [d.metadata.name for d in found.items or []]

    def delete_deployment(self, name: str) -> None:
        for kind, call in (("Deployment", self.apps.delete_namespaced_deployment),
                           ("Service", self.core.delete_namespaced_service)):
            try:
                _k8s_call(f"delete {kind} {name}", lambda call=call: call(name, self.namespace))
            except NotFoundError:
                pass

    def list_pods(self, label_selector: str) -> list[dict]:
        found = _k8s_call("list pods", lambda: self.core.list_namespaced_pod(
            self.namespace, label_selector=label_selector))
        return [self.api_client.sanitize_for_serialization(p) for p in found.items or []]

    def post_to_service(self, service: str, port: int, path: str, body: dict,
                        timeout_s: float | None) -> tuple[int, Any]:
        """POST JSON to a Service: straight to its cluster DNS name when the API runs in
        the cluster (`dispatch_via=service`), else through the API server's service proxy."""
        if self.dispatch_via == "proxy":
            resource = (f"/api/v1/namespaces/{self.namespace}/services/{service}:{port}"
                        f"/proxy{path}")
            method, url, headers, data, _ = self.api_client.param_serialize(
                "POST", resource, header_params={"Content-Type": "application/json"},
                body=body, auth_settings=["BearerToken"])
            try:
                response = self.api_client.call_api(method, url, header_params=headers,
                                                    body=data, _request_timeout=timeout_s)
                response.read()
            except Exception as exc:
                raise ClusterError(f"POST {path} to {service}: {exc}") from exc
            text = response.data.decode("utf-8", "replace") if response.data else ""
            status = response.status
        else:
            url = f"http://{service}.{self.namespace}.svc:{port}{path}"
            try:
                response = self._http.post(url, json=body, timeout=timeout_s)
            except requests.RequestException as exc:
                raise ClusterError(f"POST {path} to {service}: {exc}") from exc
            text, status = response.text, response.status_code
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text
