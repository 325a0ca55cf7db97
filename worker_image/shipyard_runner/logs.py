"""stdout/stderr capture: line routing per execution and batched shipping to the API.

``sys.stdout``/``sys.stderr`` are replaced by ``StreamRouter``s. Each write goes to the
``LogSink`` of the current context (``context.current_sink``), so parallel executions of a
resident runner keep their lines apart; writes from a context without a sink (a thread the
user started, module import in resident mode) go to the process default sink. A sink cuts
the text into lines, stamps them, and keeps them until a ``Shipper`` thread (every 0.3 s
or 500 lines) or the end of the execution sends them.
"""

from __future__ import annotations

import io
import sys
import threading
import time

from . import context

BATCH_LINES = 500  # lines per POST, and the count that wakes the shipper early
INTERVAL_S = 0.3
MAX_PARTIAL = 64 * 1024  # a "line" without newline is cut here (progress bars, binary dumps)
MAX_BUFFERED = 100_000  # lines kept while the API is unreachable; older ones are dropped


_diag_stream = None  # set when fd 2 is captured (fdcapture.py): the original stderr


def diag(message: str) -> None:
    """A runner diagnostic on the process's real stderr (never into execution logs)."""
    stream = _diag_stream or sys.__stderr__
    if stream is not None:
        try:
            stream.write("shipyard_runner: %s\n" % message)
            stream.flush()
        except (OSError, ValueError):
            pass


_ts_cache = (-1, "")  # (second, formatted prefix), replaced as one object: thread-safe


def timestamp(now: float | None = None) -> str:
    """``2024-05-01T10:00:00.123Z`` (UTC, milliseconds)."""
    if now is None:
        now = time.time()
    global _ts_cache
    sec = int(now)
    cached_sec, prefix = _ts_cache
    if cached_sec != sec:  # strftime once per second, not per line
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _ts_cache = (sec, prefix)
    return "%s.%03dZ" % (prefix, int((now - sec) * 1000))


def split_lines(buffer: str) -> tuple:
    """Complete lines of ``buffer`` and the unfinished rest.

    ``\\n`` and ``\\r\\n`` end a line; a lone ``\\r`` (progress bars redrawing a line) too,
    but the empty pieces it makes are dropped. A trailing ``\\r`` stays in the rest, in
    case the next write starts with ``\\n``.
    """
    if "\r\n" in buffer:
        buffer = buffer.replace("\r\n", "\n")
    parts = buffer.split("\n")
    rest = parts.pop()
    lines = []
    for part in parts:
        if "\r" in part:
            lines.extend(piece for piece in part.split("\r") if piece)
        else:
            lines.append(part)
    if "\r" in rest:
        hold = ""
        if rest.endswith("\r"):
            rest, hold = rest[:-1], "\r"
        pieces = rest.split("\r")
        rest = pieces.pop() + hold
        lines.extend(piece for piece in pieces if piece)
    while len(rest) > MAX_PARTIAL:
        lines.append(rest[:MAX_PARTIAL])
        rest = rest[MAX_PARTIAL:]
    return lines, rest


class LogSink:
    """The log lines of one execution (or of the deployment), waiting to be sent.

    ``send`` is called with a list of ``{"timestamp", "stream", "message"}`` dicts and
    raises on failure; ``None`` means lines are kept only (no API configured).
    """

    def __init__(self, send=None, name: str = "") -> None:
        self.send = send
        self.name = name
        self.closed = False
        self.dropped = 0
        self._lock = threading.Lock()  # guards buffers
        self._send_lock = threading.Lock()  # one batch in flight per sink keeps lines in order
        self._lines: list = []
        self._partial = {"stdout": "", "stderr": ""}
        self._retry_at = 0.0
        self._failures = 0
        self.on_close: list = []  # callables run first in close() (drain other producers)

    def feed(self, stream: str, text: str) -> None:
        """Text written to ``stream``; complete lines are stamped now."""
        with self._lock:
            buffer = self._partial.get(stream, "") + text
            if "\n" not in text and "\r" not in text and len(buffer) <= MAX_PARTIAL:
                self._partial[stream] = buffer
                return
            lines, self._partial[stream] = split_lines(buffer)
            if lines:
                stamp = timestamp()
                self._lines.extend(
                    {"timestamp": stamp, "stream": stream, "message": m} for m in lines)
                self._trim()
            full = len(self._lines) >= BATCH_LINES
        if full:
            shipper.wake()

    def add(self, stream: str, message: str) -> None:
        """One complete line (runner messages, tracebacks), split if it holds newlines."""
        stamp = timestamp()
        with self._lock:
            for line in message.split("\n"):
                self._lines.append({"timestamp": stamp, "stream": stream, "message": line})
            self._trim()

    def end_partials(self) -> None:
        """Unterminated text at the end of an execution becomes a line of its own."""
        with self._lock:
            stamp = timestamp()
            for stream, rest in self._partial.items():
                if rest and rest != "\r":
                    self._lines.append(
                        {"timestamp": stamp, "stream": stream, "message": rest.rstrip("\r")})
                self._partial[stream] = ""

    def pending(self) -> int:
        with self._lock:
            return len(self._lines)

    def take_all(self) -> list:
        with self._lock:
            lines, self._lines = self._lines, []
            return lines

    def _trim(self) -> None:
        excess = len(self._lines) - MAX_BUFFERED
        if excess > 0:
            del self._lines[:excess]
            self.dropped += excess

    def flush(self, force: bool = False) -> bool:
        """Send buffered lines in batches. True when nothing is left to send.

        After a failure, sending pauses (backoff up to 5 s) unless ``force``. Without a
        ``send`` the lines stay (bounded) for ``close()`` to return.
        """
        if self.send is None:
            return True
        with self._send_lock:
            while True:
                if not force and time.monotonic() < self._retry_at:
                    return False
                with self._lock:
                    batch = self._lines[:BATCH_LINES]
                    del self._lines[:BATCH_LINES]
                if not batch:
                    return True
                try:
                    self.send(batch)
                except Exception as exc:  # network, HTTP status: keep the lines, retry later
                    with self._lock:
                        self._lines[:0] = batch
                        self._trim()
                    self._failures += 1
                    self._retry_at = time.monotonic() + min(INTERVAL_S * 2 ** self._failures, 5.0)
                    if self._failures in (1, 5, 20):
                        diag("sending logs of %s failed: %s" % (self.name or "?", exc))
                    return False
                self._failures = 0
                self._retry_at = 0.0

    def close(self, deadline_s: float = 3.0, send: bool = True) -> list:
        """Final flush, retried until ``deadline_s``; returns the lines that could not go.
        ``send=False``: no final flush; the lines not sent yet are returned for the caller
        to carry (after any batch in flight, so the order holds)."""
        for callback in self.on_close:
            try:
                callback()
            except Exception as exc:
                diag("closing logs of %s: %r" % (self.name or "?", exc))
        self.end_partials()
        self.closed = True
        if not send:
            with self._send_lock:
                return self.take_all()
        end = time.monotonic() + deadline_s
        delay = 0.1
        while not self.flush(force=True):
            if time.monotonic() + delay > end:
                break
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        if self.dropped:
            diag("%d log lines of %s dropped while the API was unreachable"
                 % (self.dropped, self.name or "?"))
        return self.take_all()


