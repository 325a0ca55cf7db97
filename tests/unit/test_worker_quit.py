"""The worker's quick stop (SIGQUIT, what the master sends on a Ctrl-C) interrupting the
main thread inside `tpool.submit`: the handler must not take the pool's lock that thread
holds. gthread's own handler did (tpool.shutdown), and the worker hung until the master's
SIGKILL at 10 s, without the shutdown hook: the CI failure of test_clean_stop (cycle 28,
idle SIGINT, 10.56 s), reproduced here with two CPU hogs beside the test (cycle 0)."""

from __future__ import annotations

import faulthandler
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from gunicorn.config import Config
from shipyard_service import stopwatch
from shipyard_service.server import ShipyardWorker


def test_the_quick_stop_does_not_take_the_pool_lock_its_thread_holds(monkeypatch):
    monkeypatch.setattr(stopwatch, "_began", None)  # this process is not stopping after it
    worker = ShipyardWorker.__new__(ShipyardWorker)  # the handler's state only: no sockets
    worker.cfg, worker.tpool, worker.alive = Config(), ThreadPoolExecutor(2), True
    outcome: list = []

    def main_thread_in_submit() -> None:
        # Where the signal lands: ThreadPoolExecutor.submit holds this lock while it starts
        # a new pool thread (Thread.start waits for it to run).
        with worker.tpool._shutdown_lock:
            try:
                worker.handle_quit(signal.SIGQUIT, None)
            except SystemExit as exc:
                outcome.append(exc.code)

    interrupted = threading.Thread(target=main_thread_in_submit, daemon=True)
    try:
        interrupted.start()
        interrupted.join(5)
        assert outcome == [0], "the stop handler deadlocked on the pool's lock"
        assert worker.alive is False
    finally:
        faulthandler.cancel_dump_traceback_later()
    worker.tpool.shutdown(wait=False)  # (deadlocked, the pool's lock stays held: not reached)
