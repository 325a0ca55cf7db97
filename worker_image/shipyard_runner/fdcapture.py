"""Descriptor-level capture of stdout/stderr (elastic mode only).

``sys.stdout`` routers only see Python-level writes. Output of child processes
(``subprocess.run(["nvidia-smi"])``, ``os.system``) and of C/C++ extensions (TensorFlow,
CUDA warnings) is written straight to descriptors 1 and 2. In elastic mode the process
runs a single execution, so those descriptors are pointed at pipes whose reader threads
feed the execution's log sink. A resident runner cannot tell executions apart at this
level and does not use it.
"""

from __future__ import annotations

import io
import os
import threading


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
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)  # children inherit fd 1/2, hence the pipe
            os.close(write_end)
            self.saved[fd] = saved
            # Line-buffered text stream on the original descriptor: where echo and runner
            # diagnostics go, without passing through the pipe again.
            self.streams[stream] = io.open(saved, "w", encoding="utf-8", errors="replace",
                                           buffering=1, closefd=False)
            thread = threading.Thread(target=self._pump, args=(read_end, saved, stream),
                                      name="shipyard-fd-%s" % stream, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def _pump(self, read_end: int, saved: int, stream: str) -> None:
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            while True:
                data = os.read(read_end, 65536)
                if not data:
                    break
                text = decoder.decode(data)
                if text:
                    self.feed(stream, text)
                if self.echo:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(saved, view):]
        except OSError:
            pass
        finally:
            os.close(read_end)

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
