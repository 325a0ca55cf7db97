"""Serving the app with gunicorn: one worker process (it owns the runner processes and
schedules), many threads (long-polls hold theirs)."""

from __future__ import annotations

import gc
import json
import logging
import signal
import time
import uuid

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker

from . import stopwatch
from .config import Settings

log = logging.getLogger("shipyard")

# How long a stop may take: in-flight requests end, then the shutdown hook runs.
GRACEFUL_TIMEOUT_S = 10
# Of which the shutdown hook keeps this much: the worker stops waiting for requests in
# flight earlier than the master's SIGKILL, so the hook always runs.
HOOK_RESERVE_S = 3
# Of the hook's reserve, what the process's own exit (interpreter shutdown) keeps: the
# hook stops waiting for background threads this much before the reserve ends.
EXIT_RESERVE_S = 0.5
# The worker leaves this long before the master's SIGKILL, whatever threads still run.
EXIT_MARGIN_S = 0.5


class ShipyardWorker(ThreadWorker):
    """gthread, with stops that always reach the shutdown hook.

    A terminal's Ctrl-C sends SIGINT to the whole process group while the master sends the
    worker SIGQUIT: two stop handlers, the second deadlocking on the thread pool's lock held
    by the first, then a SIGKILL without the hook. So the worker ignores SIGINT (the master
    is in charge) and runs its stop handler once. A stop also releases the long-polls at
    once, instead of holding the stop for their whole hold.

    The quick stop's handler does not shut the thread pool down itself (gthread's does): it
    runs in the main thread, which it may interrupt inside `tpool.submit`, holding the
    pool's lock while a new pool thread starts (long under CPU load); taking that lock
    again deadlocked the worker until the master's SIGKILL, without the hook (an idle
    SIGINT stop took 10.4 s, reproduced with two CPU hogs). The interpreter's exit shuts
    the pool down after the hook."""

    _stopping = False

    def init_process(self) -> None:
        # This worker process only: gunicorn's answers to requests it refuses itself.
        util.write_error = _write_json_error
        super().init_process()

    def init_signals(self) -> None:
        super().init_signals()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # This process's copy of the settings: the master keeps the full grace period.
        self.cfg.set("graceful_timeout", GRACEFUL_TIMEOUT_S - HOOK_RESERVE_S)

    def handle_exit(self, sig, frame) -> None:  # SIGTERM: finish the requests in flight
        stopwatch.stop_began()
        self._release_waiters()
        super().handle_exit(sig, frame)

    def handle_quit(self, sig, frame) -> None:  # SIGQUIT (the master's quick stop)
        if self._stopping:
            return
        self._stopping = True
        stopwatch.stop_began()
        self._release_waiters()
        Worker.handle_quit(self, sig, frame)  # not ThreadWorker's: see the class's note

    def _release_waiters(self) -> None:
        services = getattr(getattr(self, "wsgi", None), "extensions", {}).get("shipyard")
        if services is not None:
            # Waiters on a resident call see `stopping` within half a second.
            services.stopping.set()
            services.events.close()


def _write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it refuses before the app sees it (a request line
    over 4094 bytes: 414, headers too large, malformed HTTP: 400), in the API's documented
    error shape instead of gunicorn's HTML page."""
    body = json.dumps({"message": mesg or reason, "name": reason.replace(" ", ""),
                       "request_id": uuid.uuid4().hex, "additional_data": None}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin1") + body)


class ShipyardServer(BaseApplication):
    def __init__(self, settings: Settings, on_ready=None):
        self.settings = settings
        self.on_ready = on_ready
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        self.cfg.set("bind", f"{s.host}:{s.port}")
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", ShipyardWorker)
        self.cfg.set("threads", s.threads)
        self.cfg.set("timeout", 0)  # long-polls and big uploads: no worker timeout
        self.cfg.set("graceful_timeout", GRACEFUL_TIMEOUT_S)
        self.cfg.set("keepalive", 75)
        self.cfg.set("accesslog", None)
        self.cfg.set("errorlog", "-")
        self.cfg.set("loglevel", "warning")
        self.cfg.set("worker_exit", _worker_exit)
        if self.on_ready:
            self.cfg.set("when_ready", lambda server: self.on_ready())

    def load(self):
        from .app import create_app, start_background_work

        app = create_app(self.settings)
        # This process serves this one app: its store and key are also the default for code
        # outside its contexts (gunicorn's hooks, third-party threads).
        app.shipyard_state.make_default()
        start_background_work(app)
        # The app's long-lived objects (modules, routes, schemas, models: some 10^5) moved
        # out of the collector's generations: each full collection traversed them all again,
        # about 7 % of a low-latency call's CPU (perf, in gc_collect_main).
        gc.collect()
        gc.freeze()
        return app


def _worker_exit(server, worker) -> None:
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("shipyard") if app else None
    if services is None:
        return
    from .app import close_app
    from .domain import executions, lifecycle

    waited = stopwatch.since_signal()
    if waited is not None and waited > stopwatch.SLOW_PHASE_S:
        log.warning("stop phase 'requests in flight' took %.2f s", waited)
    # One deadline for every wait below: on SIGTERM the hook starts as late as
    # GRACEFUL_TIMEOUT_S - HOOK_RESERVE_S, and each thread's own join timeout (5-10 s)
    # alone would outlast the master's SIGKILL.
    deadline = time.monotonic() + HOOK_RESERVE_S - EXIT_RESERVE_S
    if services.retention is not None:
        with stopwatch.phase("retention sweeper"):
            services.retention.stop(stopwatch.time_left(deadline, 10.0))
    if services.retries is not None:
        with stopwatch.phase("retry timer"):
            services.retries.stop()
    from .store import db_session
    from .store.models import Execution

    failed = 0
    if not services.orchestrator.executions_survive_restart:
        # Marked first, so the runners killed next cannot record a vaguer reason.
        with stopwatch.phase("running executions marked failed"), services.state.bound(), \
                db_session():
            for execution in Execution.select().where(Execution.status.in_(lifecycle.ACTIVE)):
                executions.mark_failed(services, execution.execution_id,
                                       executions.SERVER_STOPPED)
                failed += 1
    close_app(app, deadline)  # the orchestrator, then the background threads
    since = stopwatch.since_signal()
    log.warning("shutdown hook: %d running executions marked failed, runners stopped%s", failed,
                "" if since is None else f" ({since:.2f} s after the stop signal)")
    # The interpreter's exit then joins every thread-pool thread, with no time limit.
    began = stopwatch.began()
    stopwatch.leave_by(deadline + EXIT_RESERVE_S if began is None
                       else began + GRACEFUL_TIMEOUT_S - EXIT_MARGIN_S)
