"""Periodic deployments in embedded mode: APScheduler cron jobs (UTC) that report ticks.

The store, not APScheduler, is the source of truth: jobs are rebuilt from the deployments at
start, and the domain records each tick once (see ScheduleTick)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from croniter import croniter

from ...owned_scheduler import OwnedScheduler
from .cron_trigger import cron_trigger

log = logging.getLogger("shipyard.scheduler")


class Schedules(OwnedScheduler):
    def __init__(self, on_tick: Callable[[int, dt.datetime], None]):
        self.on_tick = on_tick
        super().__init__(job_defaults={"coalesce": True, "max_instances": 4,
                                       "misfire_grace_time": 30})
        self._exprs: dict[int, str] = {}

    def set(self, deployment_id: int, expr: str | None, enabled: bool) -> None:
        job_id = f"deployment-{deployment_id}"
        if not enabled or not expr:
            self.remove(deployment_id)
            return
        if self._exprs.get(deployment_id) == expr and self._scheduler.get_job(job_id):
            return
        self._exprs[deployment_id] = expr
        self._scheduler.add_job(self._fire, cron_trigger(expr), args=[deployment_id, expr],
                                id=job_id, replace_existing=True)

    def remove(self, deployment_id: int) -> None:
        self._exprs.pop(deployment_id, None)
        job = self._scheduler.get_job(f"deployment-{deployment_id}")
        if job is not None:
            job.remove()

    def has(self, deployment_id: int) -> bool:
        return self._scheduler.get_job(f"deployment-{deployment_id}") is not None

    def _fire(self, deployment_id: int, expr: str) -> None:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        # The tick this run belongs to: the latest one at or before now.
        tick = croniter(expr, now + dt.timedelta(seconds=1)).get_prev(dt.datetime)
        try:
            self.on_tick(deployment_id, tick)
        except Exception:  # a failing tick must not kill the scheduler thread
            log.exception("tick of deployment %s failed", deployment_id)
