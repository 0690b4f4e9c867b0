"""The module-level rich-artifact API, as MLflow's: ``log_figure``, ``log_image``, ``log_table``,
``load_table`` (the files and tags are described in ``evtrack.tracking.rich_artifacts``)."""

from __future__ import annotations

from typing import Any

from evtrack.tracking import fluent


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None) -> None:
    """Save a matplotlib or plotly figure as an artifact of the active run (e.g. ``"plots/roc.png"``;
    a plotly figure as ``.html``, or as an image when kaleido is installed)."""
    run_id, client = fluent._target()
    client.log_figure(run_id, figure, artifact_file, save_kwargs=save_kwargs)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = False,
) -> None:
    """Save a numpy array or PIL image to the active run: at ``artifact_file``, or under ``key``
    at ``step`` (MLflow's ``images/`` files with a thumbnail, shown as an image series)."""
    run_id, client = fluent._target()
    client.log_image(run_id, image, artifact_file, key, step, timestamp, synchronous)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Save a dict or DataFrame as a table (``.json`` in MLflow's layout, or ``.parquet``) of the
    active run; rows are appended to a table already at that path."""
    rid, client = fluent._target(run_id)
    client.log_table(rid, data, artifact_file)


def load_table(artifact_file: str, run_ids: list[str] | None = None, extra_columns: list[str] | None = None) -> Any:
    """The table ``artifact_file`` of the active experiment's runs (or of ``run_ids``) as one pandas
    DataFrame, with ``extra_columns`` such as ``["run_id"]`` added from each run."""
    client = fluent._client()
    return client.load_table(fluent._resolve_experiment_id(), artifact_file, run_ids, extra_columns)
