"""Serving the app with gunicorn: one worker process (it owns the runner processes and
schedules), many threads (long-polls hold theirs)."""

from __future__ import annotations

import logging

from gunicorn.app.base import BaseApplication

from .config import Settings

log = logging.getLogger("shipyard")


class ShipyardServer(BaseApplication):
    def __init__(self, settings: Settings, on_ready=None):
        self.settings = settings
        self.on_ready = on_ready
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        self.cfg.set("bind", f"{s.host}:{s.port}")
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", s.threads)
        self.cfg.set("timeout", 0)  # long-polls and big uploads: no worker timeout
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("keepalive", 75)
        self.cfg.set("accesslog", None)
        self.cfg.set("errorlog", "-")
        self.cfg.set("loglevel", "warning")
        self.cfg.set("worker_exit", _worker_exit)
        if self.on_ready:
            self.cfg.set("when_ready", lambda server: self.on_ready())

    def load(self):
        from .app import create_app

        return create_app(self.settings)


def _worker_exit(server, worker) -> None:
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("shipyard") if app else None
    if services is not None:
        from .domain import executions, lifecycle

        if services.retention is not None:
            services.retention.stop()
        from .store import db_session
        from .store.models import Execution

        if not services.orchestrator.executions_survive_restart:
            # Marked first, so the runners killed next cannot record a vaguer reason.
            with db_session():
                for execution in Execution.select().where(
                        Execution.status.in_(lifecycle.ACTIVE)):
                    executions.mark_failed(services, execution.execution_id,
                                           "The server stopped while this execution was running")
        services.orchestrator.stop()
