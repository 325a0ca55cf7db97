"""The wake-ups of step retries: an APScheduler date job per waiting attempt, owned by the
serving process (started with its background work, stopped with it).

The store, not this timer, says what waits: a retry is a Pending StepExecution row with a
`retry_at`, and `graph_runs.advance` (re)asks for its wake-up each time it sees one. So a
lost job costs nothing but a later start, and a restart fails what waited (recovery)."""

from __future__ import annotations

import datetime as dt
import logging

from .owned_scheduler import OwnedScheduler

log = logging.getLogger("shipyard.retries")


class RetryTimer(OwnedScheduler):
    def __init__(self, services) -> None:
        self.services = services
        # One worker: a wake-up only starts a step (the runner runs elsewhere).
        super().__init__(executors={"default": {"type": "threadpool", "max_workers": 1}},
                         job_defaults={"coalesce": True, "misfire_grace_time": None})

    def wake_at(self, execution_id: str, when: dt.datetime) -> None:
        """Advance `execution_id` at `when` (naive UTC, as the store keeps dates); one job
        per execution and time, so asking again changes nothing."""
        if not self._scheduler.running:
            return
        when = when.replace(tzinfo=dt.timezone.utc)
        self._scheduler.add_job(self._wake, "date", run_date=when, args=[execution_id],
                                id=f"{execution_id}@{when.isoformat()}", replace_existing=True)

    def _wake(self, execution_id: str) -> None:
        from .domain import graph_runs
        from .store import db_session

        try:
            # APScheduler's thread: bind this app's store and key (appstate).
            with self.services.state.bound(), db_session():
                graph_runs.advance(self.services, execution_id)
        except Exception:  # a failed wake-up must not kill the timer's thread
            log.exception("retry of execution %s failed to start", execution_id)
