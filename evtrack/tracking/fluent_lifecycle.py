"""MLflow's top-level calls for restoring, tagging and navigating runs and experiments.

``evtrack.restore_run``, ``restore_experiment``, ``delete_experiment_tag``,
``get_parent_run``, ``is_tracking_uri_set`` and ``flush_async_logging``, with MLflow's
signatures, on the fluent API's client of the current tracking URI.
"""

from __future__ import annotations

from evtrack.entities import Run
from evtrack.eventlog.writer import FlushResult
from evtrack.read import backend
from evtrack.tracking import fluent
from evtrack.tracking.client import PARENT_RUN_TAG


def restore_run(run_id: str) -> None:
    """Bring a deleted run back."""
    fluent._client().restore_run(run_id)


def restore_experiment(experiment_id: str) -> None:
    """Bring a deleted experiment (and its runs) back."""
    fluent._client().restore_experiment(experiment_id)


def delete_experiment_tag(key: str) -> None:
    """Remove a tag from the active experiment (the one new runs go to)."""
    fluent._client().delete_experiment_tag(fluent._resolve_experiment_id(), key)


def get_parent_run(run_id: str) -> Run | None:
    """The parent of a nested run (its ``mlflow.parentRunId`` tag), or None for a top-level run."""
    parent = fluent._client().get_run(run_id).data.tags.get(PARENT_RUN_TAG)
    return fluent._client().get_run(parent) if parent else None


def is_tracking_uri_set() -> bool:
    """Whether a tracking URI was set (``set_tracking_uri``, ``EVTRACK_TRACKING_URI`` or
    ``MLFLOW_TRACKING_URI``) rather than left at the default ``./evtrack-store``."""
    return backend.is_tracking_uri_set()


def flush_async_logging() -> FlushResult:
    """MLflow's name for :func:`evtrack.flush`: every ``log_*`` call is asynchronous in evtrack, so
    this sends everything logged so far and reports what is not yet durable."""
    return fluent.flush()


def flush_artifact_async_logging() -> FlushResult:
    """MLflow's name for waiting on artifact uploads: evtrack uploads on the store's own thread, and
    :func:`evtrack.flush` waits for those uploads with the events that record them."""
    return fluent.flush()
