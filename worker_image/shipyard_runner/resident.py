"""Resident mode (low-latency deployments): import once, then serve executions over HTTP.

``python -m shipyard_runner serve --port P --code-dir D --function-path F --function-name N
[--host H] [--max-parallel K] [--api-url URL] [--socket PATH]``

* The module is imported once, at start; its prints are deployment logs
  (``POST {api}/api/v1/runner/deployments/logs``, ``DeploymentToken`` from
  ``SHIPYARD_DEPLOYMENT_TOKEN``). Module globals persist between executions.
* ``POST /execute`` (a job without code fields, with the execution's ``token``) runs one
  execution and answers with its finish payload once done, with the log lines not sent
  yet (``"logs"``). The runner makes no finish call: the caller records the answer, so a
  result is recorded one way whatever carried it.
* ``def`` functions run in the thread serving the request (one per connection), at most K
  at once; ``async def`` functions on one asyncio loop thread, at most K at once. Extra
  requests wait their turn.
* ``GET /health``: 503 while the module is being imported, 200 after.
* ``--socket PATH`` (a server on the same machine): the same ``/execute`` exchange as
  length-prefixed messages on a Unix socket (``multiprocessing.connection``, authenticated
  with ``SHIPYARD_DEPLOYMENT_TOKEN``): the job in, ``{"status", "body"}`` out. It spares
  the HTTP parsing on both sides, most of a call's cost on a trivial function.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import context, core, envvars, invoke, logs
from .api import ApiReporter, DeploymentLogSender
from .job import JobError, parse_job

MAX_BODY = 16 * 1024 * 1024


def _parse_args(argv: list):
    import argparse

    p = argparse.ArgumentParser(prog="python -m shipyard_runner serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--code-dir", default=os.environ.get("SHIPYARD_CODE_DIR") or None,
                   help="the step's code (default: $SHIPYARD_CODE_DIR)")
    p.add_argument("--function-path", required=True)
    p.add_argument("--function-name", required=True)
    p.add_argument("--max-parallel", type=int, default=1,
                   help="executions at once (the rest wait); 1 unless parallelism is enabled")
    p.add_argument("--api-url", default=os.environ.get("SHIPYARD_API_URL") or None)
    p.add_argument("--drain-timeout", type=float, default=25.0,
                   help="seconds to let running executions end after SIGTERM")
    p.add_argument("--socket", default=None,
                   help="also take executions on this Unix socket (needs "
                        "SHIPYARD_DEPLOYMENT_TOKEN, the key callers authenticate with)")
    args = p.parse_args(argv)
    if not args.code_dir:
        p.error("--code-dir is required (or SHIPYARD_CODE_DIR)")
    if args.socket and not os.environ.get("SHIPYARD_DEPLOYMENT_TOKEN"):
        p.error("--socket needs SHIPYARD_DEPLOYMENT_TOKEN")
    if args.max_parallel < 1:
        p.error("--max-parallel must be at least 1")
    return args


class _Metered:
    """Await a coroutine while adding up the CPU time of its steps (this thread only).

    On a shared event loop the loop thread's CPU clock mixes all executions; timing each
    ``send()`` into the coroutine attributes CPU to the execution that used it.
    """

    def __init__(self, awaitable) -> None:
        self._it = awaitable.__await__()
        self.cpu = 0.0

    def __await__(self):
        it, value, error = self._it, None, None
        while True:
            start = time.thread_time()
            try:
                if error is None:
                    yielded = it.send(value)
                else:
                    exc, error = error, None
                    yielded = it.throw(exc)
            except StopIteration as stop:
                self.cpu += time.thread_time() - start
                return stop.value
            except BaseException:
                self.cpu += time.thread_time() - start
                raise
            self.cpu += time.thread_time() - start
            try:
                value = yield yielded
            except GeneratorExit:
                it.close()
                raise
            except BaseException as exc:  # cancellation and the like: pass it inside
                value, error = None, exc


class AsyncHost:
    """One event loop thread running every ``async def`` execution, K at a time."""

    def __init__(self, max_parallel: int) -> None:
        import asyncio

        self._asyncio = asyncio
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="shipyard-asyncio",
                                       daemon=True)
        self.thread.start()

        async def make_semaphore():  # created inside the loop: 3.8/3.9 bind it at creation
            return asyncio.Semaphore(max_parallel)

        self.semaphore = asyncio.run_coroutine_threadsafe(make_semaphore(), self.loop).result(10)

    def call(self, func, kwargs: dict, scope: core.Scope, on_start=None):
        """Call hook for core.execute: run on the loop, wait here for the result."""
        async def run():
            async with self.semaphore:
                if on_start is not None:
                    on_start()
                # A task runs in its own copy of the context: set this execution's values.
                context.current_execution_id.set(scope.execution_id)
                context.current_sink.set(scope.sink)
                meter = None
                try:
                    with envvars.applied(scope, scope.env):
                        result = func(**kwargs)
                        if invoke.is_awaitable(result):
                            meter = _Metered(result)
                            result = await meter
                        return result
                finally:
                    scope.cpu_time_s = meter.cpu if meter is not None else 0.0

        return self._asyncio.run_coroutine_threadsafe(run(), self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


class ResidentRunner:
    def __init__(self, args) -> None:
        self.args = args
        self.api_url = args.api_url
        self.ready = False
        self.func = None
        self.is_async = False
        self.slots = None  # K at once, for def functions
        self.async_host = None
        self.stats_lock = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.done = 0
        self.stop_event = threading.Event()
        token = os.environ.get("SHIPYARD_DEPLOYMENT_TOKEN")
        send = None
        if self.api_url and token:
            send = DeploymentLogSender(self.api_url, token, os.environ.get("SHIPYARD_POD_ID"))
        # Without an API the lines are only echoed: drop them instead of keeping them.
        self.deployment_sink = logs.LogSink(send or (lambda lines: None), "deployment")

    # -- lifecycle -----------------------------------------------------------------------------

    def run(self) -> int:
        context.install()
        logs.set_default_sink(self.deployment_sink)
        logs.install(echo=os.environ.get("SHIPYARD_RUNNER_ECHO", "1") != "0")
        logs.shipper.register(self.deployment_sink)
        context.current_sink.set(self.deployment_sink)
        server = self._start_server()
        if server is None:
            return 2
        listener = self._start_socket() if self.args.socket else None
        try:
            if not self._import():
                return 2
            self._install_signals()
            while not self.stop_event.wait(0.5):
                pass
            self.deployment_sink.add("stdout", "Stopping: waiting for running executions")
            server.shutdown()
            self._drain(self.args.drain_timeout)
            return 0
        finally:
            server.server_close()
            if listener is not None:
                listener.close()
            if self.async_host is not None:
                self.async_host.stop()
            self.deployment_sink.close()
            logs.uninstall()

    def _start_server(self):
        runner = self

        class Handler(_Handler):
            pass

        Handler.runner = runner
        try:
            server = ThreadingHTTPServer((self.args.host, self.args.port), Handler)
        except OSError as exc:
            logs.diag("cannot listen on %s:%s: %s" % (self.args.host, self.args.port, exc))
            self.deployment_sink.add("stderr", "Cannot listen on port %s: %s"
                                     % (self.args.port, exc))
            self.deployment_sink.close()
            return None
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.2,), name="shipyard-http",
                         daemon=True).start()
        host, port = server.server_address[:2]
        logs.diag("serving on http://%s:%s" % (host, port))
        return server

    def _start_socket(self):
        from multiprocessing.connection import Listener

        path = self.args.socket
        if os.path.exists(path):
            os.unlink(path)  # left by a runner that was killed
        listener = Listener(path, family="AF_UNIX",
                            authkey=os.environ["SHIPYARD_DEPLOYMENT_TOKEN"].encode())
        threading.Thread(target=self._accept, args=(listener,), name="shipyard-socket",
                         daemon=True).start()
        return listener

    def _accept(self, listener) -> None:
        from multiprocessing import AuthenticationError

        while not self.stop_event.is_set():
            try:
                conn = listener.accept()
            except AuthenticationError:
                logs.diag("refused a socket caller without the deployment key")
                continue
            except (OSError, EOFError):
                if self.stop_event.is_set():
                    return
                time.sleep(0.05)  # a caller that hung up mid-handshake, or out of descriptors
                continue
            threading.Thread(target=self._serve_connection, args=(conn,),
                             name="shipyard-socket-conn", daemon=True).start()

    def _serve_connection(self, conn) -> None:
        """One caller's connection: executions one after the other, each answered."""
        try:
            while True:
                try:
                    raw = conn.recv_bytes(MAX_BODY)
                except (EOFError, OSError):
                    return
                status, body = self.answer(raw)
                conn.send_bytes(json.dumps({"status": status, "body": body},
                                           separators=(",", ":")).encode("utf-8"))
        except OSError:
            return
        finally:
            conn.close()

    def answer(self, raw: bytes) -> tuple:
        """``/execute`` whatever the transport: (status, body)."""
        if not self.ready:
            return 503, {"message": "the step module is not imported yet"}
        try:
            job = parse_job(json.loads(raw or b"null"), api_url=self.api_url,
                            require_code=False)
        except (ValueError, JobError) as exc:
            return 400, {"message": "bad job: %s" % exc}
        try:
            outcome = self.execute(job)
        except Exception as exc:  # a runner bug: answer anyway, the caller decides
            logs.diag("execution %s: internal error %r" % (job.execution_id, exc))
            return 500, {"message": "runner internal error: %r" % (exc,)}
        return 200, outcome.payload

    def _import(self) -> bool:
        args, sink = self.args, self.deployment_sink
        sink.add("stdout", "Importing step module")
        sys.argv = [args.function_path]  # user code sees its own file, not our flags
        try:
            self.func = invoke.load_function(args.code_dir, args.function_path,
                                             args.function_name)
        except invoke.StepError as exc:
            sink.add("stderr", (exc.traceback or exc.message).rstrip("\n"))
            sink.add("stderr", "Step module import failed: %s" % exc.message)
            logs.diag("import failed: %s" % exc.message)
            return False
        self.is_async = invoke.is_async(self.func)
        k = args.max_parallel
        if self.is_async:
            self.async_host = AsyncHost(k)
        else:
            self.slots = threading.BoundedSemaphore(k)
        sink.add("stdout", "Step module imported successfully")
        self.ready = True
        return True

    def _install_signals(self) -> None:
        def stop(signum, frame) -> None:
            self.stop_event.set()

        for name in ("SIGTERM", "SIGINT"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), stop)

    def _drain(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.stats_lock:
                if self.running + self.waiting == 0:
                    return
            time.sleep(0.05)

    # -- executions ----------------------------------------------------------------------------

    def health(self) -> dict:
        with self.stats_lock:
            return {"status": "ready" if self.ready else "starting",
                    "function_is_async": self.is_async,
                    "max_parallel": self.args.max_parallel,
                    "running": self.running, "waiting": self.waiting, "done": self.done}

    def execute(self, job) -> core.Outcome:
        reporter = ApiReporter(job.api_url, job.token, job.execution_id)
        self.deployment_sink.add("stdout", 'Execution "%s" started successfully'
                                 % job.execution_id)
        # A folder only for inputs to download: most calls have none, and making and
        # removing one costs as much as the call itself.
        work_dir = tempfile.mkdtemp(prefix="shipyard-exec-") if core.has_downloads(job) else None
        slot = _Slot(self)
        try:
            if self.slots is not None:
                # Here, in the thread serving the request: no hand-off to another thread.
                with self.slots:
                    slot.start()
                    return core.execute(job, reporter, func=self.func, work_dir=work_dir,
                                        report_to_api=False)

            def call(func, kwargs, scope):
                return self.async_host.call(func, kwargs, scope, on_start=slot.start)

            return core.execute(job, reporter, func=self.func, call=call, work_dir=work_dir,
                                report_to_api=False)
        finally:
            if work_dir is not None:
                shutil.rmtree(work_dir, ignore_errors=True)
            slot.end()


class _Slot:
    """Counts one execution as waiting, then running, for /health and draining."""

    def __init__(self, runner: ResidentRunner) -> None:
        self.runner = runner
        self.running = False
        with runner.stats_lock:
            runner.waiting += 1

    def start(self) -> None:
        with self.runner.stats_lock:
            if not self.running:
                self.running = True
                self.runner.waiting -= 1
                self.runner.running += 1

    def end(self) -> None:
        with self.runner.stats_lock:
            if self.running:
                self.runner.running -= 1
            else:
                self.runner.waiting -= 1
            self.runner.done += 1


class _Handler(BaseHTTPRequestHandler):
    runner: ResidentRunner
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # status, headers and body leave in one write (flushed per request)
    server_version = "shipyard-runner"

    def log_message(self, *args) -> None:
        pass  # access logs would land in deployment logs

    def _send(self, status: int, obj) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/health":
            return self._send(404, {"message": "not found"})
        self._send(200 if self.runner.ready else 503, self.runner.health())

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/execute":
            return self._send(404, {"message": "not found"})
        runner = self.runner
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return self._send(400, {"message": "a JSON body with a Content-Length is needed"})
        self._send(*runner.answer(self.rfile.read(length)))


def main(argv: list) -> int:
    return ResidentRunner(_parse_args(argv)).run()
