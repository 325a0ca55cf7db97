"""A local stand-in for a cluster: the Argo Server REST API and the part of the Kubernetes
API the Argo orchestrator uses, on one loopback port.

What it checks: every payload it receives — Argo objects against the Argo JSON schema, Argo
Server request bodies against the Argo Server OpenAPI, Kubernetes objects with
`kubernetes-validate --strict` — and answers 400 (recorded in `errors`) when one is invalid.

What it simulates, to test everything up to the cluster boundary:

* a controller moving workflows through `Pending -> Running -> Succeeded | Failed`;
* "kubelet": pods run as local processes. A build workflow runs its init container's
  command (which really fetches and unpacks the build context from the API's signed URL),
  checks the Dockerfile is there and registers the unpacked context as the image, mapped
  like worker_image/Dockerfile lays it out (runner and SDK on PYTHONPATH, SHIPYARD_CODE_DIR
  on code/). Requirements are not installed: pods run with the test interpreter. A build
  whose requirements name a package starting with `shipyard-unresolvable` fails, as pip
  would;
* execution workflows run the template's container command with parameters substituted and
  secret references resolved;
* Deployments run `replicas` resident runners (loopback ports), replaced one by one when the
  pod template changes; the Service proxy forwards to a ready pod its selector selects
  (as Kubernetes does, not by name). A Deployment whose selector misses its pod template is
  refused (422) as the API server does, and so are Deployments selecting each other's pods
  (which Kubernetes lets through, leaving the controllers to fight: each step of a
  multi-step low-latency deployment must have its own), as is a Service reaching the pods
  of several Deployments (recorded in `errors`);
* CronWorkflows fire on their schedule (UTC): the HTTP template is executed with its
  headers resolved from Secrets, and `fire_cron` fires one on demand.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from croniter import croniter
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

from ..helpers import free_port
from . import schemas

FINAL = ("Succeeded", "Failed", "Error")
UNRESOLVABLE = "shipyard-unresolvable"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _matches(labels: dict, selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def _public(document: dict) -> dict:
    return {k: v for k, v in document.items() if not k.startswith("_")}


class Invalid(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class LocalPod:
    """A container run as a local process, its output kept as the pod log."""

    def __init__(self, name: str, argv: list[str], env: dict, cwd: Path):
        self.name = name
        self.log_path = cwd / "pod.log"
        self.started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.restarts = 0

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


class DagRun:
    """A workflow whose entrypoint is a DAG: each task a LocalPod, started once every task
    it depends on succeeded; a task after a failed one is omitted, as Argo does. A task
    whose template has a retryStrategy gets a new pod after a failed one, up to its limit,
    after its backoff (duration * factor**n seconds)."""

    def __init__(self, name: str, tasks: list[dict], templates: dict[str, dict], cwd: Path,
                 start_pod):
        self.name = name
        self.tasks = tasks
        self.templates = templates
        self.cwd = cwd
        self.start_pod = start_pod  # (task name, container template, cwd) -> LocalPod
        self.pods: dict[str, LocalPod] = {}
        self.phases: dict[str, str | None] = {t["name"]: None for t in tasks}
        self.order: list[str] = []  # the order tasks started in
        self.started = time.monotonic()
        self.deadline = 0.0
        self.templates_of = {t["name"]: t["template"] for t in tasks}
        self.retries: dict[str, int] = {}  # task -> retries used
        self.retry_at: dict[str, float] = {}  # task -> when its next pod starts

    def _retry_later(self, task: str) -> bool:
        strategy = self.templates[self.templates_of[task]].get("retryStrategy")
        used = self.retries.get(task, 0)
        if not strategy or used >= int(strategy.get("limit", 0)):
            return False
        backoff = strategy.get("backoff") or {}
        duration = float(str(backoff.get("duration", "0")).rstrip("s") or 0)
        self.retries[task] = used + 1
        self.retry_at[task] = time.monotonic() + duration * float(backoff.get("factor", 1)) ** used
        return True

    def _start(self, task: str) -> None:
        cwd = self.cwd / task / str(self.retries.get(task, 0))
        cwd.mkdir(parents=True, exist_ok=True)
        self.pods[task] = self.start_pod(f"{self.name}-{task}",
                                         self.templates[self.templates_of[task]], cwd)

    def step(self) -> str | None:
        """Advance; the workflow's final phase once every task is done."""
        for task, pod in list(self.pods.items()):
            if (self.phases[task] == "Running" and task not in self.retry_at
                    and pod.proc.poll() is not None):
                if pod.proc.returncode != 0 and self._retry_later(task):
                    continue
                self.phases[task] = "Succeeded" if pod.proc.returncode == 0 else "Failed"
        for task, when in list(self.retry_at.items()):
            if time.monotonic() >= when:
                del self.retry_at[task]
                self._start(task)
        for task in self.tasks:
            name, deps = task["name"], task.get("dependencies") or []
            if self.phases[name] is not None:
                continue
            if any(self.phases[d] in ("Failed", "Omitted") for d in deps):
                self.phases[name] = "Omitted"
            elif all(self.phases[d] == "Succeeded" for d in deps):
                self._start(name)
                self.phases[name] = "Running"
                self.order.append(name)
        if any(p in (None, "Running") for p in self.phases.values()):
            return None
        return "Succeeded" if all(p == "Succeeded" for p in self.phases.values()) else "Failed"

    def nodes(self) -> dict:
        return {f"{self.name}-{task}": {
            "id": f"{self.name}-{task}", "name": f"{self.name}.{task}", "displayName": task,
            "type": "Pod" if phase != "Omitted" else "Skipped", "phase": phase or "Pending",
            **({"outputs": {"exitCode": str(self.pods[task].proc.returncode)}}
               if task in self.pods and self.pods[task].proc.returncode is not None else {})}
            for task, phase in self.phases.items()}

    def log(self) -> str:
        return "".join(self.pods[task].log() for task in self.order)

    def kill(self) -> None:
        for pod in self.pods.values():
            pod.kill()


