"""``execute(job, reporter)``: one execution from inputs to the finish call.

Shared by the one-shot CLI (elastic mode) and the resident server. Safe to call from
several threads at once: everything per execution (execution id, log sink, environment
variables, working folder) is passed along or set in the calling thread's context.
"""

from __future__ import annotations

import os
import sys
import time

from . import context, envvars, invoke, logs
from .api import ApiError
from .invoke import StepError
from .job import Job, JobError

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1  # the step failed: its code raised, or returned something invalid
EXIT_BAD_JOB = 2  # the job document is unusable
EXIT_UNREPORTED = 3  # the result could not be reported to the API (result.json written)


class Scope:
    """What a call hook needs to run user code on behalf of one execution."""

    __slots__ = ("execution_id", "sink", "env", "cpu_time_s")

    def __init__(self, execution_id: str, sink, env: dict) -> None:
        self.execution_id = execution_id
        self.sink = sink
        self.env = env
        self.cpu_time_s = None  # set by the hook when it can measure it


class Outcome:
    """The finish payload, and whether the API got it."""

    __slots__ = ("payload", "exit_code", "reported", "report_error", "unsent_logs")

    def __init__(self, payload: dict, exit_code: int) -> None:
        self.payload = payload
        self.exit_code = exit_code
        self.reported = False
        self.report_error = None
        self.unsent_logs: list = []

    def as_record(self, execution_id: str) -> dict:
        """The ``result.json`` written when the API cannot be reached."""
        return {"execution_id": execution_id, "finish": self.payload,
                "report_error": self.report_error, "unsent_logs": self.unsent_logs}


def call_in_thread(func, kwargs: dict, scope: Scope):
    """Default call hook: run user code right here, with the execution's variables."""
    start = time.thread_time()
    try:
        with envvars.applied(scope, scope.env):
            return invoke.call(func, kwargs)
    finally:
        scope.cpu_time_s = time.thread_time() - start


def process_resources() -> dict:
    """CPU time and peak memory of this process and its children (elastic mode)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        t = os.times()
        return {"cpu_time_s": round(t[0] + t[1] + t[2] + t[3], 3), "peak_rss_bytes": None}
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return {"cpu_time_s": round(cpu, 3),
            "peak_rss_bytes": max(me.ru_maxrss, kids.ru_maxrss) * scale}


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def failure_payload(error_type: str, message: str, traceback: str = "",
                    resources: dict | None = None) -> dict:
    return {"status": "Failed", "outputs": {},
            "error": {"type": error_type, "message": message, "traceback": traceback},
            "resources": resources or {"cpu_time_s": None, "peak_rss_bytes": None}}


def report(outcome: Outcome, reporter) -> Outcome:
    """The finish call (retried, bounded). Records whether it went through."""
    if not getattr(reporter, "enabled", True):
        outcome.report_error = "no API URL configured"
        return outcome
    try:
        reporter.finish(outcome.payload)
        outcome.reported = True
    except ApiError as exc:
        outcome.report_error = str(exc)
        logs.diag("finish call failed: %s" % exc)
    return outcome


def execute(job: Job, reporter, func=None, call=None, sink=None, work_dir: str | None = None,
            whole_process: bool = False, report_to_api: bool = True) -> Outcome:
    """Run one execution and report it.

    ``func``: the already imported function (resident mode); else the job's module is
    imported here. ``call(func, kwargs, scope)``: how to run user code (default: in this
    thread). ``sink``: the execution's LogSink (default: a new one sending through the
    reporter). ``work_dir``: where URL inputs are downloaded (default: the working
    directory). ``whole_process``: the process runs only this execution, so report the
    process's CPU time and memory. ``report_to_api=False`` (resident mode): no finish call;
    the caller records the payload, which then carries the log lines not sent yet
    (``"logs"``), so they are recorded with the result.
    """
    if sink is None:
        sink = logs.LogSink(reporter.send_logs if reporter.enabled else None, job.execution_id)
    call = call or call_in_thread
    work_dir = work_dir or os.getcwd()
    scope = Scope(job.execution_id, sink, envvars.execution_env(
        job.execution_id, job.token, job.api_url, job.environment_variables))
    id_token = context.current_execution_id.set(job.execution_id)
    sink_token = context.current_sink.set(sink)
    logs.shipper.register(sink)
    try:
        try:
            kwargs = prepare_inputs(job, reporter, work_dir)
            if func is None:
                func = load_code_and_function(job, reporter)
            result = call(func, kwargs, scope)
            values, files = invoke.check_result(result, job.outputs, os.getcwd())
            for name, path in files.items():
                try:
                    reporter.upload_output(name, path)
                except ApiError as exc:
                    raise StepError("OutputUploadError", "upload of file output %r failed: %s"
                                    % (name, exc)) from None
            payload = {"status": "Succeeded", "outputs": values, "error": None}
            exit_code = EXIT_SUCCEEDED
        except StepError as exc:
            payload = failure_payload(exc.type, exc.message, exc.traceback)
            exit_code = EXIT_FAILED
        except JobError as exc:
            payload = failure_payload("JobError", str(exc))
            exit_code = EXIT_BAD_JOB
        except BaseException as exc:  # user code: anything, SystemExit and Ctrl-C included
            if isinstance(exc, SystemExit) and exc.code in (None, 0) and not job.outputs:
                payload = {"status": "Succeeded", "outputs": {}, "error": None}
                exit_code = EXIT_SUCCEEDED
            else:
                err = invoke.user_error(exc)
                payload = failure_payload(err.type, err.message, err.traceback)
                exit_code = EXIT_FAILED
        if payload["error"] is not None:
            # Users read the execution logs first: put the error there too.
            err = payload["error"]
            sink.add("stderr", (err["traceback"] or err["message"]).rstrip("\n"))
        if whole_process:
            payload["resources"] = process_resources()
        else:
            cpu = scope.cpu_time_s
            payload["resources"] = {"cpu_time_s": None if cpu is None else round(cpu, 3),
                                    "peak_rss_bytes": _peak_rss()}
    finally:
        context.current_sink.reset(sink_token)
        context.current_execution_id.reset(id_token)
        logs.shipper.unregister(sink)
    outcome = Outcome(payload, exit_code)
    if not report_to_api:
        # The caller takes the payload from the answer and records it with these lines.
        payload["logs"] = sink.close(send=False)
        return outcome
    # Logs before finish: once the execution is final, readers expect all of its lines.
    outcome.unsent_logs = sink.close()
    return report(outcome, reporter)


# -- inputs and code ------------------------------------------------------------------------

def _download_url(job: Job, name: str, value) -> str | None:
    """The URL to fetch for a file input, if it is one given as ``{"url"}``."""
    types = job.input_data_types
    if types is not None:
        if types.get(name) != "file":
            return None
    elif not (isinstance(value, dict) and set(value) == {"url"}):
        return None  # without declared types, exactly {"url": ...} marks a file input
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        return None  # {"path"} (already local) or null
    return value["url"]


def has_downloads(job: Job) -> bool:
    return any(_download_url(job, name, value) for name, value in job.inputs.items())


def prepare_inputs(job: Job, reporter, work_dir: str) -> dict:
    """Keyword arguments for the function; ``{"url"}`` file inputs become ``{"path"}``."""
    kwargs = dict(job.inputs)
    for name, value in job.inputs.items():
        url = _download_url(job, name, value)
        if url is None:
            continue
        folder = os.path.join(work_dir, "inputs", _safe_name(name))
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, ".download")
        try:
            suggested = reporter.download(url, tmp)
        except ApiError as exc:
            raise StepError("InputDownloadError", "file input %r could not be downloaded: %s"
                            % (name, exc)) from None
        filename = _safe_name(suggested or _url_basename(url) or name)
        path = os.path.join(folder, filename)
        os.replace(tmp, path)
        kwargs[name] = {"path": path}
    return kwargs


def _url_basename(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = path.split("://", 1)[1].partition("/")[2]
    base = path.rstrip("/").rsplit("/", 1)[-1]
    if "%" in base:
        import urllib.parse  # rare: only for escaped names

        base = urllib.parse.unquote(base)
    return base


def _safe_name(name: str) -> str:
    name = os.path.basename(name.replace("\\", "/")).strip()
    name = "".join(ch if ch.isprintable() and ch not in '<>:"|?*' else "_" for ch in name)
    return name if name not in ("", ".", "..") else "file"


def load_code_and_function(job: Job, reporter):
    code_dir = job.code_dir
    if not code_dir:
        code_dir = fetch_code(job.code_url, reporter)
    if not os.path.isdir(code_dir):
        raise JobError("code_dir %r is not a folder" % code_dir)
    return invoke.load_function(code_dir, job.function_path, job.function_name)


def fetch_code(code_url: str, reporter) -> str:
    """Download the step's .tgz and unpack it into a fresh folder outside the work dir."""
    import tarfile
    import tempfile

    folder = tempfile.mkdtemp(prefix="shipyard-code-")
    archive = os.path.join(folder, ".code.tgz")
    try:
        reporter.download(code_url, archive)
    except ApiError as exc:
        raise JobError("step code could not be downloaded: %s" % exc) from None
    target = os.path.join(folder, "code")
    try:
        with tarfile.open(archive, "r:*") as tar:
            _safe_extract(tar, target)
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise JobError("step code archive is unreadable: %s" % exc) from None
    finally:
        os.unlink(archive)
    return target


def _safe_extract(tar, target: str) -> None:
    import tarfile

    if hasattr(tarfile, "data_filter"):  # 3.12+, and 3.8.17+/3.9.17+/3.10.12+/3.11.4+
        tar.extractall(target, filter="data")  # refuses absolute paths, '..', odd links
        return
    root = os.path.realpath(target)
    for member in tar.getmembers():
        dest = os.path.realpath(os.path.join(target, member.name))
        if not (dest == root or dest.startswith(root + os.sep)) or member.issym() \
                or member.islnk() or member.isdev():
            raise ValueError("unsafe archive member %r" % member.name)
    tar.extractall(target)
