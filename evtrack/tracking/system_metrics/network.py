"""Network readings (MLflow's ``NetworkMonitor``): megabytes received and sent since the monitor started."""

from __future__ import annotations

import psutil

from evtrack.tracking.system_metrics.base import Sampler


class NetworkSampler(Sampler):
    """``network_receive_megabytes`` and ``network_transmit_megabytes``: totals since the start,
    logged as the latest reading (not averaged), as MLflow."""

    name = "network"

    def __init__(self) -> None:
        super().__init__()
        counters = psutil.net_io_counters()  # counts since boot: keep the start to log the difference
        self._received0 = counters.bytes_recv / 1e6
        self._sent0 = counters.bytes_sent / 1e6

    def sample(self) -> None:
        """One reading of the bytes received and sent since the monitor started."""
        counters = psutil.net_io_counters()
        self.record("network_receive_megabytes", counters.bytes_recv / 1e6 - self._received0)
        self.record("network_transmit_megabytes", counters.bytes_sent / 1e6 - self._sent0)

    def aggregate(self) -> dict[str, float]:
        """The latest reading of each total, unrounded."""
        return {key: values[-1] for key, values in self._readings.items() if values}
