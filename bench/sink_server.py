"""A trivial data-store "sink" for measuring a client's own ceiling: it answers the API calls
of an upload and a download (sign-in, multipart start/part/end, download URL) with the least
that satisfies the clients, drops uploaded bytes, and serves one fixed file for every download
(sendfile). Whatever a client reaches against it is the most it can reach against any server.
Loopback only; used by bench_datastore."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt

BUFFER = 256 * 1024


class SinkServer:
    def __init__(self, served_file: Path):
        self.served_file = served_file
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _json(self, value: dict) -> None:
                body = json.dumps(value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _drain(self) -> None:
                remaining = int(self.headers.get("Content-Length") or 0)
                view = memoryview(bytearray(BUFFER))
                while remaining:
                    count = self.rfile.readinto(view[:min(BUFFER, remaining)])
                    if not count:
                        break
                    remaining -= count

            def do_PUT(self) -> None:  # a part: dropped
                self._drain()
                self.send_response(200)
                self.send_header("ETag", '"sink"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                self._drain()
                if path.endswith("/auth/refresh"):
                    token = jwt.encode({"exp": int(time.time()) + 3600}, "sink-" * 8, "HS256")
                    self._json({"access_token": token, "refresh_token": "sink"})
                elif path.endswith("/upload/multipart"):
                    self._json({"upload_id": "sink", "key": "sink"})
                elif path.endswith("/upload/multipart/part"):
                    self._json({"signed_url": f"{sink.url}/put", "headers": {}})
                elif path.endswith("/download"):
                    self._json({"signed_url": f"{sink.url}/get"})
                else:  # /upload/multipart/end, /information
                    self._json({"path": "sink", "size": 0,
                                "last_modified": "2026-01-01T00:00:00.000Z"})

            def do_GET(self) -> None:  # every download: the served file, whole
                size = sink.served_file.stat().st_size
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.flush()
                with open(sink.served_file, "rb") as file:
                    self.connection.sendfile(file, 0, size)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SinkServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def client_env(url: str) -> dict:
    """Environment for the official client (and ours) to talk to the sink."""
    return dict(os.environ, CRAFT_AI_ENVIRONMENT_URL=url, CRAFT_AI_SDK_TOKEN="sink",
                CRAFT_AI_CONTROL_URL=url)
