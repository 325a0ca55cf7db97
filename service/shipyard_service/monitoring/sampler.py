"""The sampler thread: one reading of this worker per period, aligned ticks, retention."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..appstate import owned_thread
from ..domain import resources
from ..store import db_session
from .gpu import GpuProbe

log = logging.getLogger("shipyard")


@dataclass(frozen=True)
class SamplerSettings:
    period_s: float = 30.0
    retention_s: float = 7 * 24 * 3600.0
    max_rows: int = 500_000
    worker: str = ""
    enabled: bool = True

    @classmethod
    def from_settings(cls, settings) -> SamplerSettings:
        return cls(
            period_s=max(0.1, settings.resource_sample_s),
            retention_s=max(1.0, settings.resource_retention_s),
            max_rows=max(1, int(settings.resource_max_rows)),
            worker=settings.worker_name or socket.gethostname() or "worker",
            enabled=settings.resource_sampling,
        )


class ResourceSampler:
    """Reads psutil (and the GPU when visible) every period into the store."""

    def __init__(self, settings: SamplerSettings, disk_path: Path):
        self.settings = settings
        self.disk_path = disk_path
        self.gpu = GpuProbe()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_net: tuple[int, int] | None = None

    def start(self) -> None:
        psutil.cpu_percent(interval=None)  # the first call only sets the reference point
        self._last_net = self._net_totals()
        # started within the app's binding: writes to that app's store
        self._thread = owned_thread(self._loop, "resource-sampler")
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        period_ms = int(self.settings.period_s * 1000)
        while not self._stop.is_set():
            now_ms = int(time.time() * 1000)
            next_tick = (now_ms // period_ms + 1) * period_ms
            if self._stop.wait((next_tick - now_ms) / 1000):
                return
            try:
                sample = self.read(next_tick)
                with db_session():
                    resources.record_sample(sample)
                    resources.prune(next_tick, self.settings.retention_s, self.settings.max_rows)
            except Exception:  # a bad reading must not end monitoring
                log.exception("resource sampling failed")

    @staticmethod
    def _net_totals() -> tuple[int, int]:
        received = sent = 0
        for name, counters in psutil.net_io_counters(pernic=True).items():
            if name == "lo" or name.startswith("lo"):
                continue  # loopback is the platform talking to itself, not network use
            received += counters.bytes_recv
            sent += counters.bytes_sent
        return received, sent

    def read(self, tick_ms: int) -> dict:
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.disk_path))
        received, sent = self._net_totals()
        last = self._last_net or (received, sent)
        self._last_net = (received, sent)
        sample = {
            "timestamp_ms": tick_ms, "worker": self.settings.worker,
            "cpu_percent": float(psutil.cpu_percent(interval=None)),
            "cpu_count": psutil.cpu_count() or 1,
            "ram_used": int(memory.total - memory.available), "ram_total": int(memory.total),
            "disk_used": int(disk.used), "disk_total": int(disk.total),
            # Counters restart when an interface resets: never report a negative flow.
            "net_in_bytes": max(0, received - last[0]), "net_out_bytes": max(0, sent - last[1]),
        }
        gpu = self.gpu.read() if self.gpu.available else None
        if gpu is not None:
            sample.update(gpu_percent=gpu.percent, vram_used=gpu.vram_used,
                          vram_total=gpu.vram_total)
        return sample


def start_sampler(settings) -> ResourceSampler | None:
    """The sampler of `settings` (config.Settings), started; its owner stops it."""
    sampler_settings = SamplerSettings.from_settings(settings)
    if not sampler_settings.enabled:
        return None
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    sampler = ResourceSampler(sampler_settings, data_dir)
    sampler.start()
    return sampler
