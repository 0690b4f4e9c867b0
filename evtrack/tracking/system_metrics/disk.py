"""Disk readings (MLflow's ``DiskMonitor``): the root file system's use."""

from __future__ import annotations

import os

import psutil

from evtrack.tracking.system_metrics.base import Sampler


class DiskSampler(Sampler):
    """``disk_usage_percentage``, ``disk_usage_megabytes`` and ``disk_available_megabytes`` of ``/``."""

    name = "disk"

    def sample(self) -> None:
        """One reading of the root file system's used and free space."""
        usage = psutil.disk_usage(os.sep)
        self.record("disk_usage_percentage", usage.percent)
        self.record("disk_usage_megabytes", usage.used / 1e6)
        self.record("disk_available_megabytes", usage.free / 1e6)
