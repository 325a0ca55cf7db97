"""``python -m shipyard_runner run --job JOB.json | --execution-id ID`` and ``serve ...``.

Exit codes of ``run``: 0 succeeded, 1 the step failed (reported), 2 the job is unusable,
3 the result could not be reported to the API (then ``result.json`` is in the working
directory), 4 the runner itself crashed (traceback on stderr).
"""

from __future__ import annotations

import json
import os
import sys

USAGE = """usage:
  python -m shipyard_runner run (--job JOB.json | --execution-id ID)
  python -m shipyard_runner forkserver --socket PATH [--isolate] [--hide DIR]...
  python -m shipyard_runner serve --port P --code-dir DIR --function-path F --function-name N
                                  [--host H] [--max-parallel K] [--api-url URL]
"""


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "run":
        return run_command(argv[1:])
    if argv and argv[0] == "forkserver":
        from . import forkserver

        return forkserver.main(argv[1:])
    if argv and argv[0] == "serve":
        from . import resident

        _exit_now(resident.main(argv[1:]))
    sys.stderr.write(USAGE)
    return 0 if argv and argv[0] in ("-h", "--help", "help") else 2


def _parse_run_args(args: list) -> dict:
    # Hand-rolled: argparse would add a few ms to every execution for two flags.
    opts = {}
    it = iter(args)
    for arg in it:
        name, eq, value = arg.partition("=")
        if name in ("--job", "--execution-id"):
            if not eq:
                value = next(it, None)
            if not value:
                raise ValueError("%s needs a value" % name)
            opts[name[2:]] = value
        elif arg in ("-h", "--help"):
            raise ValueError("")
        else:
            raise ValueError("unknown argument %r" % arg)
    if ("job" in opts) == ("execution-id" in opts):
        raise ValueError("give exactly one of --job and --execution-id")
    return opts


def run_command(args: list) -> int:
    try:
        opts = _parse_run_args(args)
    except ValueError as exc:
        if str(exc):
            sys.stderr.write("error: %s\n" % exc)
        sys.stderr.write(USAGE)
        return 2
    try:
        code = _run(opts)
    except Exception:  # a runner bug: say so on stderr, the orchestrator reports it
        import traceback

        sys.__stderr__.write("shipyard_runner: internal error\n" + traceback.format_exc())
        code = 4
    _exit_now(code)
    return code  # pragma: no cover - _exit_now does not return


def _run(opts: dict) -> int:
    from . import context, core, logs
    from .api import ApiError, ApiReporter, fetch_job
    from .job import JobError, parse_job

    context.install()
    api_url = os.environ.get("SHIPYARD_API_URL") or None
    token = os.environ.get("SHIPYARD_EXECUTION_TOKEN") or None
    execution_id = opts.get("execution-id")
    data = None
    try:
        if execution_id:
            if not api_url or not token:
                raise JobError("--execution-id needs SHIPYARD_API_URL and "
                               "SHIPYARD_EXECUTION_TOKEN in the environment")
            try:
                data = fetch_job(api_url, token, execution_id)
            except ApiError as exc:
                raise JobError("could not fetch the job: %s" % exc) from None
        else:
            try:
                with open(opts["job"], "rb") as f:
                    data = json.loads(f.read())
            except (OSError, ValueError) as exc:
                raise JobError("cannot read job file %s: %s" % (opts["job"], exc)) from None
        if isinstance(data, dict) and data.get("resolved"):
            # The step took another execution's result (a re-run's reuse, or the step
            # cache): the API recorded it, nothing runs here.
            logs.diag("step result %s: nothing to run" % str(data["resolved"]).lower())
            return 0
        if isinstance(data, dict) and execution_id is None:
            execution_id = data.get("execution_id") if isinstance(
                data.get("execution_id"), str) else None
        job = parse_job(data, api_url=api_url, token=token,
                        default_code_dir=os.environ.get("SHIPYARD_CODE_DIR") or None)
    except JobError as exc:
        logs.diag("bad job: %s" % exc)
        fields = data if isinstance(data, dict) else {}
        report_url = api_url or fields.get("api_url")
        if execution_id and isinstance(report_url, str):
            reporter = ApiReporter(report_url, token or fields.get("token"), execution_id)
            core.report(core.Outcome(core.failure_payload("JobError", str(exc)), 2), reporter)
        return core.EXIT_BAD_JOB

    # One execution per process: its variables are the process's, set before the user
    # module is imported (module-level code may read them).
    from . import envvars

    os.environ.update(envvars.execution_env(job.execution_id, job.token, job.api_url,
                                            job.environment_variables))
    # User code sees the command line of its own file, not the runner's flags.
    sys.argv = [job.function_path]
    reporter = ApiReporter(job.api_url, job.token, job.execution_id)
    sink = logs.LogSink(reporter.send_logs if reporter.enabled else None, job.execution_id)
    # Lines from threads the user starts (no context) belong to this execution too.
    logs.set_default_sink(sink)
    capture = _capture_output(sink)
    try:
        outcome = core.execute(job, reporter, sink=sink, whole_process=True)
    finally:
        if capture is not None:
            capture.stop()
        logs.uninstall()
        logs.set_default_sink(None)
    if not outcome.reported:
        path = os.path.abspath("result.json")
        try:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(outcome.as_record(job.execution_id), f)
            logs.diag("result not reported (%s); written to %s" % (outcome.report_error, path))
        except OSError as exc:
            logs.diag("result not reported (%s) and %s not writable: %s"
                      % (outcome.report_error, path, exc))
        return core.EXIT_UNREPORTED
    return outcome.exit_code


def _capture_output(sink):
    """Route stdout/stderr (and, unless disabled, descriptors 1 and 2) to ``sink``."""
    from . import logs

    echo = os.environ.get("SHIPYARD_RUNNER_ECHO", "1") != "0"
    capture = None
    originals = None
    if os.environ.get("SHIPYARD_RUNNER_CAPTURE_FDS", "1") != "0":
        from .fdcapture import FdCapture

        capture = FdCapture(sink.feed, echo).start()
        sink.on_close.append(capture.stop)  # drain child-process output before the last batch
        if capture.streams:
            # Echo and diagnostics must go to the original descriptors, not into the pipes.
            originals = (capture.streams.get("stdout", sys.stdout),
                         capture.streams.get("stderr", sys.stderr))
        if "stderr" in capture.streams:
            # A crash (segfault in an extension) kills the pipe readers with the process:
            # its Python traceback goes to the real stderr, where the orchestrator looks.
            import faulthandler

            faulthandler.enable(file=capture.streams["stderr"])
    logs.install(echo=echo, originals=originals)
    return capture


def _exit_now(code: int) -> None:
    """Exit without waiting for non-daemon threads or atexit handlers of user code.

    The result is already reported; a thread the user left running must not keep the
    process (and the orchestrator) waiting, and skipping interpreter teardown saves time.
    """
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
