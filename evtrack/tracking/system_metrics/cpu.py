"""CPU and memory readings (MLflow's ``CPUMonitor``): utilization, system memory used."""

from __future__ import annotations

import psutil

from evtrack.tracking.system_metrics.base import Sampler


class CpuSampler(Sampler):
    """``cpu_utilization_percentage``, ``system_memory_usage_megabytes`` and ``…_percentage``."""

    name = "cpu"

    def prime(self) -> None:
        """psutil measures CPU use between two calls of one thread: start the clock on this one."""
        psutil.cpu_percent()

    def sample(self) -> None:
        """One reading of CPU utilization (all cores) and of the system memory in use."""
        self.record("cpu_utilization_percentage", psutil.cpu_percent())
        memory = psutil.virtual_memory()
        self.record("system_memory_usage_megabytes", memory.used / 1e6)
        self.record("system_memory_usage_percentage", memory.used / memory.total * 100)
