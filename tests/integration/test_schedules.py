"""F10: cron ticks fire exactly once, also with two servers on one store and across a
restart; the numeric day-of-week translation for APScheduler; the catch-up policy."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from shipyard_service.domain.schedules import CATCH_UP_WINDOW_S, missed_tick
from shipyard_service.orchestrators.local.cron_trigger import cron_trigger, translate_day_of_week

from ..helpers import Api, ServerProcess, create_step_http


@pytest.mark.parametrize("field,expected", [
    ("0", "sun"), ("7", "sun"), ("1-5", "mon-fri"), ("5,0", "fri,sun"), ("*", "*"),
    ("*/2", "*/2"), ("1-5/2", "mon-fri/2"), ("5-7", "fri-sat,sun"), ("mon", "mon"),
])
def test_day_of_week_translation(field, expected):
    assert translate_day_of_week(field) == expected


def test_apscheduler_fires_on_the_cron_day():
    # 2024-01-07 is a Sunday: `0 0 * * 0` must fire on Sunday, not Monday (APScheduler #286).
    trigger = cron_trigger("0 0 * * 0")
    start = dt.datetime(2024, 1, 3, tzinfo=dt.timezone.utc)
    fire = trigger.get_next_fire_time(None, start)
    assert fire.date() == dt.date(2024, 1, 7) and fire.weekday() == 6
    weekdays = cron_trigger("30 9 * * 1-5")
    fire = weekdays.get_next_fire_time(None, dt.datetime(2024, 1, 6, tzinfo=dt.timezone.utc))
    assert fire.weekday() == 0  # Saturday -> next is Monday


@pytest.mark.parametrize("expr", [
    "0 0 1 * 1",        # the 1st of the month OR Mondays (cron), not Mondays that are the 1st
    "30 6 13 * 5",      # the 13th or Fridays
    "0 12 */10 * 0",    # every 10th day or Sundays
    "15 3 * * 1-5",     # one field restricted: as before
    "0 0 29 2 *",       # leap days only (60 of them: 240 years)
    "*/20 * * * 6,0",
])
def test_fire_times_are_the_cron_ones(expr):
    """APScheduler's fire times equal croniter's, the library validating and catching up
    schedules, over a year: day-of-week numbering and the day-of-month OR day-of-week rule."""
    from croniter import croniter

    trigger = cron_trigger(expr)
    now = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    expected = croniter(expr, now - dt.timedelta(seconds=1))
    fire = None
    for _ in range(60):
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1) if fire else now)
        assert fire == expected.get_next(dt.datetime)


def test_catch_up_policy():
    now = dt.datetime(2024, 1, 1, 12, 30, 20)
    # Down since 11:00: the latest missed hourly tick (12:00) runs once.
    assert missed_tick("0 * * * *", dt.datetime(2024, 1, 1, 11, 0), now) == dt.datetime(2024, 1, 1, 12, 0)
    # Nothing missed.
    assert missed_tick("0 * * * *", dt.datetime(2024, 1, 1, 12, 0), now) is None
    # The latest missed tick is older than the window: skipped.
    assert missed_tick("0 0 * * *", dt.datetime(2023, 12, 30), now) is None
    assert CATCH_UP_WINDOW_S == 3600


def _executions(api: Api, pipeline: str) -> list[dict]:
    return api.request("GET", f"/pipelines/{pipeline}/executions").json()


@pytest.mark.slow
def test_tick_fires_once_with_two_servers_and_after_a_restart(tmp_path):
    data = tmp_path / "data"
    first = ServerProcess(data).start()
    second = None
    try:
        api = Api(first)
        create_step_http(api, "tick", {"main.py": "def run():\n    print('tick')\n"},
                         kind="pipelines")
        r = api.request("POST", "/periodic-deployment", json={
            "pipeline_name": "tick", "name": "every-minute", "schedule": "* * * * *"})
        assert r.status_code == 201, r.text
        # A second server on the same store restores the schedule too: both will fire.
        second = ServerProcess(data).start()
        deadline = time.monotonic() + 90
        while not _executions(api, "tick"):
            assert time.monotonic() < deadline, "no tick within 90 s"
            time.sleep(1)
        time.sleep(5)  # give the other server's duplicate every chance to appear
        ticks = _executions(api, "tick")
        assert len(ticks) == 1, ticks
        # Stop the server that created it; the other one keeps the schedule going.
        first.stop()
        api = Api(second)
        deadline = time.monotonic() + 90
        while len(_executions(api, "tick")) < 2:
            assert time.monotonic() < deadline, "no second tick within 90 s"
            time.sleep(1)
        time.sleep(3)
        ticks = _executions(api, "tick")
        assert len(ticks) == 2
        starts = sorted(t["created_at"] for t in ticks)
        assert starts[0][:16] != starts[1][:16]  # two different minutes
        # Disabled deployments never fire.
        assert api.request("PATCH", "/deployments/every-minute",
                           json={"is_enabled": False}).json()["status"] == "disabled"
    finally:
        first.stop()
        if second is not None:
            second.stop()
