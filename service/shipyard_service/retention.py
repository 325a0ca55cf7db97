"""The retention sweeper: applies environments' retention policies (domain/retention.py)
every `settings.retention_interval_s`; its pass logs how many executions it removed."""

from __future__ import annotations

from .periodic import PeriodicWork


class RetentionSweeper(PeriodicWork):
    name = "retention-sweeper"

    def __init__(self, services, interval_s: float) -> None:
        super().__init__(interval_s)
        self.services = services

    def run_once(self) -> int:
        return self.sweep_once()

    def sweep_once(self) -> int:
        from .domain import retention
        from .store import db_session
        from .store.exclusive import only_one

        with db_session(), only_one(self.name) as mine:
            return retention.sweep(self.services, should_stop=self.should_stop) if mine else 0
