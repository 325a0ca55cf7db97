"""GPU readings, only where a GPU is visible: `nvidia-smi` first, else NVML (pynvml)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger("shipyard")

_QUERY = ["--query-gpu=utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"]
_MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuReading:
    percent: float  # mean utilisation over the GPUs
    vram_used: int  # bytes, summed over the GPUs
    vram_total: int


def parse_nvidia_smi(text: str) -> GpuReading | None:
    """Lines of `utilization %, used MiB, total MiB`; None when nothing parses."""
    rows = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        try:
            rows.append((float(parts[0]), float(parts[1]), float(parts[2])))
        except ValueError:
            continue
    if not rows:
        return None
    return GpuReading(percent=sum(r[0] for r in rows) / len(rows),
                      vram_used=int(sum(r[1] for r in rows) * _MIB),
                      vram_total=int(sum(r[2] for r in rows) * _MIB))


class GpuProbe:
    """Decides once whether a GPU is visible; a failing tool is dropped after it fails."""

    def __init__(self) -> None:
        self._smi = shutil.which("nvidia-smi")
        self._nvml = None
        if self._smi is None:
            try:
                import pynvml  # optional: nvidia-ml-py, present only on GPU machines

                pynvml.nvmlInit()
                self._nvml = pynvml
            except Exception:  # no library, no driver or no GPU: no GPU metrics
                self._nvml = None

    @property
    def available(self) -> bool:
        return self._smi is not None or self._nvml is not None

    def read(self) -> GpuReading | None:
        if self._smi is not None:
            try:
                out = subprocess.run([self._smi, *_QUERY], capture_output=True, text=True,
                                     timeout=10, check=True).stdout
                return parse_nvidia_smi(out)
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("nvidia-smi failed, GPU metrics stop: %s", exc)
                self._smi = None
                return None
        if self._nvml is not None:
            return self._read_nvml()
        return None

    def _read_nvml(self) -> GpuReading | None:
        nvml = self._nvml
        try:
            count = nvml.nvmlDeviceGetCount()
            utils, used, total = [], 0, 0
            for index in range(count):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                utils.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                used += int(memory.used)
                total += int(memory.total)
        except Exception as exc:  # NVML errors are their own exception tree
            log.warning("NVML failed, GPU metrics stop: %s", exc)
            self._nvml = None
            return None
        if not utils:
            return None
        return GpuReading(percent=sum(utils) / len(utils), vram_used=used, vram_total=total)