class ClusterStub:
    namespace = "shipyard"

    def __init__(self, work_dir: Path, validate: bool = True):
        self.work = Path(work_dir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.validate = validate
        self.port = free_port()
        self.errors: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.objects: dict[str, dict[str, dict]] = {k: {} for k in (
            "workflowtemplates", "workflows", "cronworkflows", "secrets", "deployments",
            "services")}
        self.images: dict[str, Path] = {}  # image reference -> unpacked build context
        self.pods: dict[str, LocalPod] = {}  # workflow name -> pod
        self.replicas: dict[str, list[dict]] = {}  # deployment name -> [{pod, port, hash}]
        self.cron_fired: dict[str, str] = {}  # cron name -> last scheduled time fired
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._counter = itertools.count(1)
        self.app = self._make_app()
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._threads = [threading.Thread(target=self._server.serve_forever, daemon=True),
                         threading.Thread(target=self._controller, daemon=True)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ClusterStub:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        with self._lock:
            pods = list(self.pods.values()) + [r["pod"] for rs in self.replicas.values()
                                               for r in rs]
        for pod in pods:
            pod.kill()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "stub",
            "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
            "users": [{"name": "stub", "user": {"token": "stub-token"}}],
            "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub",
                                                      "namespace": self.namespace}}],
        }))
        return path

    # Validation ----------------------------------------------------------------------------
    def _check(self, check, *args) -> None:
        if not self.validate:
            return
        try:
            check(*args)
        except Exception as exc:  # jsonschema / kubernetes_validate errors
            message = f"{request.method} {request.path}: {exc}"
            self.errors.append(message)
            raise Invalid(400, message) from exc

    def _stamp(self, kind: str, document: dict) -> dict:
        document = copy.deepcopy(document)
        meta = document.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise Invalid(400, "metadata.name or metadata.generateName is required")
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        meta.setdefault("namespace", self.namespace)
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(next(self._counter))
        meta["creationTimestamp"] = _now()
        return document

    def _store(self, kind: str, document: dict) -> dict:
        with self._lock:
            name = document["metadata"]["name"]
            if name in self.objects[kind]:
                raise Invalid(409, f'{kind} "{name}" already exists')
            self.objects[kind][name] = document
        return document

    def _get(self, kind: str, name: str) -> dict:
        with self._lock:
            found = self.objects[kind].get(name)
        if found is None:
            raise Invalid(404, f'{kind} "{name}" not found')
        return found

    # HTTP -----------------------------------------------------------------------------------
    def _make_app(self) -> Flask:
        app = Flask("cluster-stub")
        stub = self

        @app.errorhandler(Invalid)
        def _invalid(exc: Invalid):
            if request.path.startswith("/api/v1/workflow") or "cron-workflows" in request.path:
                return jsonify({"code": {400: 3, 404: 5, 409: 6}.get(exc.status, 2),
                                "message": exc.message}), exc.status
            reason = {400: "BadRequest", 404: "NotFound", 409: "AlreadyExists",
                      422: "Invalid"}.get(exc.status)
            return jsonify({"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": exc.message, "reason": reason,
                            "code": exc.status}), exc.status

        @app.before_request
        def _record():
            stub.requests.append((request.method, request.path))

        def body() -> dict:
            data = request.get_json(silent=True)
            if not isinstance(data, dict):
                raise Invalid(400, "the body must be a JSON object")
            return data

        # Argo Server --------------------------------------------------------------------
        @app.get("/api/v1/version")
        def version():
            return jsonify({"version": "v4.1.2", "buildDate": "2026-01-01T00:00:00Z",
                            "gitCommit": "0" * 40, "gitTag": "v4.1.2", "gitTreeState": "clean",
                            "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"})

        @app.get("/api/v1/info")
        def info():
            return jsonify({"managedNamespace": stub.namespace})

        @app.post("/api/v1/workflow-templates/<ns>")
        def create_template(ns):
            data = body()
            stub._check(schemas.validate_argo_request,
                        "io.argoproj.workflow.v1alpha1.WorkflowTemplateCreateRequest", data)
            stub._check(schemas.validate_argo, data["template"])
            return jsonify(stub._store("workflowtemplates",
                                       stub._stamp("workflowtemplates", data["template"])))

        @app.get("/api/v1/workflow-templates/<ns>/<name>")
        def get_template(ns, name):
            return jsonify(stub._get("workflowtemplates", name))

        @app.post("/api/v1/workflows/<ns>")
        def create_workflow(ns):
            data = body()
            stub._check(schemas.validate_argo_request,
                        "io.argoproj.workflow.v1alpha1.WorkflowCreateRequest", data)
            stub._check(schemas.validate_argo, data["workflow"])
            workflow = stub._stamp("workflows", data["workflow"])
            ref = (workflow.get("spec") or {}).get("workflowTemplateRef")
            if ref:
                stub._get("workflowtemplates", ref["name"])  # Argo refuses a missing template
            workflow["status"] = {"phase": "Pending", "startedAt": None}
            return jsonify(stub._store("workflows", workflow))

        @app.get("/api/v1/workflows/<ns>")
        def list_workflows(ns):
            selector = request.args.get("listOptions.labelSelector")
            with stub._lock:
                items = [copy.deepcopy(w) for w in stub.objects["workflows"].values()
                         if _matches(w["metadata"].get("labels") or {}, selector)]
            return jsonify({"metadata": {"resourceVersion": str(next(stub._counter))},
                            "items": items})

        @app.get("/api/v1/workflows/<ns>/<name>")
        def get_workflow(ns, name):
            with stub._lock:
                return jsonify(copy.deepcopy(stub._get("workflows", name)))

        @app.put("/api/v1/workflows/<ns>/<name>/terminate")
        def terminate(ns, name):
            data = body()
            stub._check(schemas.validate_argo_request,
                        "io.argoproj.workflow.v1alpha1.WorkflowTerminateRequest", data)
            workflow = stub._get("workflows", name)
            with stub._lock:
                pod = stub.pods.get(name)
                if workflow["status"].get("phase") not in FINAL:
                    workflow["status"].update(phase="Failed", finishedAt=_now(),
                                              message="Stopped with strategy 'Terminate'")
            if pod is not None:
                pod.kill()
            return jsonify(workflow)

        @app.delete("/api/v1/workflows/<ns>/<name>")
        def delete_workflow(ns, name):
            stub._get("workflows", name)
            with stub._lock:
                pod = stub.pods.pop(name, None)
                stub.objects["workflows"].pop(name, None)
            if pod is not None:
                pod.kill()
            return jsonify({})

        @app.get("/api/v1/workflows/<ns>/<name>/log")
        def workflow_log(ns, name):
            stub._get("workflows", name)
            with stub._lock:
                pod = stub.pods.get(name)
            text = pod.log() if pod else ""
            lines = [json.dumps({"result": {"content": line, "podName": name}})
                     for line in text.splitlines()]
            return Response("\n".join(lines) + "\n", mimetype="application/json")

        @app.post("/api/v1/cron-workflows/<ns>")
        def create_cron(ns):
            data = body()
            stub._check(schemas.validate_argo_request,
                        "io.argoproj.workflow.v1alpha1.CreateCronWorkflowRequest", data)
            stub._check(schemas.validate_argo, data["cronWorkflow"])
            cron = stub._stamp("cronworkflows", data["cronWorkflow"])
            # Ticks strictly after creation fire, as in Argo (kept out of the JSON answer).
            cron["_created"] = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            return jsonify(_public(stub._store("cronworkflows", cron)))

        @app.get("/api/v1/cron-workflows/<ns>/<name>")
        def get_cron(ns, name):
            return jsonify(_public(stub._get("cronworkflows", name)))

        @app.put("/api/v1/cron-workflows/<ns>/<name>")
        def update_cron(ns, name):
            data = body()
            stub._check(schemas.validate_argo_request,
                        "io.argoproj.workflow.v1alpha1.UpdateCronWorkflowRequest", data)
            stub._check(schemas.validate_argo, data["cronWorkflow"])
            current = stub._get("cronworkflows", name)
            sent = data["cronWorkflow"]
            if sent["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise Invalid(409, "the object has been modified (resourceVersion)")
            updated = copy.deepcopy(sent)
            updated["metadata"].update(uid=current["metadata"]["uid"],
                                       creationTimestamp=current["metadata"]["creationTimestamp"],
                                       resourceVersion=str(next(stub._counter)))
            with stub._lock:
                stub.objects["cronworkflows"][name] = {**updated, "_created": current["_created"]}
            return jsonify(updated)

        @app.delete("/api/v1/cron-workflows/<ns>/<name>")
        def delete_cron(ns, name):
            stub._get("cronworkflows", name)
            with stub._lock:
                stub.objects["cronworkflows"].pop(name, None)
            return jsonify({})

        # Kubernetes ---------------------------------------------------------------------
        kinds = {("api/v1", "secrets"): "secrets", ("api/v1", "services"): "services",
                 ("apis/apps/v1", "deployments"): "deployments"}

        def k8s_kind(group: str, plural: str) -> str:
            kind = kinds.get((group, plural))
            if kind is None:
                raise Invalid(404, f"the server could not find {group}/{plural}")
            return kind

        @app.get("/apis/apps/v1/namespaces/<ns>/deployments")
        def list_deployments(ns):
            selector = request.args.get("labelSelector")
            with stub._lock:
                items = [stub._with_status("deployments", d)
                         for d in stub.objects["deployments"].values()
                         if _matches(d["metadata"].get("labels") or {}, selector)]
            return jsonify({"kind": "DeploymentList", "apiVersion": "apps/v1",
                            "metadata": {}, "items": items})

        @app.post("/<path:group>/namespaces/<ns>/<plural>")
        def k8s_create(group, ns, plural):
            kind = k8s_kind(group, plural)
            data = body()
            stub._check(schemas.validate_kubernetes, data)
            stub._check_selectors(kind, data)
            document = stub._store(kind, stub._stamp(kind, data))
            stub._changed(kind, document)
            return jsonify(document), 201

        @app.route("/<path:group>/namespaces/<ns>/<plural>/<name>",
                   methods=["GET", "PUT", "DELETE"])
        def k8s_object(group, ns, plural, name):
            kind = k8s_kind(group, plural)
            current = stub._get(kind, name)
            if request.method == "GET":
                return jsonify(stub._with_status(kind, current))
            if request.method == "DELETE":
                with stub._lock:
                    stub.objects[kind].pop(name, None)
                stub._changed(kind, {"metadata": {"name": name}}, deleted=True)
                if kind == "services":  # the API answers the deleted Service itself
                    return jsonify(current)
                return jsonify({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Success"})
            data = body()
            stub._check(schemas.validate_kubernetes, data)
            stub._check_selectors(kind, data)
            if data["metadata"].get("name") != name:
                raise Invalid(400, "the name in the body does not match the URL")
            updated = copy.deepcopy(data)
            updated["metadata"].update(uid=current["metadata"]["uid"], namespace=ns,
                                       creationTimestamp=current["metadata"]["creationTimestamp"],
                                       resourceVersion=str(next(stub._counter)))
            with stub._lock:
                stub.objects[kind][name] = updated
            stub._changed(kind, updated)
            return jsonify(updated)

        @app.get("/api/v1/namespaces/<ns>/pods")
        def list_pods(ns):
            selector = request.args.get("labelSelector")
            return jsonify({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                            "items": stub._pods(selector)})

        @app.route("/api/v1/namespaces/<ns>/services/<service>/proxy/<path:rest>",
                   methods=["POST"])
        def service_proxy(ns, service, rest):
            name, _, port = service.partition(":")
            target = stub._ready_replica(stub._get("services", name))
            if target is None:
                raise Invalid(503, f"no endpoints available for service {name}")
            answer = requests.post(f"http://127.0.0.1:{target}/{rest}", data=request.get_data(),
                                   headers={"Content-Type": "application/json"}, timeout=600)
            return Response(answer.content, status=answer.status_code,
                            mimetype="application/json")

        return app

    # Controller -------------------------------------------------------------------------------
    def _controller(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self._step_workflows()
                self._step_deployments()
                self._step_crons()
            except Exception as exc:  # keep simulating; the test sees `errors`
                self.errors.append(f"controller: {type(exc).__name__}: {exc}")

    def _step_workflows(self) -> None:
        with self._lock:
            workflows = list(self.objects["workflows"].values())
        for workflow in workflows:
            phase = workflow["status"].get("phase")
            if phase == "Pending":
                self._start_pod(workflow)
            elif phase == "Running":
                self._watch_pod(workflow)

    def _resolved_template(self, workflow: dict) -> dict:
        merged = self._resolved_spec(workflow)
        entry = merged.get("entrypoint")
        return next(t for t in merged["templates"] if t["name"] == entry)

    def _resolved_spec(self, workflow: dict) -> dict:
        spec = workflow.get("spec") or {}
        ref = spec.get("workflowTemplateRef")
        base = copy.deepcopy(self._get("workflowtemplates", ref["name"])["spec"]) if ref else {}
        params = {p["name"]: p.get("value", "") for p in
                  (base.get("arguments") or {}).get("parameters", [])}
        params.update({p["name"]: p.get("value", "") for p in
                       (spec.get("arguments") or {}).get("parameters", [])})
        merged = {**base, **{k: v for k, v in spec.items() if k != "workflowTemplateRef"}}
        text = json.dumps(merged)
        for key, value in params.items():
            text = text.replace("{{workflow.parameters.%s}}" % key, json.dumps(value)[1:-1])
        return json.loads(text)

    def _env(self, container: dict) -> dict:
        env = {}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            ref = ((item.get("valueFrom") or {}).get("secretKeyRef")) or {}
            if ref:
                secret = self._get("secrets", ref["name"])
                env[item["name"]] = (secret.get("stringData") or {})[ref["key"]]
            field = ((item.get("valueFrom") or {}).get("fieldRef")) or {}
            if field.get("fieldPath") == "metadata.name":
                env[item["name"]] = container.get("_pod_name", "pod")
        return env

    def _image_env(self, image: str) -> dict:
        root = self.images.get(image)
        if root is None:
            raise Invalid(400, f"ErrImagePull: {image} was never built")
        return {"PYTHONPATH": f"{root}{os.pathsep}{root / 'sdk'}",
                "SHIPYARD_CODE_DIR": str(root / "code"), "PYTHONUNBUFFERED": "1",
                "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}

    def _start_pod(self, workflow: dict) -> None:
        name = workflow["metadata"]["name"]
        status = workflow["status"]
        try:
            template = self._resolved_template(workflow)
            cwd = Path(tempfile.mkdtemp(prefix=name + "-", dir=self.work))
            if "dag" in template:
                templates = {t["name"]: t for t in self._resolved_spec(workflow)["templates"]}
                pod = DagRun(name, template["dag"]["tasks"], templates, cwd,
                             self._container_pod)
                with self._lock:
                    self.pods[name] = pod
                    status.update(phase="Running", startedAt=_now())
                return
            container = template["container"]
            if (workflow["metadata"].get("labels") or {}).get("shipyard.io/kind") == "build":
                pod = self._build_pod(name, template, cwd)
            else:
                env = {**self._image_env(container["image"]), **self._env(container)}
                argv = [sys.executable if a == "python" else a
                        for a in container.get("command", [])] + container.get("args", [])
                pod = LocalPod(name, argv, env, cwd)
            pod.deadline = float(template.get("activeDeadlineSeconds") or 0)
        except (Invalid, KeyError, StopIteration) as exc:
            with self._lock:
                status.update(phase="Failed", message=str(exc), finishedAt=_now())
            return
        with self._lock:
            self.pods[name] = pod
            status.update(phase="Running", startedAt=_now())

    def _container_pod(self, name: str, template: dict, cwd: Path) -> LocalPod:
        container = dict(template["container"], _pod_name=name)
        env = {**self._image_env(container["image"]), **self._env(container)}
        argv = [sys.executable if a == "python" else a
                for a in container.get("command", [])] + container.get("args", [])
        return LocalPod(name, argv, env, cwd)

    def _build_pod(self, name: str, template: dict, cwd: Path) -> LocalPod:
        """Fetch the context for real (the init container's own script), then 'kaniko'."""
        init = template["initContainers"][0]
        context = cwd / "context"
        env = {**self._env(init), "CONTEXT_DIR": str(context),
               "PATH": os.environ.get("PATH", "")}
        script = init["command"][-1]
        checker = (
            "import pathlib, subprocess, sys\n"
            "code = subprocess.call([sys.executable, '-c', sys.argv[1]])\n"
            "ctx = pathlib.Path(sys.argv[2])\n"
            "if code: sys.exit(code)\n"
            "assert (ctx / 'Dockerfile').is_file(), 'no Dockerfile in the context'\n"
            "req = (ctx / 'requirements.txt').read_text()\n"
            f"if {UNRESOLVABLE!r} in req:\n"
            "    print('ERROR: No matching distribution found for ' + req.strip())\n"
            "    sys.exit(1)\n"
            "print('INFO[0001] Pushed image (simulated)')\n")
        pod = LocalPod(name, [sys.executable, "-c", checker, script, str(context)], env, cwd)
        args = template["container"]["args"]
        pod.image = next(a.split("=", 1)[1] for a in args if a.startswith("--destination="))
        pod.context = context
        return pod

    def _watch_pod(self, workflow: dict) -> None:
        name = workflow["metadata"]["name"]
        with self._lock:
            pod = self.pods.get(name)
        if pod is None:
            return
        if isinstance(pod, DagRun):
            try:
                phase = pod.step()
            except Invalid as exc:  # e.g. an image never built: the workflow fails
                pod.kill()
                phase = "Failed"
                workflow["status"]["message"] = str(exc)
            with self._lock:
                if workflow["status"].get("phase") in FINAL:
                    return
                workflow["status"]["nodes"] = pod.nodes()
                if phase is not None:
                    workflow["status"].update(
                        phase=phase, finishedAt=_now(),
                        message=workflow["status"].get("message")
                        or (None if phase == "Succeeded" else "child failed"))
            return
        code = pod.proc.poll()
        if code is None:
            if pod.deadline and time.monotonic() - pod.started > pod.deadline:
                pod.kill()
                with self._lock:
                    workflow["status"].update(
                        phase="Failed", finishedAt=_now(),
                        message="Pod was active on the node longer than the specified deadline")
            return
        if code == 0 and getattr(pod, "image", None):
            self.images[pod.image] = pod.context
        with self._lock:
            if workflow["status"].get("phase") in FINAL:
                return
            workflow["status"].update(
                phase="Succeeded" if code == 0 else "Failed", finishedAt=_now(),
                message=None if code == 0 else f"Error (exit code {code})",
                nodes={name: {"id": name, "name": name, "type": "Pod",
                              "phase": "Succeeded" if code == 0 else "Failed",
                              "outputs": {"exitCode": str(code)}}})

    # Deployments ------------------------------------------------------------------------------
    def _changed(self, kind: str, document: dict, deleted: bool = False) -> None:
        if kind != "deployments":
            return
        name = document["metadata"]["name"]
        if deleted:
            with self._lock:
                replicas = self.replicas.pop(name, [])
            for replica in replicas:
                replica["pod"].kill()

    def _spawn_replica(self, document: dict, template_hash: str) -> dict:
        name = document["metadata"]["name"]
        container = copy.deepcopy(document["spec"]["template"]["spec"]["containers"][0])
        port = free_port()
        pod_name = f"{name}-{template_hash[:6]}-{uuid.uuid4().hex[:5]}"
        container["_pod_name"] = pod_name
        args = list(container.get("args", []))
        for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
            args[args.index(flag) + 1] = value  # loopback only, a free port
        env = {**self._image_env(container["image"]), **self._env(container)}
        argv = [sys.executable if a == "python" else a for a in container["command"]] + args
        cwd = Path(tempfile.mkdtemp(prefix=pod_name + "-", dir=self.work))
        return {"pod": LocalPod(pod_name, argv, env, cwd), "port": port, "hash": template_hash,
                "labels": document["spec"]["template"]["metadata"].get("labels") or {}}

    @staticmethod
    def _ready(replica: dict) -> bool:
        if replica["pod"].proc.poll() is not None:
            return False
        try:
            return requests.get(f"http://127.0.0.1:{replica['port']}/health",
                                timeout=0.5).status_code == 200
        except requests.RequestException:
            return False

    def _step_deployments(self) -> None:
        with self._lock:
            documents = list(self.objects["deployments"].values())
        for document in documents:
            name = document["metadata"]["name"]
            wanted = int(document["spec"].get("replicas", 1))
            template_hash = json.dumps(document["spec"]["template"], sort_keys=True)
            template_hash = str(abs(hash(template_hash)))
            with self._lock:
                current = self.replicas.setdefault(name, [])
            for replica in list(current):  # crashed: restart in place, as the kubelet would
                if replica["pod"].proc.poll() is not None:
                    fresh = self._try_spawn(document, replica["hash"])
                    if fresh is None:
                        return
                    fresh["pod"].restarts = replica["pod"].restarts + 1
                    current[current.index(replica)] = fresh
            old = [r for r in current if r["hash"] != template_hash]
            new = [r for r in current if r["hash"] == template_hash]
            if len(new) < wanted and all(self._ready(r) for r in new):
                fresh = self._try_spawn(document, template_hash)  # surge one at a time
                if fresh is not None:
                    current.append(fresh)
                continue
            if old and all(self._ready(r) for r in new):
                victim = old[0]  # an old one goes once the new ones are ready
                current.remove(victim)
                victim["pod"].kill()
            while len(new) > wanted:
                victim = new.pop()
                current.remove(victim)
                victim["pod"].kill()

    def _try_spawn(self, document: dict, template_hash: str) -> dict | None:
        try:
            return self._spawn_replica(document, template_hash)
        except Invalid as exc:
            document.setdefault("_problems", []).append(exc.message)
            return None

    def _with_status(self, kind: str, document: dict) -> dict:
        if kind != "deployments":
            return document
        result = copy.deepcopy(document)
        with self._lock:
            replicas = list(self.replicas.get(document["metadata"]["name"], []))
        ready = sum(1 for r in replicas if self._ready(r))
        result["status"] = {"replicas": len(replicas), "readyReplicas": ready,
                            "observedGeneration": 1}
        return result

    def _pods(self, selector: str | None) -> list[dict]:
        items = []
        with self._lock:
            replicas = [r for rs in self.replicas.values() for r in rs]
        for replica in replicas:
            if not _matches(replica["labels"], selector):
                continue
            alive = replica["pod"].proc.poll() is None
            ready = self._ready(replica)
            state = {"running": {"startedAt": _now()}} if alive else {
                "waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting"}}
            items.append({"metadata": {"name": replica["pod"].name, "namespace": self.namespace,
                                       "labels": replica["labels"]},
                          "status": {"phase": "Running" if alive else "Pending",
                                     "containerStatuses": [{
                                         "name": "runner", "ready": ready, "image": "stub",
                                         "imageID": "stub", "restartCount":
                                             replica["pod"].restarts, "state": state}]}})
        return items

    def _ready_replica(self, service: dict) -> int | None:
        """A ready pod the Service selects, by its selector as Kubernetes does (not by
        name): a Service whose selector reaches another Deployment's pods is a mistake that
        would send jobs to the wrong runners, recorded in `errors`."""
        selector = (service.get("spec") or {}).get("selector") or {}
        with self._lock:
            owners = {name: [r for r in replicas if all(
                r["labels"].get(k) == v for k, v in selector.items())]
                for name, replicas in self.replicas.items()}
        owners = {name: found for name, found in owners.items() if found}
        if len(owners) > 1:
            self.errors.append(f"Service {service['metadata']['name']} selects the pods of "
                               f"several Deployments: {sorted(owners)}")
        ready = [r for found in owners.values() for r in found if self._ready(r)]
        if not ready:
            return None
        return ready[next(self._counter) % len(ready)]["port"]

    def _check_selectors(self, kind: str, document: dict) -> None:
        """As the API server: a Deployment's selector must select its pod template. And what
        Kubernetes lets through but makes controllers fight over pods: two Deployments whose
        selectors both select one pod template (refused here, recorded in `errors`)."""
        if kind != "deployments":
            return
        spec = document.get("spec") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}

        def selects(chosen: dict, pod_labels: dict) -> bool:
            return all(pod_labels.get(k) == v for k, v in chosen.items())

        name = document["metadata"].get("name")
        if not selector or not selects(selector, labels):
            self._refuse(f"Deployment {name}: selector does not match template labels")
        with self._lock:
            others = [d for n, d in self.objects["deployments"].items() if n != name]
        for other in others:
            other_spec = other["spec"]
            other_selector = (other_spec.get("selector") or {}).get("matchLabels") or {}
            other_labels = other_spec["template"]["metadata"].get("labels") or {}
            if selects(selector, other_labels) or selects(other_selector, labels):
                self._refuse(f"Deployment {name} and Deployment {other['metadata']['name']} "
                             f"select each other's pods")

    def _refuse(self, message: str) -> None:
        message = f"{request.method} {request.path}: {message}"
        self.errors.append(message)
        raise Invalid(422, message)

    # Cron workflows ---------------------------------------------------------------------------
    def _step_crons(self) -> None:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with self._lock:
            crons = list(self.objects["cronworkflows"].values())
        for cron in crons:
            spec = cron["spec"]
            if spec.get("suspend"):
                continue
            for expression in spec.get("schedules") or []:
                tick = croniter(expression, now + dt.timedelta(seconds=1)).get_prev(dt.datetime)
                created = cron["_created"]
                stamp = tick.strftime("%Y-%m-%dT%H:%M:%SZ")
                if tick > created and self.cron_fired.get(cron["metadata"]["name"]) != stamp:
                    self.fire_cron(cron["metadata"]["name"], stamp)

    def fire_cron(self, name: str, scheduled_time: str) -> dict:
        """Run the CronWorkflow's HTTP template once, as Argo's agent would."""
        cron = self._get("cronworkflows", name)
        self.cron_fired[name] = scheduled_time
        spec = copy.deepcopy(cron["spec"]["workflowSpec"])
        template = next(t for t in spec["templates"] if t["name"] == spec["entrypoint"])
        http = json.loads(json.dumps(template["http"]).replace("{{workflow.scheduledTime}}",
                                                               scheduled_time))
        headers = {}
        for header in http.get("headers") or []:
            ref = ((header.get("valueFrom") or {}).get("secretKeyRef")) or {}
            headers[header["name"]] = (self._get("secrets", ref["name"])["stringData"][ref["key"]]
                                       if ref else header["value"])
        response = requests.request(http.get("method", "GET"), http["url"], headers=headers,
                                    data=http.get("body", "").encode(),
                                    timeout=http.get("timeoutSeconds", 30))
        ok = re.fullmatch(r"response\.statusCode == (\d+)", http.get("successCondition", ""))
        succeeded = response.status_code == int(ok.group(1)) if ok else response.ok
        record = {"metadata": {"name": f"{name}-{uuid.uuid4().hex[:5]}",
                               "labels": cron["metadata"].get("labels") or {}},
                  "status": {"phase": "Succeeded" if succeeded else "Failed",
                             "message": None if succeeded else response.text[:300]},
                  "response": {"status": response.status_code, "body": response.text}}
        with self._lock:
            self.objects.setdefault("cronruns", {})[record["metadata"]["name"]] = record
        return record
