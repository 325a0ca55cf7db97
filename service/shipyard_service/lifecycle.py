"""Binding the orchestrator's reports to the domain, and start-up recovery."""

from __future__ import annotations

import logging

from .domain import deployments, executions, graph_runs, steps
from .retention import RetentionSweeper
from .services import Services
from .sortindexer import SortIndexer
from .stopwatch import phase, time_left
from .store import db_session
from .store.db import Checkpointer

log = logging.getLogger("shipyard")


class DomainCallbacks:
    """What the orchestrator reports, written to the store (from its own threads)."""

    def __init__(self, services: Services):
        self.services = services

    def build_log(self, step_id: int, message: str) -> None:
        with db_session():
            steps.record_build_log(step_id, message)

    def build_done(self, step_id: int, env_key: str | None, error: str | None) -> None:
        with db_session():
            steps.record_build_done(step_id, env_key, error)
        self.services.events.notify(f"step:{step_id}")

    # A run key names an execution, or one step of it (graph_runs.run_key).
    def execution_started(self, run_key: str, pid: int | None,
                          pid_started_at: float | None = None) -> None:
        execution_id, step_name, attempt = graph_runs.split_run_key(run_key)
        with db_session():
            if step_name is None:
                executions.mark_running(self.services, execution_id, pid, pid_started_at)
            else:
                graph_runs.step_started(execution_id, step_name, pid, pid_started_at, attempt)

    def execution_exited(self, run_key: str, return_code: int, detail: str) -> None:
        execution_id, step_name, attempt = graph_runs.split_run_key(run_key)
        with db_session():
            if step_name is None:
                executions.runner_exited(self.services, execution_id, return_code, detail)
            else:
                graph_runs.step_exited(self.services, execution_id, step_name, return_code,
                                       detail, attempt)

    def schedule_fired(self, deployment_id: int, fire_time) -> None:
        with db_session():
            deployments.schedule_fired(self.services, deployment_id, fire_time)

    def deployment_state_changed(self, deployment_id: int) -> None:
        self.services.events.notify(f"deployment:{deployment_id}")

    def deployment_log(self, deployment_id: int, pod_id: str, stream: str, message: str) -> None:
        with db_session():
            deployments.record_log(deployment_id, stream, message, pod_id=pod_id)


class BackgroundWork:
    """Owner of the app's background threads (orchestrator, WAL checkpoints, resource
    sampler, sort indexer): started with the app, stopped by the server's shutdown hook."""

    def __init__(self, services: Services, checkpointer: Checkpointer, sampler,
                 sort_indexer: SortIndexer) -> None:
        self.services = services
        self.checkpointer = checkpointer
        self.sampler = sampler
        self.sort_indexer = sort_indexer

    def stop(self, deadline: float | None = None) -> None:
        """Each thread is waited for until `deadline` (time.monotonic()) at most: one
        stuck in a pass (a SQLite write waiting its busy_timeout, 10 s) must not hold the
        worker's exit past the master's SIGKILL. They are daemons: they end with it."""
        with phase("sort indexer"):
            self.sort_indexer.stop(time_left(deadline, 10.0))
        with phase("orchestrator"):
            self.services.orchestrator.stop(deadline)
        if self.sampler is not None:
            with phase("resource sampler"):
                self.sampler.stop(time_left(deadline, 5.0))
        with phase("checkpointer"):
            self.checkpointer.stop(time_left(deadline, 5.0))


def start_background_work(services: Services) -> BackgroundWork:
    """Called within the app's binding (app.start_background_work): the threads started
    here keep it."""
    # Reports come from the orchestrator's own threads: each runs within the app's binding.
    services.orchestrator.bind(services.state.calls(DomainCallbacks(services)))
    with db_session():
        failed = executions.recover_after_restart(services)
        rebuilt = steps.rebuild_pending(services)
    if failed or rebuilt:
        log.warning("recovery: %d executions marked failed, %d step builds restarted", failed, rebuilt)
    checkpointer = Checkpointer()
    checkpointer.start()
    services.retention = RetentionSweeper(services, services.settings.retention_interval_s)
    services.retention.start()
    from .retries import RetryTimer

    services.retries = RetryTimer(services)
    services.retries.start()
    with db_session():
        graph_runs.resume_retries(services)
    services.orchestrator.start()
    with db_session():
        deployments.restore_all(services)
    # Resource monitoring (F17): this process samples the machine it runs on as one worker.
    from .monitoring import start_sampler

    sort_indexer = SortIndexer(services.settings.sort_index_interval_s)
    sort_indexer.start()
    return BackgroundWork(services, checkpointer, start_sampler(services.settings), sort_indexer)
