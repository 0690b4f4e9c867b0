"""The module-level tracking API (``evtrack.start_run``, ``evtrack.log_metric``, …), as MLflow's.

The active-run stack is per thread; the active experiment is per process. Runs
started here are ended (FINISHED) at interpreter exit by the process that started
them — never by a forked child.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any, Literal

from evtrack import settings
from evtrack.read import backend
from evtrack.eventlog.events import now_ms
from evtrack.entities import Experiment, Metric, Param, Run, RunStatus, RunTag, ViewType
from evtrack.errors import (
    EvtrackError,
    InvalidParameterError,
    InvalidStateError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)
from evtrack.tracking.client import DEFAULT_EXPERIMENT_ID, PARENT_RUN_TAG, TrackingClient
from evtrack.tracking import context
from evtrack.tracking.system_metrics import monitor as system_metrics
from evtrack.eventlog.writer import FlushResult

RUN_ID_ENV = "EVTRACK_RUN_ID"
EXPERIMENT_NAME_ENV = "EVTRACK_EXPERIMENT_NAME"
EXPERIMENT_ID_ENV = "EVTRACK_EXPERIMENT_ID"
NOTE_TAG = "mlflow.note.content"


class ActiveRun(Run):
    """The run returned by ``start_run``; a context manager that ends it (FAILED on exception)."""

    def __init__(self, run: Run, started_pid: int, client: TrackingClient) -> None:
        super().__init__(run.info, run.data)
        self.started_pid = started_pid
        self.client = client  # logging goes to the store the run was started in

    def __enter__(self) -> "ActiveRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        status = RunStatus.FINISHED if exc_type is None else RunStatus.FAILED
        stack = _stack()
        if any(r.info.run_id == self.info.run_id for r in stack):
            while stack and stack[-1].info.run_id != self.info.run_id:
                end_run(RunStatus.FAILED if exc_type else RunStatus.FINISHED)
            end_run(status)
        return False


_local = threading.local()
_active_experiment_id: str | None = None
_last_active_run_id: str | None = None
_clients: dict[str, TrackingClient] = {}


def _stack() -> list[ActiveRun]:
    try:
        return _local.stack
    except AttributeError:
        _local.stack = []
        return _local.stack


def _client() -> TrackingClient:
    uri = backend.get_tracking_uri()
    client = _clients.get(uri)
    if client is None:
        client = _clients[uri] = TrackingClient(uri)
    return client


# -- tracking URI and experiments ----------------------------------------------


def set_tracking_uri(uri: str | os.PathLike) -> None:
    """Where runs are recorded: a directory (the default ``./evtrack-store``), ``file://``, ``s3://`` or
    ``evtrack:`` URI; a database URI (``sqlite:///mlflow.db``) is refused with what to use instead."""
    backend.set_tracking_uri(uri)


def get_tracking_uri() -> str:
    """The tracking URI in force (explicit > ``EVTRACK_TRACKING_URI`` > ``MLFLOW_TRACKING_URI`` >
    ``./evtrack-store``)."""
    return backend.get_tracking_uri()


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment active, creating it when the name is new; refuses a deleted one."""
    global _active_experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameterError("Must specify exactly one of: `experiment_id` or `experiment_name`.")
    client = _client()
    exp: Experiment | None
    if experiment_id is not None:
        try:
            exp = client.get_experiment(str(experiment_id))
        except ResourceNotFoundError:
            raise ResourceNotFoundError(f"Experiment with ID '{experiment_id}' does not exist.") from None
    else:
        assert experiment_name is not None  # exactly one of the two, checked above
        exp = client.get_experiment_by_name(experiment_name)
        if exp is None:
            try:
                client.create_experiment(experiment_name)
            except ResourceAlreadyExistsError:
                pass  # another process won the race; use its experiment
            exp = client.get_experiment_by_name(experiment_name)
            if exp is None:
                raise ResourceNotFoundError(f"Experiment {experiment_name!r} vanished while being created")
    if exp.lifecycle_stage != "active":
        raise InvalidStateError(
            f"Cannot set a deleted experiment {exp.name!r} as the active experiment. "
            "You can restore the experiment, or permanently delete the experiment to create a new one."
        )
    _active_experiment_id = exp.experiment_id
    return exp


def _resolve_experiment_id() -> str:
    if _active_experiment_id is not None:
        return _active_experiment_id
    experiment_id, experiment_name = settings.get(EXPERIMENT_ID_ENV), settings.get(EXPERIMENT_NAME_ENV)
    if experiment_id:
        return experiment_id
    if experiment_name:
        return set_experiment(experiment_name).experiment_id
    return DEFAULT_EXPERIMENT_ID


def create_experiment(name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None) -> str:
    """Create an experiment; returns its id."""
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with this id."""
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment with this name, or None."""
    return _client().get_experiment_by_name(name)


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    """All experiments matching the filter (every page)."""
    client, token = _client(), None
    out: list[Experiment] = []
    while True:
        page = client.search_experiments(view_type, max_results, filter_string, order_by, token)
        out.extend(page)
        if max_results is not None or page.token is None:
            return out
        token = page.token


def delete_experiment(experiment_id: str) -> None:
    """Mark an experiment deleted."""
    _client().delete_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    """Tag the active experiment."""
    _client().set_experiment_tag(_resolve_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    """Tag the active experiment with several tags."""
    for key, value in tags.items():
        set_experiment_tag(key, value)


# -- runs ----------------------------------------------------------------------


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
    capture_git: bool | None = None,
    capture_env: bool | None = None,
) -> ActiveRun:
    """Start a run (or resume ``run_id`` / ``$EVTRACK_RUN_ID``) and make it active in this thread.

    A new run records its git state (``capture_git``, default ``$EVTRACK_CAPTURE_GIT`` else on)
    and its Python environment (``capture_env``, default ``$EVTRACK_CAPTURE_ENV`` else on); a
    joined run records the parts it lacks. See ``evtrack.tracking.context``. ``log_system_metrics``
    (default ``$EVTRACK_ENABLE_SYSTEM_METRICS_LOGGING`` else off) samples ``system/…`` metrics until
    the run ends (``evtrack.tracking.system_metrics``).
    """
    global _last_active_run_id
    stack = _stack()
    if stack and not nested:
        raise EvtrackError(
            f"Run with UUID {stack[-1].info.run_id} is already active. To start a new run, first end "
            "the current run with evtrack.end_run(). To start a nested run, call start_run with nested=True"
        )
    if parent_run_id is not None and stack and stack[-1].info.run_id != parent_run_id:
        raise InvalidParameterError(
            f"Current run with UUID {stack[-1].info.run_id} does not match the specified parent_run_id "
            f"{parent_run_id}. To start a new nested run under the parent run with UUID {parent_run_id}, "
            "first end the current run with evtrack.end_run()."
        )
    parent = parent_run_id or (stack[-1].info.run_id if stack and nested else None)
    client = _client()
    existing = run_id or settings.get(RUN_ID_ENV)
    if existing:
        client._resume(existing)
        extra = dict(tags or {})
        if description:
            extra[NOTE_TAG] = description
        if run_name:
            client.update_run(existing, name=run_name)
        captured = context.capture(
            context.capture_enabled(capture_git, context.CAPTURE_GIT_ENV),
            context.capture_enabled(capture_env, context.CAPTURE_ENV_ENV),
            client.get_run(existing).data.tags,
        )
        extra = {**captured.tags, **extra}
        if extra:
            client.log_batch(existing, tags=[RunTag(k, v) for k, v in extra.items()])
        _store_captured(client, existing, captured.artifacts)
        run = client.get_run(existing)
    else:
        captured = context.capture(
            context.capture_enabled(capture_git, context.CAPTURE_GIT_ENV),
            context.capture_enabled(capture_env, context.CAPTURE_ENV_ENV),
        )
        all_tags = {**context.system_tags(), **captured.tags, **(tags or {})}
        if parent:
            client.get_run(parent)
            all_tags[PARENT_RUN_TAG] = parent
        if description:
            all_tags[NOTE_TAG] = description
        exp_id = str(experiment_id) if experiment_id is not None else _resolve_experiment_id()
        run = client.create_run(exp_id, tags=all_tags, run_name=run_name)
        _store_captured(client, run.info.run_id, captured.artifacts)
    active = ActiveRun(run, os.getpid(), client)
    system_metrics.start_for_run(client, active.info.run_id, log_system_metrics, resumed=bool(existing))
    stack.append(active)
    _last_active_run_id = active.info.run_id
    return active


def _store_captured(client: TrackingClient, run_id: str, files: dict[str, bytes]) -> None:
    """Upload the captured artifacts on the backend's upload thread, so start_run does not wait;
    ``flush()`` and reads wait for them. A failure is a warning, not a failed run."""
    if not files:
        return

    def upload() -> None:
        for path, data in files.items():
            try:
                client._log_bytes(run_id, data, path)
            except EvtrackError as exc:
                warnings.warn(f"evtrack: could not store {path} for run {run_id}: {exc.message}")

    client._backend.run_in_background(upload)


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the active run of this thread."""
    stack = _stack()
    if not stack:
        return
    run = stack.pop()
    system_metrics.stop_for_run(run.info.run_id)
    run.client.set_terminated(run.info.run_id, status)


def active_run() -> ActiveRun | None:
    """The active run of this thread, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the last run started in this process (fetched fresh)."""
    if active_run() is not None:
        return active_run()
    return get_run(_last_active_run_id) if _last_active_run_id else None


def get_run(run_id: str) -> Run:
    """A run by id, with params, latest metrics and tags (works before any compaction)."""
    return _client().get_run(run_id)


def delete_run(run_id: str) -> None:
    """Mark a run deleted."""
    _client().delete_run(run_id)


def _target(run_id: str | None = None) -> tuple[str, TrackingClient]:
    """The run to log to (explicit, else the active run, else a new one) and its client."""
    if run_id is not None:
        return run_id, _client()
    stack = _stack()
    run = stack[-1] if stack else start_run()
    return run.info.run_id, run.client


# -- logging -------------------------------------------------------------------


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    """Log a metric point to the active run (returns in microseconds)."""
    try:
        run = _local.stack[-1] if run_id is None else None
    except (AttributeError, IndexError):
        run = None
    if run is not None:  # the common case, kept short: a training loop calls this a lot
        run.client.log_metric(run.info.run_id, key, value, timestamp, step, synchronous)
    else:
        rid, client = _target(run_id)
        client.log_metric(rid, key, value, timestamp, step, synchronous)


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
) -> None:
    """Log several metrics at one step."""
    ts = timestamp if timestamp is not None else now_ms()
    rid, client = _target(run_id)
    client.log_batch(
        rid, metrics=[Metric(k, val, ts, step or 0) for k, val in metrics.items()], synchronous=synchronous
    )


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a parameter of the active run; returns the value."""
    rid, client = _target()
    return client.log_param(rid, key, value, synchronous)


def log_params(params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None) -> None:
    """Log several parameters."""
    rid, client = _target(run_id)
    client.log_batch(rid, params=[Param(k, val) for k, val in params.items()], synchronous=synchronous)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    """Set a tag on the active run."""
    rid, client = _target()
    client.set_tag(rid, key, value, synchronous)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> None:
    """Set several tags on the active run."""
    rid, client = _target()
    client.log_batch(rid, tags=[RunTag(k, val) for k, val in tags.items()], synchronous=synchronous)


def delete_tag(key: str) -> None:
    """Remove a tag from the active run."""
    rid, client = _target()
    client.delete_tag(rid, key)


def log_artifact(local_path: str | os.PathLike, artifact_path: str | None = None, run_id: str | None = None) -> None:
    """Upload a file into the active run's artifacts."""
    rid, client = _target(run_id)
    client.log_artifact(rid, local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike, artifact_path: str | None = None, run_id: str | None = None) -> None:
    """Upload a directory into the active run's artifacts."""
    rid, client = _target(run_id)
    client.log_artifacts(rid, local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Store text as an artifact of the active run."""
    rid, client = _target(run_id)
    client.log_text(rid, text, artifact_file)


def log_dict(dictionary: dict[str, Any], artifact_file: str, run_id: str | None = None) -> None:
    """Store a dict as a JSON or YAML artifact of the active run."""
    rid, client = _target(run_id)
    client.log_dict(rid, dictionary, artifact_file)


def log_input(
    dataset: Any, context: str | None = None, tags: dict[str, Any] | None = None, run_id: str | None = None
) -> None:
    """Record a dataset the active run uses (``evtrack.data.from_path`` / ``from_pandas`` / …),
    in a context such as ``"training"`` or ``"evaluation"``; logging it again is a no-op."""
    from evtrack.tracking.inputs import dataset_input

    item = dataset_input(dataset, context, tags)
    rid, client = _target(run_id)
    client.log_inputs(rid, [item])


def log_inputs(
    datasets: list[Any],
    contexts: list[str | None] | None = None,
    tags_list: list[dict[str, Any] | None] | None = None,
    run_id: str | None = None,
) -> None:
    """Record several datasets at once (lists of equal length, as MLflow's ``log_inputs``)."""
    from evtrack.tracking.inputs import dataset_input

    contexts = contexts if contexts is not None else [None] * len(datasets)
    tags_list = tags_list if tags_list is not None else [None] * len(datasets)
    if not len(datasets) == len(contexts) == len(tags_list):
        raise InvalidParameterError(
            "`evtrack.log_inputs` requires `datasets`, `contexts`, `tags_list` to be the same length"
        )
    items = [dataset_input(d, c, t) for d, c, t in zip(datasets, contexts, tags_list)]
    rid, client = _target(run_id)
    client.log_inputs(rid, items)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The artifact URI of the active run (or of a path inside it)."""
    rid, client = _target()
    return client.get_artifact_uri(rid, artifact_path)


def flush() -> FlushResult:
    """Send everything this process has logged to the store; reports what is not yet durable."""
    results = list(backend.flush_all().values())
    errors = [r.error for r in results if r.error]
    return FlushResult(
        all(r.durable for r in results),
        sum(r.segments_written for r in results),
        sum(r.pending_segments for r in results),
        sum(r.pending_bytes for r in results),
        errors[0] if errors else None,
    )


def _end_runs_at_exit() -> None:
    stack = _stack()
    while stack and stack[-1].started_pid == os.getpid():
        end_run(RunStatus.FINISHED)


backend.on_exit(_end_runs_at_exit)
