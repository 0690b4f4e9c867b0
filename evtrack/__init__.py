"""evtrack: experiment tracking on an event log in object storage, with MLflow's API.

``import evtrack`` stays light: DuckDB, pyarrow and boto3 load only when a feature
needs them.

This package is the composition root (docs/architecture.md): importing it imports the
tracking and registry features, which register their event types, state domain and URI
schemes with the core, so every process that uses any part of evtrack has them all.
"""

from evtrack.entities import (
    Experiment,
    ExperimentTag,
    FileInfo,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from evtrack.errors import (
    CommitConflictError,
    EvtrackError,
    InvalidParameterError,
    InvalidStateError,
    MlflowException,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    StoreError,
)
from evtrack.registry.entities import ModelVersion, RegisteredModel
from evtrack.registry.fluent import (
    get_registry_uri,
    register_model,
    search_model_versions,
    search_registered_models,
    set_model_version_tag,
    set_registry_uri,
)
from evtrack.client import EvtrackClient, MlflowClient
from evtrack.tracking.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_run,
    delete_tag,
    end_run,
    flush,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_input,
    log_inputs,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    search_experiments,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from evtrack.tracking.fluent_search import search_runs, sql
from evtrack.tracking.fluent_artifacts import load_table, log_figure, log_image, log_table
from evtrack.tracking.fluent_lifecycle import (
    delete_experiment_tag,
    flush_artifact_async_logging,
    flush_async_logging,
    get_parent_run,
    is_tracking_uri_set,
    restore_experiment,
    restore_run,
)
from evtrack.tracking.system_metrics import (
    disable_system_metrics_logging,
    enable_system_metrics_logging,
    set_system_metrics_node_id,
    set_system_metrics_samples_before_logging,
    set_system_metrics_sampling_interval,
)
from evtrack.eventlog.writer import FlushResult
from evtrack.integrations import autolog
from evtrack import data  # noqa: E402 - evtrack.data.from_path & co. (pandas/pyarrow load lazily)

from evtrack.version import __version__  # noqa: E402


def __getattr__(name: str):
    """``evtrack.projects``, ``models``, ``pyfunc`` and ``sklearn`` load on first use (not needed to track
    runs), and so does ``evtrack.run`` (``evtrack.projects.run``, as ``mlflow.run``)."""
    import importlib

    if name in ("projects", "models", "pyfunc", "sklearn"):
        return importlib.import_module(f"evtrack.{name}")
    if name == "run":
        return importlib.import_module("evtrack.projects").run
    raise AttributeError(f"module 'evtrack' has no attribute {name!r}")


__all__ = [name for name in dir() if not name.startswith("_")]
