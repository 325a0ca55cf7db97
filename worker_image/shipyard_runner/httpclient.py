"""A small HTTP/1.1 client on raw sockets, with keep-alive per thread.

Why not ``http.client``/``urllib.request``: importing them pulls in the ``email`` package
and costs tens of milliseconds at every runner start, a large share of the per-execution
overhead budget. The runner only needs a few request shapes (JSON in/out, a streamed PUT
of a file, a streamed GET into a file), which fit here. ``ssl`` is imported only for
``https`` URLs. Proxies (``HTTP_PROXY``) are not supported.
"""

from __future__ import annotations

import socket
import threading

_USER_AGENT = "shipyard-runner"
_MAX_LINE = 65536
_MAX_HEADERS = 200
_COPY_CHUNK = 256 * 1024

_local = threading.local()  # per-thread connection pool: {(scheme, host, port): _Conn}


class HttpError(Exception):
    """Transport failure: the server could not be reached or broke the protocol."""


class Response:
    __slots__ = ("status", "reason", "headers", "body")

    def __init__(self, status: int, reason: str, headers: dict, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-cased names -> last value
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self, limit: int = 500) -> str:
        return self.body[:limit].decode("utf-8", "replace")


def split_url(url: str) -> tuple:
    """``http://h:1/p?q`` -> ("http", "h", 1, "/p?q", "h:1"). No userinfo, no IDNA."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise ValueError("unsupported URL (http or https expected): %r" % url)
    rest = rest.split("#", 1)[0]
    cut = len(rest)
    for ch in "/?":
        i = rest.find(ch)
        if i != -1 and i < cut:
            cut = i
    hostport, target = rest[:cut], rest[cut:]
    if not target.startswith("/"):
        target = "/" + target
    if hostport.startswith("["):  # IPv6 literal
        host, _, tail = hostport[1:].partition("]")
        port_s = tail[1:] if tail.startswith(":") else ""
    elif ":" in hostport:
        host, _, port_s = hostport.rpartition(":")
    else:
        host, port_s = hostport, ""
    if not host:
        raise ValueError("URL without host: %r" % url)
    port = int(port_s) if port_s else (443 if scheme == "https" else 80)
    return scheme, host, port, target, hostport


class _Conn:
    """One socket, reused while the server keeps it alive."""

    def __init__(self, scheme: str, host: str, port: int, timeout: float) -> None:
        sock = _connect(host, port, timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if scheme == "https":
            import ssl  # lazy: ~10 ms, only for TLS endpoints

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.used = 0  # requests answered on this socket

    def close(self) -> None:
        for obj in (self.rfile, self.sock):
            try:
                obj.close()
            except OSError:
                pass


def _connect(host: str, port: int, timeout: float):
    # An IPv4 literal (the usual in-cluster/loopback API address) skips getaddrinfo,
    # which costs milliseconds on a cold process.
    try:
        socket.inet_aton(host)
        literal = host.count(".") == 3
    except OSError:
        literal = False
    if not literal:
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _pool() -> dict:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


def close_connections() -> None:
    """Close this thread's kept-alive sockets."""
    pool = _pool()
    for conn in pool.values():
        conn.close()
    pool.clear()


def request(
    method: str,
    url: str,
    headers: dict | None = None,
    body: bytes | None = None,
    file=None,
    file_size: int | None = None,
    save_to=None,
    timeout: float = 30.0,
    max_redirects: int = 0,
) -> Response:
    """Send one request and read the whole answer.

    ``body`` (bytes) or ``file`` (a binary file object of ``file_size`` bytes, streamed) is
    the request body. With ``save_to`` (a binary file object) a 2xx body is streamed there
    instead of into ``Response.body``. Redirects are followed for GET only, up to
    ``max_redirects``. Raises ``HttpError`` when the server cannot be reached.
    """
    for _ in range(max_redirects + 1):
        resp = _request_once(method, url, headers, body, file, file_size, save_to, timeout)
        location = resp.headers.get("location")
        if method != "GET" or resp.status not in (301, 302, 303, 307, 308) or not location:
            return resp
        url = _join(url, location)
        # A redirect usually points at another host (object storage): drop credentials.
        headers = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
    return resp


def _join(base: str, location: str) -> str:
    if "://" in location:
        return location
    scheme, _, _, target, hostport = split_url(base)
    if location.startswith("//"):
        return scheme + ":" + location
    if location.startswith("/"):
        return "%s://%s%s" % (scheme, hostport, location)
    path = target.split("?", 1)[0]
    return "%s://%s%s%s" % (scheme, hostport, path.rsplit("/", 1)[0] + "/", location)


