"""Deployments (environment API): create per rule, read, update, delete, logs, tokens."""

from __future__ import annotations

from flask import g, request

from .. import jsontext
from ..domain import deployments
from ..domain.executions import UploadedFile
from ..request_limits import streamed_upload
from ..store.models import Deployment
from .common import env_blueprint, forbid_in_execution, may_see_secrets, ok, part_name, services
from .schemas import LogsQuery
from .schemas.deployments import (
    ENDPOINT_INPUTS,
    DeploymentCreate,
    DeploymentDeleted,
    DeploymentLogLine,
    DeploymentSummary,
    DeploymentUpdate,
    DeploymentView,
    EndpointToken,
    WaitQuery,
)
from .schemas.executions import ExecutionCreated, LatestExecution
from .steps import log_window

blp = env_blueprint("deployments", __name__, "", "Deployments")


def _with_token() -> bool:
    """Step code (an execution's token) never reads endpoint tokens; viewers neither."""
    return not g.principal.in_execution and may_see_secrets()


def _create(rule: str, body: dict):
    forbid_in_execution("Creating a deployment")
    deployment = deployments.create_deployment(services(), g.environment, g.principal.user_id,
                                               rule, body)
    return ok(deployments.deployment_to_dict(services(), deployment, _with_token()), 201)


@blp.route("/endpoints", methods=["POST"])
@blp.arguments(DeploymentCreate)
@blp.response(201, DeploymentView)
@blp.alt_response(409, response="CONFLICT")
def create_endpoint_deployment(body: dict):
    return _create("endpoint", body)


@blp.route("/periodic-deployment", methods=["POST"])
@blp.arguments(DeploymentCreate)
@blp.response(201, DeploymentView)
@blp.alt_response(409, response="CONFLICT")
def create_periodic_deployment(body: dict):
    return _create("periodic", body)


@blp.route("/deployments", methods=["GET"])
@blp.response(200, DeploymentSummary(many=True))
def list_deployments():
    return ok(deployments.list_deployments(g.environment))


@blp.route("/deployments/<name>", methods=["GET"])
@blp.arguments(WaitQuery, location="query")
@blp.response(200, DeploymentView)
def get_deployment(args: dict, name: str):
    svc = services()
    deployment = deployments.get_deployment(g.environment, name)
    if args["wait_for_completion"]:
        def settled() -> bool:
            row = Deployment.get_or_none(Deployment.id == deployment.id)
            if row is None:
                return True
            status, _, _ = deployments.current_status(svc, row)
            return status not in ("creation_pending", "down_retrying")

        svc.events.wait_until(f"deployment:{deployment.id}", settled, svc.settings.long_poll_s)
        deployment = deployments.get_deployment(g.environment, name)
    body = deployments.deployment_to_dict(svc, deployment, _with_token())
    if (deployment.execution_rule == "endpoint" and "endpoint_token" not in body
            and not g.principal.in_execution):
        body["endpoint_token"] = None  # calling the endpoint is running: editors and admins
    return ok(body)


@blp.route("/deployments/<name>", methods=["PATCH"])
@blp.arguments(DeploymentUpdate, required=False)
@blp.response(200, DeploymentView)
def update_deployment(body: dict, name: str):
    forbid_in_execution("Updating a deployment")
    deployment = deployments.get_deployment(g.environment, name)
    updated = deployments.update_deployment(services(), deployment, g.principal.user_id, body)
    return ok(deployments.deployment_to_dict(services(), updated, _with_token()))


@blp.route("/deployments/<name>", methods=["DELETE"])
@blp.response(200, DeploymentDeleted)
def delete_deployment(name: str):
    forbid_in_execution("Deleting a deployment")
    deployment = deployments.get_deployment(g.environment, name)
    return ok(deployments.delete_deployment(services(), deployment))


@blp.route("/deployments/<name>/logs", methods=["POST"])
@blp.arguments(LogsQuery, required=False)
@blp.response(200, DeploymentLogLine(many=True))
def deployment_logs(window: dict, name: str):
    deployment = deployments.get_deployment(g.environment, name)
    return ok(deployments.logs(deployment, *log_window(window)))


@blp.route("/deployments/<name>/executions/latest", methods=["GET"])
@blp.response(200, LatestExecution)
def latest_execution(name: str):
    deployment = deployments.get_deployment(g.environment, name)
    latest = deployments.latest_execution(g.environment, deployment)
    return ok(latest if latest is not None else {})


@blp.route("/deployments/<name>/executions", methods=["POST"])
@streamed_upload
@blp.response(200, ExecutionCreated)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.doc(**ENDPOINT_INPUTS)
def trigger_with_bearer(name: str):
    """0.74.7 clients trigger endpoint deployments with their bearer token."""
    deployment = deployments.get_deployment(g.environment, name)
    given, files = endpoint_inputs()
    execution = deployments.trigger(services(), deployment, given, files)
    return ok({"execution_id": execution.execution_id})


@blp.route("/endpoints/<name>/generate-new-token", methods=["POST"])
@blp.response(200, EndpointToken)
def generate_new_token(name: str):
    forbid_in_execution("Changing an endpoint token")
    deployment = deployments.get_deployment(g.environment, name)
    return ok({"endpoint_token": deployments.new_endpoint_token(services(), deployment)})


def endpoint_inputs() -> tuple[dict, dict]:
    """JSON object of inputs, or multipart with file parts (and JSON-encoded fields)."""
    from ..errors import BadRequest

    # The content type first: reading request.files/form builds form parsers for nothing.
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        given = {}
        for key, raw in ((part_name(k), v) for k, v in request.form.items()):
            try:
                given[key] = jsontext.loads(raw)
            except ValueError:  # text, or "NaN": the input's type check answers it
                given[key] = raw
        files = {part_name(name): UploadedFile(f.stream, f.filename)
                 for name, f in request.files.items()}
        return given, files
    if not request.get_data():
        return {}, {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The inputs must be a JSON object")
    return body, {}
