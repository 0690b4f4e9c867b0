"""Settings from the environment: evtrack's own names, and MLflow's where MLflow has one.

A notebook switched from MLflow with ``import evtrack as mlflow`` keeps the team's
``MLFLOW_*`` configuration: each setting below is read from evtrack's variable, else from
MLflow's (evtrack's own wins when both are set). docs/settings.md lists them with the
variables that only evtrack has.

======================  ==========================  ===========================================
evtrack                 MLflow                      meaning
======================  ==========================  ===========================================
EVTRACK_TRACKING_URI    MLFLOW_TRACKING_URI         the store: a directory, s3://…, evtrack:…
EVTRACK_REGISTRY_URI    MLFLOW_REGISTRY_URI         the registry's store (default: tracking)
EVTRACK_EXPERIMENT_NAME MLFLOW_EXPERIMENT_NAME      experiment of new runs, by name
EVTRACK_EXPERIMENT_ID   MLFLOW_EXPERIMENT_ID        experiment of new runs, by id
EVTRACK_RUN_ID          MLFLOW_RUN_ID               run that ``start_run()`` resumes
======================  ==========================  ===========================================

A tracking server over ``http(s)://`` (``evtrack.remote.transport``): ``EVTRACK_`` / ``MLFLOW_`` +
``TRACKING_USERNAME``, ``TRACKING_PASSWORD``, ``TRACKING_TOKEN``, ``TRACKING_INSECURE_TLS``,
``TRACKING_SERVER_CERT_PATH``, ``HTTP_REQUEST_TIMEOUT``, ``HTTP_REQUEST_MAX_RETRIES`` and
``HTTP_REQUEST_BACKOFF_FACTOR``.

System metrics (``evtrack.tracking.system_metrics.config``): ``EVTRACK_`` / ``MLFLOW_`` +
``ENABLE_SYSTEM_METRICS_LOGGING``, ``SYSTEM_METRICS_SAMPLING_INTERVAL``,
``SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING`` and ``SYSTEM_METRICS_NODE_ID``.
"""

from __future__ import annotations

import os

MLFLOW_NAMES = {
    "EVTRACK_TRACKING_URI": "MLFLOW_TRACKING_URI",
    "EVTRACK_REGISTRY_URI": "MLFLOW_REGISTRY_URI",
    "EVTRACK_EXPERIMENT_NAME": "MLFLOW_EXPERIMENT_NAME",
    "EVTRACK_EXPERIMENT_ID": "MLFLOW_EXPERIMENT_ID",
    "EVTRACK_RUN_ID": "MLFLOW_RUN_ID",
    "EVTRACK_ENABLE_SYSTEM_METRICS_LOGGING": "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING",
    "EVTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL": "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL",
    "EVTRACK_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING": "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING",
    "EVTRACK_SYSTEM_METRICS_NODE_ID": "MLFLOW_SYSTEM_METRICS_NODE_ID",
    # a tracking server over http(s):// (evtrack.remote.transport)
    "EVTRACK_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
    "EVTRACK_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD",
    "EVTRACK_TRACKING_TOKEN": "MLFLOW_TRACKING_TOKEN",
    "EVTRACK_TRACKING_INSECURE_TLS": "MLFLOW_TRACKING_INSECURE_TLS",
    "EVTRACK_TRACKING_SERVER_CERT_PATH": "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "EVTRACK_HTTP_REQUEST_TIMEOUT": "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "EVTRACK_HTTP_REQUEST_MAX_RETRIES": "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "EVTRACK_HTTP_REQUEST_BACKOFF_FACTOR": "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
}


def source_of(name: str) -> str | None:
    """The environment variable that supplies setting ``name`` (evtrack's, else MLflow's), if any."""
    if os.environ.get(name):
        return name
    alias = MLFLOW_NAMES.get(name)
    return alias if alias and os.environ.get(alias) else None


def get(name: str) -> str | None:
    """The value of setting ``name`` (an ``EVTRACK_*`` name) from the environment, or None."""
    chosen = source_of(name)
    return os.environ[chosen] if chosen else None
