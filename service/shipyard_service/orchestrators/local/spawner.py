"""One long-lived thread that starts every runner process (and fork server) of the embedded
orchestrator.

bubblewrap's `--die-with-parent` is a parent-death signal (PR_SET_PDEATHSIG), and Linux
sends it when the THREAD that forked the process exits, not the process. Runners were
started from request threads, the graph scheduler's threads, a finished runner's watcher:
each runner was killed as soon as the thread that started it ended. Forked from this
thread, which lives as long as the orchestrator, a runner still dies with the server
(kill -9 included: the thread goes with its process) but no sooner."""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import threading
from concurrent.futures import Future
from typing import Any

from ...stopwatch import time_left

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10


class SpawnerStopped(RuntimeError):
    """A process was to be started after the orchestrator stopped."""


class Spawner:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._stopped = False

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        """`subprocess.Popen(argv, **kwargs)`, run on the spawner's thread; its exceptions
        (OSError…) are raised here. The caller may close what it passed once this returns."""
        future: Future[subprocess.Popen] = Future()
        with self._lock:
            if self._stopped:
                raise SpawnerStopped("the orchestrator is stopping: no new runner starts")
            jobs = self._running()
            jobs.put((future, argv, kwargs))
        return future.result()

    def _running(self) -> queue.SimpleQueue:
        # Started on first use, in the process that uses it: a thread does not survive a
        # fork (gunicorn workers are forked from a master that may have built the app).
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._jobs = queue.SimpleQueue()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._serve, args=(self._jobs,),
                                            name="runner-spawner", daemon=True)
            self._thread.start()
        assert self._jobs is not None
        return self._jobs

    @staticmethod
    def _serve(jobs: queue.SimpleQueue) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            future, argv, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(subprocess.Popen(argv, **kwargs))
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)

    def stop(self, deadline: float | None = None) -> None:
        """End the thread, once the runners it started are stopped: with the sandbox, any
        runner still alive then gets its parent-death signal. Waited for until `deadline`."""
        with self._lock:
            self._stopped = True
            thread, jobs = self._thread, self._jobs
            mine = self._pid == os.getpid()
        if thread is not None and jobs is not None and mine:
            jobs.put(None)
            thread.join(time_left(deadline, STOP_TIMEOUT_S))
            if thread.is_alive():
                log.warning("the runner spawner thread did not end in time (a Popen in flight)")
