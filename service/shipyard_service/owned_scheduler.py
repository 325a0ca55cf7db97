"""An APScheduler background scheduler owned by one object, started and stopped with the
serving process's background work (never left running by a stop)."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler


class OwnedScheduler:
    def __init__(self, **options) -> None:
        self._scheduler = BackgroundScheduler(timezone="UTC", **options)

    def start(self) -> None:
        if not self._scheduler.running:
            self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
