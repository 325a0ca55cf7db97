"""The Flask application factory. An app owns its state: its store, its key, its services
and its background work (started only when asked), bound in each of its contexts, so two
apps live side by side in one process (appstate.py)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, g, jsonify, request
from flask.ctx import AppContext
from werkzeug.exceptions import HTTPException

from . import __version__, crypto
from .api.openapi import SWAGGER_UI_URL
from .appstate import AppState
from .artifacts import Artifacts
from .config import Settings
from .datastore import make_datastore
from .domain.auth import TokenService
from .domain.deferred import DeferredRows
from .errors import ShipyardError
from .events import Events
from .jsontext import StrictJSONProvider
from .services import Services
from .store import database, release_connection
from .store.db import open_db

log = logging.getLogger("shipyard")


class _BoundAppContext(AppContext):
    """An app context that binds its app's store and key while it is pushed: every request
    of the app, and `with app.app_context()`."""

    def __init__(self, app: ShipyardApp) -> None:
        super().__init__(app)
        self._bindings: list = []  # one per push (a context can be pushed again)

    def push(self) -> None:
        binding = self.app.shipyard_state.bound()
        binding.__enter__()
        self._bindings.append(binding)
        super().push()

    def pop(self, *exc: BaseException | None) -> None:
        try:
            super().pop(*exc)  # teardowns first, still bound
        finally:
            self._bindings.pop().__exit__()


class ShipyardApp(Flask):
    json_provider_class = StrictJSONProvider  # request bodies: no NaN or Infinity

    def __init__(self, import_name: str, state: AppState) -> None:
        super().__init__(import_name)
        self.shipyard_state = state
        self._sync_of: dict[Callable[..., Any], Callable[..., Any]] = {}

    def app_context(self) -> AppContext:
        return _BoundAppContext(self)

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # Flask asks this of every hook and view on every request (a dozen per call, each
        # an inspect of the function's code flags); our routes and hooks are all plain
        # functions, so remember the answer per function (a bounded number: the app's).
        sync = self._sync_of.get(func)
        if sync is None:
            sync = super().ensure_sync(func)
            if len(self._sync_of) < 4096:
                self._sync_of[func] = sync
        return sync


def create_app(settings: Settings, orchestrator=None, start_background: bool = False) -> Flask:
    """Build the app on its own store and key. Nothing runs in the background until
    `start_background` (the server asks for it; in-process tests and the admin CLI reuse
    the wiring without runners, schedules or sampler). `close_app` releases it all."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = settings.load_or_create_secret()
    # the key sealing deploy keys and env-var values
    secret_box = crypto.SecretBox(crypto.load_keys(settings.data_dir, settings.encryption_key))
    state = AppState(open_db(settings.database_url), secret_box)
    app = ShipyardApp(__name__, state)
    app.config.update(
        SECRET_KEY=secret,
        API_TITLE="Shipyard",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_URL,  # npm's swagger-ui-dist, no CDN
        MAX_CONTENT_LENGTH=None,
        SHIPYARD_SETTINGS=settings,
    )
    from .bootstrap import ensure_defaults
    from .domain.projects import seal_stored_secrets

    with state.bound():
        ensure_defaults(settings)
        with database.connection_context():
            seal_stored_secrets()  # values stored in clear by versions before encryption at rest

    if orchestrator is None:
        from .orchestrators import make_orchestrator

        orchestrator = make_orchestrator(settings)
    deferred = DeferredRows()
    services = Services(
        settings=settings,
        tokens=TokenService(secret, settings.access_token_lifetime_s, deferred),
        deferred=deferred,
        artifacts=Artifacts(settings.data_dir),
        datastore=make_datastore(settings, secret),
        orchestrator=orchestrator,
        events=Events(),
        state=state,
    )
    app.extensions["shipyard"] = services

    _register_routes(app)
    _register_error_handlers(app)

    @app.before_request
    def _open_db():
        # 32 random hex digits (as uuid4().hex gave, at a third of its cost per request).
        g.request_id = request.headers.get("X-Request-Id") or secrets.token_hex(16)
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def _release_db(exc):
        release_connection()

    from .request_limits import install as install_request_limits

    install_request_limits(app, settings)  # after _open_db: errors carry the request id

    if start_background:
        start_background_work(app)
    return app


