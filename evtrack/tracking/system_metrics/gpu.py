"""NVIDIA GPU readings (MLflow's ``GPUMonitor``), when ``nvidia-ml-py`` (pynvml) finds a GPU.

Per GPU ``i``: ``gpu_{i}_memory_usage_percentage``, ``gpu_{i}_memory_usage_megabytes``,
``gpu_{i}_utilization_percentage``, ``gpu_{i}_power_usage_watts`` and
``gpu_{i}_power_usage_percentage``. A reading a GPU cannot give (power on some boards) is a
warning once, and that reading is skipped from then on; the others go on.
"""

from __future__ import annotations

from typing import Any, Callable

from evtrack.tracking.system_metrics.base import Sampler
from evtrack.tracking.system_metrics.config import log


class GpuUnavailableError(RuntimeError):
    """No NVIDIA GPU can be read: pynvml is not installed, or NVML finds no device."""


class GpuSampler(Sampler):
    """Memory, utilization and power of every NVIDIA GPU NVML reports."""

    name = "gpu"

    def __init__(self) -> None:
        super().__init__()
        try:
            import pynvml
        except ImportError:
            raise GpuUnavailableError(
                "`nvidia-ml-py` is not installed; to log GPU metrics run `pip install nvidia-ml-py`"
            ) from None
        try:
            pynvml.nvmlInit()  # fails when there is no GPU or no driver
            count = pynvml.nvmlDeviceGetCount()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except pynvml.NVMLError as exc:
            raise GpuUnavailableError(f"NVML cannot read the GPUs: {exc}") from exc
        if not self.handles:
            pynvml.nvmlShutdown()
            raise GpuUnavailableError("NVML finds no GPU")
        self._nvml: Any = pynvml
        self._skipped: set[tuple[int, str]] = set()

    def _read(self, index: int, reading: str, read: Callable[[Any], None], handle: Any) -> None:
        if (index, reading) in self._skipped:
            return
        try:
            read(handle)
        except self._nvml.NVMLError as exc:
            self._skipped.add((index, reading))
            log.warning("evtrack: GPU %d cannot report its %s (%s); that reading is skipped", index, reading, exc)

    def sample(self) -> None:
        """One reading of each GPU's memory, utilization and power."""
        nvml = self._nvml
        for i, handle in enumerate(self.handles):

            def memory(h: Any, i: int = i) -> None:
                info = nvml.nvmlDeviceGetMemoryInfo(h)
                self.record(f"gpu_{i}_memory_usage_percentage", round(info.used / info.total * 100, 1))
                self.record(f"gpu_{i}_memory_usage_megabytes", info.used / 1e6)

            def utilization(h: Any, i: int = i) -> None:
                self.record(f"gpu_{i}_utilization_percentage", nvml.nvmlDeviceGetUtilizationRates(h).gpu)

            def power(h: Any, i: int = i) -> None:
                milliwatts = nvml.nvmlDeviceGetPowerUsage(h)
                limit = nvml.nvmlDeviceGetEnforcedPowerLimit(h)
                self.record(f"gpu_{i}_power_usage_watts", milliwatts / 1000)
                self.record(f"gpu_{i}_power_usage_percentage", milliwatts / limit * 100)

            self._read(i, "memory", memory, handle)
            self._read(i, "utilization", utilization, handle)
            self._read(i, "power usage", power, handle)

    def close(self) -> None:
        """Release NVML."""
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass
