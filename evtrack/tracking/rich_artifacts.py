"""Rich artifacts: MLflow's ``log_figure``, ``log_image``, ``log_table`` and ``load_table``.

The files are MLflow's, path for path, so MLflow's UI and tools read them:

- ``log_figure(fig, "plots/roc.png")``: the figure saved at that path (``media.save_figure``).
- ``log_image(img, "dir/x.png")``: the image at that path; ``log_image(img, key="k", step=3)``:
  ``images/k+step+3+timestamp+<ms>+<uuid>.png`` and a 256-pixel thumbnail
  ``…+compressed.webp`` next to it, and the run tag ``mlflow.loggedImages`` = ``True``.
- ``log_table(data, "t.json")``: a DataFrame as pandas' ``orient="split"`` JSON without index
  (``{"columns": [...], "data": [[...], ...]}``) or as ``.parquet``; a table already at that
  path is read and the new rows appended. Image cells are stored under
  ``table_images/<table>/<uuid>.png`` (+ ``.webp``) and replaced by a reference. The run tag
  ``mlflow.loggedArtifacts`` lists ``{"path": ..., "type": "table"}`` once per table.
- ``load_table(experiment_id, "t.json")``: that table of every run of the experiment listing it
  (or of ``run_ids``), concatenated in search order, with ``extra_columns`` from each run.

pandas, numpy and Pillow load only when one of these is called.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import sys
import tempfile
import uuid
from typing import Any, Iterator

from evtrack.eventlog import validation as v
from evtrack.eventlog.events import now_ms
from evtrack.errors import InvalidParameterError, ResourceNotFoundError
from evtrack.tracking import media

LOGGED_IMAGES_TAG = "mlflow.loggedImages"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
TABLE_EXTENSIONS = (".json", ".parquet")
FORBIDDEN_TABLE_CHARACTERS = ('"', "'", ",", ":", "[", "]", "{", "}")
RUN_INFO_COLUMNS = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")

_logger = logging.getLogger(__name__)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise InvalidParameterError("Tables need pandas: pip install pandas") from None
    return pandas


def check_table_file(artifact_file: Any) -> str:
    """MLflow's rules for a table's file name (no quotes, commas, colons, brackets or braces;
    .json or .parquet); returns the normalized artifact path."""
    if not isinstance(artifact_file, str):
        raise InvalidParameterError(f"artifact_file must be a string, got {type(artifact_file).__name__}")
    for char in FORBIDDEN_TABLE_CHARACTERS:
        if char in artifact_file:
            raise InvalidParameterError(f"The artifact_file contains forbidden character: {char}")
    if not artifact_file.endswith(TABLE_EXTENSIONS):
        raise InvalidParameterError(
            f"Invalid artifact file path '{artifact_file}'. Please ensure the file you are trying to log as a"
            " table has a file name with either '.json' or '.parquet' extension."
        )
    rel = v.validate_artifact_path(artifact_file)
    if not rel:
        raise InvalidParameterError("artifact_file must name a file inside the run's artifacts")
    return rel


def to_frame(data: Any) -> Any:
    """A dict (columns, or one row of scalars) or a DataFrame, as a new DataFrame."""
    if isinstance(data, dict):
        pd = _pandas()
        try:
            return pd.DataFrame(data)
        except ValueError:  # all scalars ({"inputs": "What is MLflow?"}): one row
            return pd.DataFrame([data])
    if "pandas" in sys.modules:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return data.copy()
    raise InvalidParameterError(f"data must be a pandas.DataFrame or a dictionary, got {type(data).__name__}")


def _is_image(value: Any) -> bool:
    return all(callable(getattr(value, name, None)) for name in ("save", "resize")) and hasattr(value, "size")


def write_table(frame: Any, path: str, artifact_file: str) -> None:
    """A DataFrame as MLflow writes it: split-oriented JSON without index, or parquet."""
    try:
        if path.endswith(".json"):
            frame.to_json(path, orient="split", index=False, date_format="iso")
        else:
            frame.to_parquet(path, index=False)
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for unserializable cells
        raise InvalidParameterError(
            f"Failed to save the table as {artifact_file!r}: the data is not serializable ({exc})"
        ) from None


def read_table(path: str, artifact_file: str) -> Any:
    """A table file written by ``write_table`` (or by MLflow), as a DataFrame."""
    pd = _pandas()
    try:
        if path.endswith(".json"):
            return pd.read_json(path, orient="split")
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - a file of another layout at a table's path
        raise InvalidParameterError(
            f"The artifact {artifact_file!r} is not a table in MLflow's layout ({exc})"
        ) from None


def run_column(run: Any, column: str) -> Any:
    """The value of a ``search_runs`` column (``run_id``, ``start_time``, ``metrics.x``, …) for a run."""
    if column in ("start_time", "end_time"):
        ms = getattr(run.info, column)
        return _pandas().to_datetime(ms, unit="ms", utc=True) if ms is not None else None
    if column in RUN_INFO_COLUMNS:
        return getattr(run.info, column)
    prefix, _, key = column.partition(".")
    if prefix == "metrics" and key:
        return run.data.metrics.get(key, float("nan"))
    if prefix in ("params", "tags") and key:
        return getattr(run.data, prefix).get(key)
    raise InvalidParameterError(
        f"Unknown extra column {column!r}: use one of {', '.join(RUN_INFO_COLUMNS)},"
        " or metrics.<key>, params.<key>, tags.<key>"
    )


class RichArtifactsMixin:
    """The figure, image and table methods of the tracking client."""

    @contextlib.contextmanager
    def _artifact_file(self, run_id: str, artifact_file: str) -> Iterator[str]:
        """A local path to write; uploaded as ``artifact_file`` of the run when the block ends."""
        rel = v.validate_artifact_path(artifact_file)
        if not rel:
            raise InvalidParameterError("artifact_file must name a file inside the run's artifacts")
        with tempfile.TemporaryDirectory(prefix="evtrack-artifact-") as tmp:
            path = os.path.join(tmp, posixpath.basename(rel))
            yield path
            if not os.path.isfile(path):
                raise InvalidParameterError(
                    f"Nothing was written for {artifact_file!r}: give it a file extension its writer knows (.png, …)"
                )
            self._upload(run_id, path, rel)

    def log_figure(
        self, run_id: str, figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Save a matplotlib or plotly figure as an artifact (plotly: .html, or images with kaleido)."""
        self._check_writable(run_id)
        with self._artifact_file(run_id, artifact_file) as path:
            media.save_figure(figure, path, artifact_file, dict(save_kwargs or {}))

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        """Save a numpy array or PIL image: at ``artifact_file``, or step-keyed under ``images/``
        (``key``, ``step`` default 0, ``timestamp`` default now) with a thumbnail, as MLflow does."""
        if artifact_file is not None and any(arg is not None for arg in (key, step, timestamp)):
            raise InvalidParameterError(
                "The `artifact_file` parameter cannot be used in conjunction with `key`, `step`, or `timestamp`"
                " parameters. Please ensure that `artifact_file` is specified alone, without any of these"
                " conflicting parameters."
            )
        if artifact_file is None and key is None:
            raise InvalidParameterError(
                "Invalid arguments: Please specify exactly one of `artifact_file` or `key`. Use `key` to log"
                " dynamic image charts or `artifact_file` for saving static images."
            )
        pil = media.to_pil_image(image)
        self._check_writable(run_id)
        if artifact_file is not None:
            with self._artifact_file(run_id, artifact_file) as path:
                media.save_image(pil, path, artifact_file)
            return
        base = media.image_file_base(key, step or 0, timestamp or now_ms())
        thumbnail = media.compress_image_size(pil)
        for picture, name in ((pil, f"{base}.png"), (thumbnail, f"{base}+compressed.webp")):
            with self._artifact_file(run_id, name) as path:
                media.save_image(picture, path, name)
        self.set_tag(run_id, LOGGED_IMAGES_TAG, True, synchronous)

    def _store_image_cells(self, run_id: str, frame: Any, rel: str) -> None:
        """Image cells (PIL or ``mlflow.Image``-like) become files and references, as in MLflow."""
        table_name = os.path.splitext(rel)[0]

        def store(image: Any) -> dict[str, str]:
            image = media.to_pil_image(image)
            path = posixpath.join("table_images", table_name, str(uuid.uuid4()))
            files = {"filepath": f"{path}.png", "compressed_filepath": f"{path}.webp"}
            for picture, name in (
                (image, files["filepath"]),
                (media.compress_image_size(image), files["compressed_filepath"]),
            ):
                with self._artifact_file(run_id, name) as local:
                    media.save_image(picture, local, name)
            return {"type": "image", **files}

        for column in frame.select_dtypes(include=["object"]).columns:
            is_image = frame[column].map(_is_image)
            if is_image.any() and not is_image.all():
                raise InvalidParameterError(
                    f"Column `{column}` contains a mix of images and non-images. Please ensure that all elements"
                    " in the column are of the same type."
                )
            if is_image.any():
                frame[column] = frame[column].map(store)

    def _existing_table(self, run_id: str, rel: str) -> Any | None:
        """The table already at ``rel`` in the run, or None."""
        directory = posixpath.dirname(rel) or None
        if rel not in {f.path for f in self.list_artifacts(run_id, directory) if not f.is_dir}:
            return None
        with tempfile.TemporaryDirectory(prefix="evtrack-table-") as tmp:
            return read_table(self.download_artifacts(run_id, rel, tmp), rel)

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Save a dict or DataFrame as a table artifact (.json in MLflow's layout, or .parquet);
        rows are appended to a table already at that path."""
        rel = check_table_file(artifact_file)
        frame = to_frame(data)
        self._check_writable(run_id)
        self._store_image_cells(run_id, frame, rel)
        existing = self._existing_table(run_id, rel)
        if existing is not None:
            frame = _pandas().concat([existing, frame], ignore_index=True)
        with self._artifact_file(run_id, rel) as path:
            write_table(frame, path, artifact_file)
        try:
            logged = json.loads(self.get_run(run_id).data.tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
        except ValueError:
            logged = []
        entry = {"path": rel, "type": "table"}
        if entry not in logged:
            self.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*logged, entry]))

    def _runs_with_table(self, experiment_id: str, rel: str) -> list[Any]:
        """The active runs of the experiment whose ``mlflow.loggedArtifacts`` lists the table."""
        wanted = {"path": rel, "type": "table"}
        runs, token = [], None
        while True:
            page = self.search_runs(
                [str(experiment_id)], f"tags.`{LOGGED_ARTIFACTS_TAG}` LIKE '%table%'", page_token=token
            )
            for run in page:
                try:
                    if wanted in json.loads(run.data.tags.get(LOGGED_ARTIFACTS_TAG, "[]")):
                        runs.append(run)
                except (ValueError, TypeError):
                    continue
            token = page.token
            if token is None:
                return runs

    def load_table(
        self,
        experiment_id: str,
        artifact_file: str,
        run_ids: list[str] | None = None,
        extra_columns: list[str] | None = None,
    ) -> Any:
        """The table ``artifact_file`` of the experiment's runs (all that logged it, or ``run_ids``),
        concatenated as one DataFrame; ``extra_columns`` (``run_id``, ``tags.x``, …) come from each run."""
        pd = _pandas()
        rel = check_table_file(artifact_file)
        runs = self._runs_with_table(experiment_id, rel)
        if run_ids:
            wanted = set(run_ids)
            runs = [r for r in runs if r.info.run_id in wanted]
            if len(runs) != len(run_ids):
                _logger.warning("Not all runs have the specified table artifact. Some runs will be skipped.")
        if not runs:
            raise ResourceNotFoundError("No runs found with the corresponding table artifact.")
        for column in extra_columns or []:
            run_column(runs[0], column)  # an unknown column fails before any download
        frames = []
        for run in runs:
            frame = self._existing_table(run.info.run_id, rel)
            if frame is None:
                raise ResourceNotFoundError(f"Artifact {artifact_file} not found for run {run.info.run_id}.")
            for column in extra_columns or []:
                name = column
                if column in frame:
                    name = f"{column}_"
                    _logger.warning(
                        f"Column name {column} already exists in the table. Resolving the conflict, by"
                        " appending an underscore to the column name."
                    )
                frame[name] = run_column(run, column)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)
