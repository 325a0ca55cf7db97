"""Descriptor-level capture of stdout/stderr (elastic mode only).

``sys.stdout`` routers only see Python-level writes. Output of child processes
(``subprocess.run(["nvidia-smi"])``, ``os.system``) and of C/C++ extensions (TensorFlow,
CUDA warnings) is written straight to descriptors 1 and 2. In elastic mode the process
runs a single execution, so those descriptors are pointed at pipes whose reader threads
feed the execution's log sink. A resident runner cannot tell executions apart at this
level and does not use it.

A runner forked ahead by a fork server makes its pipes and their threads while it waits
for its request (``prepare``): the execution does not wait for two threads to start.
"""

from __future__ import annotations

import io
import os
import threading

_prepared: dict = {}  # fd -> _Pipe made ahead by prepare(), taken by the next start()


class _Pipe:
    """A pipe for one descriptor and the thread reading it; what it reads goes where
    `FdCapture.start` says, set before anything can be written into it."""

    def __init__(self, stream: str) -> None:
        self.read_end, self.write_end = os.pipe()
        self.feed = None  # feed(stream, text)
        self.echo = False
        self.saved = -1  # duplicate of the original descriptor: where echo goes
        self.stream = stream
        self.thread = threading.Thread(target=self._pump, name="shipyard-fd-%s" % stream,
                                       daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            while True:
                data = os.read(self.read_end, 65536)
                if not data:
                    break
                text = decoder.decode(data)
                if text:
                    self.feed(self.stream, text)
                if self.echo:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(self.saved, view):]
        except OSError:
            pass
        finally:
            os.close(self.read_end)


def prepare() -> None:
    """Make the pipes and threads of the next capture now (nothing is captured yet)."""
    for fd, stream in ((1, "stdout"), (2, "stderr")):
        if fd not in _prepared:
            _prepared[fd] = _Pipe(stream)


class FdCapture:
    def __init__(self, feed, echo: bool) -> None:
        self.feed = feed  # feed(stream, text)
        self.echo = echo
        self.saved: dict = {}  # fd -> duplicate of the original descriptor
        self.threads: list = []
        self.streams: dict = {}  # "stdout"/"stderr" -> text stream on the original descriptor

    def start(self) -> "FdCapture":
        for fd, stream in ((1, "stdout"), (2, "stderr")):
            try:
                saved = os.dup(fd)
            except OSError:
                continue  # descriptor closed: nothing to capture
            pipe = _prepared.pop(fd, None) or _Pipe(stream)
            pipe.feed, pipe.echo, pipe.saved = self.feed, self.echo, saved
            os.dup2(pipe.write_end, fd)  # children inherit fd 1/2, hence the pipe
            os.close(pipe.write_end)
            self.saved[fd] = saved
            # Line-buffered text stream on the original descriptor: where echo and runner
            # diagnostics go, without passing through the pipe again.
            self.streams[stream] = io.open(saved, "w", encoding="utf-8", errors="replace",
                                           buffering=1, closefd=False)
            self.threads.append(pipe.thread)
        return self

    def stop(self, timeout: float = 0.5) -> None:
        """Give descriptors back and drain what is still in the pipes."""
        for stream in self.streams.values():
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        for fd, saved in self.saved.items():
            os.dup2(saved, fd)  # drops our write end: the reader sees EOF...
        for thread in self.threads:
            thread.join(timeout)  # ...unless a child process still holds it
        self.saved.clear()
        self.threads = []