class Shipper:
    """One daemon thread sending every registered sink's lines periodically."""

    def __init__(self, interval: float = INTERVAL_S) -> None:
        self.interval = interval
        self._sinks: list = []
        self._cond = threading.Condition()
        self._thread = None
        self._woken = False

    def register(self, sink: LogSink) -> None:
        with self._cond:
            if sink not in self._sinks:
                self._sinks.append(sink)
        self.start()

    def start(self) -> None:
        """Its thread, if not running yet (a fork server's runner starts it ahead)."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="shipyard-log-shipper", daemon=True)
                self._thread.start()

    def unregister(self, sink: LogSink) -> None:
        with self._cond:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._woken:
                    self._cond.wait(self.interval)
                self._woken = False
                sinks = list(self._sinks)
            for sink in sinks:
                try:
                    sink.flush()
                except Exception as exc:  # never let the shipper die
                    diag("log shipper: %r" % (exc,))


shipper = Shipper()

_default_sink = None  # lines written outside any execution context


def set_default_sink(sink: LogSink | None) -> None:
    global _default_sink
    _default_sink = sink


def _route() -> LogSink | None:
    sink = context.current_sink.get(None)
    if sink is None or sink.closed:
        return _default_sink
    return sink


class StreamRouter(io.TextIOBase):
    """Replacement for ``sys.stdout``/``sys.stderr``: routes writes to the current sink.

    With ``echo``, text is also written to the original stream (kubectl/Argo logs, the
    local orchestrator's log file); it always is when no sink is in charge.
    """

    def __init__(self, stream: str, original, echo: bool, fd: int | None = None) -> None:
        super().__init__()
        self.stream = stream
        self.original = original
        self.echo = echo
        self.fd = fd  # the captured descriptor, when fd capture is on
        self._buffer = None

    # -- what print() and logging use
    def write(self, text) -> int:
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        if not text:
            return 0
        sink = _route()
        if sink is not None:
            sink.feed(self.stream, text)
        if (self.echo or sink is None) and self.original is not None:
            try:
                self.original.write(text)
            except (OSError, ValueError, UnicodeError):
                pass
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.original is not None:
            try:
                self.original.flush()
            except (OSError, ValueError):
                pass

    # -- what libraries probe
    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "replace"

    @property
    def name(self) -> str:
        return "<%s>" % self.stream

    @property
    def line_buffering(self) -> bool:
        return True

    @property
    def buffer(self):
        if self._buffer is None:
            self._buffer = _BytesAdapter(self)
        return self._buffer

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        # faulthandler, subprocess(stdout=sys.stdout) need a descriptor: the captured one
        # if any (so a child's output is still logged), else the real one.
        if self.fd is not None:
            return self.fd
        if self.original is None:
            raise io.UnsupportedOperation("fileno")
        return self.original.fileno()

    def close(self) -> None:
        pass  # closing sys.stdout must not break later writes of other executions


class _BytesAdapter:
    """``sys.stdout.buffer``: bytes decoded as UTF-8 and routed like text."""

    def __init__(self, router: StreamRouter) -> None:
        import codecs

        self._router = router
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, data) -> int:
        self._router.write(self._decoder.decode(bytes(data)))
        return len(data)

    def flush(self) -> None:
        self._router.flush()

    def writable(self) -> bool:
        return True


_installed = None  # (original stdout, original stderr)


def install(echo: bool = True, originals: tuple | None = None) -> None:
    """Replace ``sys.stdout``/``sys.stderr`` by routers (idempotent).

    ``originals``: the streams to echo to, when not the current ones (fd capture).
    """
    global _installed, _diag_stream
    if _installed is not None:
        return
    _installed = (sys.stdout, sys.stderr)
    out, err = originals or _installed
    if originals:
        _diag_stream = err
    sys.stdout = StreamRouter("stdout", out, echo, 1 if originals else None)
    sys.stderr = StreamRouter("stderr", err, echo, 2 if originals else None)


def uninstall() -> None:
    global _installed, _diag_stream
    if _installed is None:
        return
    sys.stdout, sys.stderr = _installed
    _installed = None
    _diag_stream = None
