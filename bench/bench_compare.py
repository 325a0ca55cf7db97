"""The execution comparison page at scale (issue 15): 100,000 executions written straight
to the store (tests/ui/seeding.py), then the page's server answer timed over HTTP with a
logged-in session: the default view, a filter + a status, sorts by an input in the JSON,
a metric and a list metric's aggregate, and a deep page. Baseline: the environment's
home page on the same server (a UI page with no execution listing). Target < 1 s."""

from __future__ import annotations

import re
import time

import requests

from bench.common import percentile, running_server
from tests.ui.seeding import seed

EXECUTIONS = 100_000
REPEATS = 5
ENV = "/ui/projects/default/environments/dev"
VIEWS = {
    "default (newest 50)": "/compare",
    "filter pipeline + status": "/compare?pipeline=train-b&status=Failed",
    "sort by input lr": "/compare?pipeline=train-a&sort=in:lr&dir=asc",
    "sort by metric": "/compare?sort=m:accuracy",
    "sort by list metric mean": "/compare?sort=lm:loss&agg=mean",
    "page 1000 of 100-row pages": "/compare?per_page=100&page=1000",
    "tracking, page 500": "/executions?per_page=100&page=500",
}


def _session(server) -> requests.Session:
    session = requests.Session()
    login = session.get(server.url + "/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    creds = server.credentials
    answer = session.post(server.url + "/ui/login", data={
        "csrf_token": token, "email": creds["admin_email"],
        "password": creds["admin_password"], "next": ""})
    answer.raise_for_status()
    return session


def _timed(session: requests.Session, url: str) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        answer = session.get(url)
        times.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
        size = len(answer.content)
    return times, size


def main() -> None:
    with running_server() as (server, _api):
        started = time.monotonic()
        facts = seed(server.data_dir / "shipyard.db", EXECUTIONS)
        print(f"(seeded {EXECUTIONS:,} executions in {time.monotonic() - started:.1f} s: "
              f"{facts['train-a']:,} train-a with metrics, {facts['train-b']:,} train-b)")
        session = _session(server)
        base, _ = _timed(session, server.url + ENV + "/")
        print(f"baseline  environment page:                 p50 {percentile(base, 50):7.1f} ms")
        for label, path in VIEWS.items():
            times, size = _timed(session, server.url + ENV + path)
            p50 = percentile(times, 50)
            verdict = "ok" if max(times) < 1000 else "OVER 1 s"
            print(f"{label:<42} p50 {p50:7.1f} ms  max {max(times):7.1f} ms  "
                  f"{size / 1000:6.0f} kB  ratio {p50 / percentile(base, 50):5.1f}x  {verdict}")


if __name__ == "__main__":
    main()
