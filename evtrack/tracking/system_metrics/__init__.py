"""System metrics, as MLflow's: CPU, memory, disk, network and NVIDIA GPU use, logged to a run as
``system/…`` metrics by a daemon thread while the run is active.

Turn them on for one run with ``evtrack.start_run(log_system_metrics=True)``, or for every run
with ``evtrack.enable_system_metrics_logging()`` or ``EVTRACK_ENABLE_SYSTEM_METRICS_LOGGING`` /
``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``. They need psutil (``pip install 'evtrack[system-metrics]'``),
GPU metrics also ``nvidia-ml-py``; both load only when a monitor starts.

Modules: ``config`` (settings and their setters), ``monitor`` (the thread, one per run),
``base`` (the sampler interface) and one module per sampler group: ``cpu``, ``disk``,
``network``, ``gpu``.
"""

from evtrack.tracking.system_metrics.config import (
    disable_system_metrics_logging,
    enable_system_metrics_logging,
    set_system_metrics_node_id,
    set_system_metrics_samples_before_logging,
    set_system_metrics_sampling_interval,
)
from evtrack.tracking.system_metrics.monitor import SystemMetricsMonitor

__all__ = [
    "SystemMetricsMonitor",
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "set_system_metrics_node_id",
    "set_system_metrics_samples_before_logging",
    "set_system_metrics_sampling_interval",
]