def _request_once(method, url, headers, body, file, file_size, save_to, timeout) -> Response:
    scheme, host, port, target, hostport = split_url(url)
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + hostport,
             "User-Agent: " + _USER_AGENT, "Accept-Encoding: identity"]
    for name, value in (headers or {}).items():
        lines.append("%s: %s" % (name, value))
    if file is not None:
        lines.append("Content-Length: %d" % file_size)
    elif body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: %d" % len(body or b""))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    file_start = file.tell() if file is not None else 0
    key = (scheme, host, port)
    pool = _pool()
    for attempt in (0, 1):
        conn = pool.pop(key, None)
        try:
            if conn is None:
                conn = _Conn(scheme, host, port, timeout)
            else:
                conn.sock.settimeout(timeout)
        except (OSError, ValueError) as exc:
            raise HttpError("cannot connect to %s:%s: %s" % (host, port, exc)) from None
        reused = conn.used > 0
        try:
            if file is not None:
                file.seek(file_start)
                conn.sock.sendall(head)
                _send_file(conn.sock, file, file_size)
            else:
                conn.sock.sendall(head + body if body else head)
            resp, keep = _read_response(conn, method, save_to)
        except _StaleConnection:
            conn.close()
            if reused and attempt == 0:
                continue  # the server closed an idle keep-alive socket: retry once, fresh
            raise HttpError("connection closed by %s:%s before an answer"
                            % (host, port)) from None
        except (OSError, ValueError) as exc:
            conn.close()
            if reused and attempt == 0 and isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                continue
            raise HttpError("%s %s failed: %s" % (method, url.split("?", 1)[0], exc)) from None
        conn.used += 1
        if keep:
            old = pool.pop(key, None)
            if old is not None:
                old.close()
            pool[key] = conn
        else:
            conn.close()
        return resp
    raise HttpError("unreachable")  # pragma: no cover - the loop always returns or raises


class _StaleConnection(Exception):
    pass


def _send_file(sock, file, size: int) -> None:
    # socket.sendfile is zero-copy for plain sockets and falls back to send() by itself
    # (SSL sockets, file objects without a descriptor).
    sent = sock.sendfile(file, count=size) if size else 0
    if sent != size:
        raise ValueError("file shorter than announced (%d of %d bytes)" % (sent, size))


def _read_response(conn: _Conn, method: str, save_to) -> tuple:
    rfile = conn.rfile
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            raise _StaleConnection()
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError("bad status line %r" % line[:100])
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = {}
        for _ in range(_MAX_HEADERS + 1):
            hline = rfile.readline(_MAX_LINE + 1)
            if hline in (b"\r\n", b"\n", b""):
                break
            name, _, value = hline.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ValueError("too many headers")
        if 100 <= status < 200:
            continue  # interim answer (100 Continue): the real one follows
        break
    conn_header = headers.get("connection", "").lower()
    keep = version == "HTTP/1.1" and "close" not in conn_header
    if version == "HTTP/1.0" and "keep-alive" in conn_header:
        keep = True
    out = save_to if (save_to is not None and 200 <= status < 300) else None
    chunks = []
    write = out.write if out is not None else chunks.append
    if method == "HEAD" or status in (204, 304):
        pass
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        _read_chunked(rfile, write)
    elif "content-length" in headers:
        _read_exact(rfile, int(headers["content-length"]), write)
    else:
        keep = False  # body ends when the server closes the connection
        while True:
            data = rfile.read1(_COPY_CHUNK) if hasattr(rfile, "read1") else rfile.read(_COPY_CHUNK)
            if not data:
                break
            write(data)
    return Response(status, reason, headers, b"".join(chunks)), keep


def _read_exact(rfile, n: int, write) -> None:
    while n > 0:
        data = rfile.read(min(n, _COPY_CHUNK))
        if not data:
            raise ValueError("connection closed in the middle of a body")
        write(data)
        n -= len(data)


def _read_chunked(rfile, write) -> None:
    while True:
        size_line = rfile.readline(_MAX_LINE + 1)
        if not size_line:
            raise ValueError("connection closed in a chunked body")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        _read_exact(rfile, size, write)
        rfile.readline(_MAX_LINE + 1)  # CRLF after each chunk
