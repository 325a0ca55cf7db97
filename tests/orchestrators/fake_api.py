"""What an orchestrator's runners talk to, without the rest of the platform: the runner
routes of docs/runner-protocol.md (job, logs, outputs, finish, deployment logs, ticks) and
the signed artifact URLs, on a loopback port. It records what runners report and checks
their tokens, so the contract suite observes orchestrators only from the outside."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from pathlib import Path

from flask import Flask, Response, jsonify, request, send_file
from shipyard_service.domain.times import parse_iso
from shipyard_service.orchestrators.argo.urls import ARTIFACT_SALT, remote_inputs
from shipyard_service.orchestrators.base import Launch
from shipyard_service.signing import Signer
from werkzeug.serving import make_server

from ..helpers import free_port

ENV_PATH = "/environments/p/e"


class FakeRunnerApi:
    def __init__(self, settings_ref, bind: str = "127.0.0.1", public_url: str | None = None,
                 port: int | None = None):
        self.port = port or free_port()
        self.bind = bind
        self.public_url = public_url
        self.settings_ref = settings_ref  # () -> Settings, set once the harness has one
        # By run key (Launch.key): the steps of one execution share its id, not their token.
        self.launches: dict[str, Launch] = {}
        self.finished: dict[str, dict] = {}
        self.logs: dict[str, list[dict]] = {}
        self.outputs: dict[str, dict[str, bytes]] = {}
        self.deployment_logs: list[dict] = []
        self.ticks: list[tuple[int, str]] = []
        self.runner_tokens: dict[int, str] = {}
        self.on_tick = None  # (deployment_id, naive UTC datetime) -> None
        self._cond = threading.Condition()
        self.app = self._make_app()
        self._server = make_server(bind, self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.public_url or f"http://127.0.0.1:{self.port}"

    @property
    def environment_url(self) -> str:
        return self.url + ENV_PATH

    def start(self) -> FakeRunnerApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def wait(self, predicate, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))
        return True

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _make_app(self) -> Flask:
        app = Flask("fake-runner-api")
        fake = self
        runner = ENV_PATH + "/api/v1/runner"

        def launch_of(execution_id: str) -> Launch:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            launch = next((candidate for candidate in list(fake.launches.values())
                           if candidate.execution_id == execution_id
                           and candidate.token == token), None)
            if launch is None or scheme != "ExecutionToken":
                raise PermissionError(execution_id)
            return launch

        @app.errorhandler(PermissionError)
        def _denied(exc):
            return jsonify({"message": "bad token", "name": "Unauthorized"}), 401

        @app.get(runner + "/executions/<execution_id>/job")
        def job(execution_id):
            launch = launch_of(execution_id)
            return jsonify({
                "execution_id": execution_id, "api_url": fake.environment_url,
                "code_dir": None, "code_url": f"{fake.url}/code/{launch.key}.tgz",
                "function_path": launch.function_path, "function_name": launch.function_name,
                "inputs": remote_inputs(fake.settings_ref(), launch.inputs),
                "input_data_types": launch.input_types,
                "outputs": launch.outputs,
                "environment_variables": launch.environment_variables})

        @app.post(runner + "/executions/<execution_id>/logs")
        def logs(execution_id):
            key = launch_of(execution_id).key
            entries = (request.get_json(silent=True) or {}).get("logs") or []
            fake.logs.setdefault(key, []).extend(entries)
            fake._notify()
            return jsonify({"received": len(entries)})

        @app.put(runner + "/executions/<execution_id>/outputs/<name>")
        def output(execution_id, name):
            key = launch_of(execution_id).key
            fake.outputs.setdefault(key, {})[name] = request.get_data()
            return jsonify({"name": name})

        @app.post(runner + "/executions/<execution_id>/finish")
        def finish(execution_id):
            key = launch_of(execution_id).key
            if key in fake.finished:
                return jsonify({"message": "already ended", "name": "BadRequest"}), 400
            fake.finished[key] = request.get_json(silent=True) or {}
            fake._notify()
            return jsonify({"execution_id": execution_id,
                            "status": fake.finished[key].get("status")})

        @app.post(runner + "/deployments/logs")
        def deployment_logs():
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "DeploymentToken" or token not in fake.runner_tokens.values():
                return jsonify({"message": "bad token", "name": "Unauthorized"}), 401
            fake.deployment_logs.extend((request.get_json(silent=True) or {}).get("logs") or [])
            fake._notify()
            return jsonify({})

        @app.post(runner + "/deployments/<int:deployment_id>/ticks")
        def tick(deployment_id):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "DeploymentToken" or fake.runner_tokens.get(deployment_id) != token:
                return jsonify({"message": "bad token", "name": "Unauthorized"}), 401
            fire_time = (request.get_json(silent=True) or {}).get("fire_time")
            fake.ticks.append((deployment_id, fire_time))
            if fake.on_tick is not None:
                fake.on_tick(deployment_id, parse_iso(fire_time))
            fake._notify()
            return jsonify({"execution_id": None, "started": True})

        @app.get("/code/<key>.tgz")
        def code(key):
            launch = fake.launches[key]
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                tar.add(str(launch.code_dir), arcname=".")
            return Response(buffer.getvalue(), mimetype="application/octet-stream")

        @app.get("/signed/artifact")
        def artifact():
            settings = fake.settings_ref()
            claims = Signer(settings.load_or_create_secret(), ARTIFACT_SALT).verify(
                request.args.get("token", ""), settings.signed_url_lifetime_s)
            path = (Path(settings.data_dir) / claims["path"]).resolve()
            assert path.is_relative_to(Path(settings.data_dir).resolve())
            return send_file(path, mimetype="application/octet-stream")

        return app
