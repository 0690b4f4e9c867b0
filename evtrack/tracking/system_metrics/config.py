"""System-metrics settings: MLflow's environment variables (and evtrack's), and their setters.

Each setting is read when a run's monitor starts, from ``EVTRACK_*`` else ``MLFLOW_*``
(``evtrack.settings``); the setters write evtrack's variable, so child processes inherit
them, as MLflow's do.

=============================================  ========================================
variable (``EVTRACK_`` or ``MLFLOW_``)          meaning (default)
=============================================  ========================================
``…ENABLE_SYSTEM_METRICS_LOGGING``             log system metrics for every run (false)
``…SYSTEM_METRICS_SAMPLING_INTERVAL``          seconds between two samples (10)
``…SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING``     samples averaged into one logged point (1)
``…SYSTEM_METRICS_NODE_ID``                    node name in the keys: ``system/<node>/…``
=============================================  ========================================
"""

from __future__ import annotations

import logging
import os

from evtrack import settings
from evtrack.errors import InvalidParameterError

ENABLE_ENV = "EVTRACK_ENABLE_SYSTEM_METRICS_LOGGING"
SAMPLING_INTERVAL_ENV = "EVTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL"
SAMPLES_BEFORE_LOGGING_ENV = "EVTRACK_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"
NODE_ID_ENV = "EVTRACK_SYSTEM_METRICS_NODE_ID"

DEFAULT_SAMPLING_INTERVAL = 10.0
DEFAULT_SAMPLES_BEFORE_LOGGING = 1
METRIC_PREFIX = "system/"

log = logging.getLogger("evtrack.system_metrics")


def is_system_metric(key: str) -> bool:
    """Whether a metric key is a system metric (``system/…``), as MLflow's UI groups them."""
    return key.startswith(METRIC_PREFIX)


def logging_enabled(argument: bool | None) -> bool:
    """An explicit ``log_system_metrics`` wins; else the environment variable; else off.

    A value other than true/false/1/0 (any case) is a warning and counts as off.
    """
    if argument is not None:
        return bool(argument)
    raw = settings.get(ENABLE_ENV)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0"):
        log.warning(
            "evtrack: %s must be one of true, false, 1, 0 (any case), got %r: system metrics are not logged",
            settings.source_of(ENABLE_ENV),
            raw,
        )
        return False
    return value in ("true", "1")


def _number(name: str, kind: type, default: float) -> float:
    raw = settings.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        value = 0
    if value > 0:
        return value
    log.warning("evtrack: %s=%r is not a positive %s; using %s", settings.source_of(name), raw, kind.__name__, default)
    return default


def sampling_interval() -> float:
    """Seconds between two samples."""
    return float(_number(SAMPLING_INTERVAL_ENV, float, DEFAULT_SAMPLING_INTERVAL))


def samples_before_logging() -> int:
    """How many samples are averaged into each logged point."""
    return int(_number(SAMPLES_BEFORE_LOGGING_ENV, int, DEFAULT_SAMPLES_BEFORE_LOGGING))


def node_id() -> str | None:
    """The node named in the metric keys (``system/<node_id>/…``), if any."""
    return settings.get(NODE_ID_ENV)


def _set(name: str, value: str | None) -> None:
    if value is None:  # back to the default: neither evtrack's nor MLflow's variable
        os.environ.pop(name, None)
        os.environ.pop(settings.MLFLOW_NAMES[name], None)
    else:
        os.environ[name] = value


def enable_system_metrics_logging() -> None:
    """Log system metrics for every run started from now on (``start_run(log_system_metrics=False)``
    still opts a run out)."""
    _set(ENABLE_ENV, "true")


def disable_system_metrics_logging() -> None:
    """Stop logging system metrics for new runs (``start_run(log_system_metrics=True)`` still opts
    a run in)."""
    _set(ENABLE_ENV, "false")


def set_system_metrics_sampling_interval(interval: float | None) -> None:
    """Sample system metrics every ``interval`` seconds (default 10); None restores the default."""
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0):
        raise InvalidParameterError(f"The sampling interval must be a positive number of seconds, got {interval!r}")
    _set(SAMPLING_INTERVAL_ENV, None if interval is None else str(interval))


def set_system_metrics_samples_before_logging(samples: int | None) -> None:
    """Average ``samples`` samples into each logged point (default 1); None restores the default."""
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise InvalidParameterError(f"The number of samples before logging must be a positive integer, got {samples!r}")
    _set(SAMPLES_BEFORE_LOGGING_ENV, None if samples is None else str(samples))


def set_system_metrics_node_id(node_id: str | None) -> None:
    """Name this machine in the metric keys (``system/<node_id>/…``), for multi-node training;
    None removes the name."""
    _set(NODE_ID_ENV, None if node_id is None else str(node_id))