def start_background_work(app: Flask) -> None:
    """The orchestrator (builds, runners, schedules), WAL checkpoints, retention and the
    resource sampler, each thread bound to this app's store and key; `close_app` stops them."""
    from .lifecycle import start_background_work as start

    services: Services = app.extensions["shipyard"]
    with services.state.bound():
        app.extensions["shipyard_background"] = start(services)


def close_app(app: Flask, deadline: float | None = None) -> None:
    """Stop what `start_background_work` started, then release the store's connections;
    its threads are waited for until `deadline` (time.monotonic()) at most."""
    from .stopwatch import phase, time_left

    services: Services = app.extensions["shipyard"]
    with services.state.bound():
        if services.retention is not None:
            services.retention.stop(time_left(deadline, 10.0))
        if services.retries is not None:
            services.retries.stop()
        background = app.extensions.pop("shipyard_background", None)
        if background is not None:
            # the sort indexer, the orchestrator, then the sampler and checkpointer threads
            background.stop(deadline)
        else:
            with phase("orchestrator"):
                services.orchestrator.stop(deadline)  # its pools start on demand (a build)
    with phase("store closed"):
        services.state.close()


def _register_routes(app: Flask) -> None:
    from .api import (
        auth,
        datastore,
        deployments,
        endpoints,
        envvars,
        executions,
        health,
        metrics,
        pipelines,
        project_info,
        resources,
        runner,
        signed,
        steps,
    )
    from .api.converters import register_converters
    from .api.openapi import ShipyardApi, assets, register_security_schemes

    api = ShipyardApi(app)
    register_security_schemes(api)
    register_converters(app, api)
    for module in (auth, project_info, steps, pipelines, executions, datastore, envvars,
                   metrics, runner, deployments, endpoints, resources):
        api.register_blueprint(module.blp)
    from .api import projects as projects_api
    from .api import users as users_api

    api.register_blueprint(projects_api.blp)  # control API: projects, settings, environments
    api.register_blueprint(users_api.blp)  # control API for platform admins: users
    from .api import retention as retention_api

    api.register_blueprint(retention_api.blp)  # control API: environments' retention
    app.register_blueprint(signed.blp)
    app.register_blueprint(health.blp)
    app.register_blueprint(assets)  # Swagger UI's files for OPENAPI_SWAGGER_UI_PATH
    from .ui import init_ui

    init_ui(app)  # the web UI at /ui/ (session login, CSRF on its forms only)


def _error_body(status: int, name: str, message: str, additional_data=None):
    body = {
        "message": message,
        "name": name,
        "request_id": getattr(g, "request_id", None) or "NO_REQUEST_ID",
        "additional_data": additional_data,
    }
    return jsonify(body), status


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ShipyardError)
    def _shipyard_error(exc: ShipyardError):
        return _error_body(exc.status_code, exc.name, exc.message, exc.additional_data)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        data = getattr(exc, "data", None) or {}
        extra = data.get("messages") if isinstance(data, dict) else None
        name = (exc.name or "Error").replace(" ", "")
        response, status = _error_body(exc.code or 500, name, exc.description or exc.name,
                                       extra)
        # The exception's own headers, e.g. a 405's `Allow` (RFC 9110 requires it).
        for key, value in exc.get_headers():
            if key.lower() != "content-type":
                response.headers[key] = value
        return response, status

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError):
        # Only hostile input nests this deep (JSON form fields, values within values).
        from .request_limits import nesting_error

        error = nesting_error(app.config["SHIPYARD_SETTINGS"].max_json_depth)
        return _error_body(error.status_code, error.name, error.message, error.additional_data)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, ValueError) and "NUL (0x00)" in str(exc):
            # psycopg2 refuses text holding a NUL before sending it: a request carried it
            # where the JSON check does not look (a form field). SQLite keeps them.
            return _error_body(400, "BadRequest", "NUL characters are not allowed in text "
                               "(the store cannot keep them)")
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_body(500, "InternalError", "Internal server error")
