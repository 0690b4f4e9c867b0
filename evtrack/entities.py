"""The entities users see, shaped like MLflow's (``mlflow.entities``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence


class RunStatus:
    """Run states, as in MLflow."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    ALL = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")

    @staticmethod
    def is_terminated(status: str) -> bool:
        """True for FINISHED, FAILED and KILLED."""
        return status in ("FINISHED", "FAILED", "KILLED")


class ViewType:
    """Which lifecycle stages a search returns, as in MLflow."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @staticmethod
    def from_string(value: str) -> int:
        """Parse "ACTIVE_ONLY", "DELETED_ONLY" or "ALL" (any case)."""
        names = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}
        try:
            return names[value.strip().upper()]
        except KeyError:
            from evtrack.errors import InvalidParameterError

            raise InvalidParameterError(f"Invalid view type {value!r}: expected one of {', '.join(names)}") from None

    @staticmethod
    def stages(view_type: int) -> tuple[str, ...]:
        """The lifecycle stages a view type admits."""
        if view_type == ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if view_type == ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        if view_type == ViewType.ALL:
            return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)
        from evtrack.errors import InvalidParameterError

        raise InvalidParameterError(f"Invalid view type {view_type!r}: expected 1, 2 or 3")


class LifecycleStage:
    """Lifecycle stages of runs and experiments."""

    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(slots=True, unsafe_hash=True)
class Metric:
    """One point of a metric: key, value, timestamp (ms) and step.

    Not frozen (a frozen dataclass is three times slower to build, and histories hold
    millions), but hashable by value like MLflow's; treat it as read-only.
    """

    key: str
    value: float
    timestamp: int
    step: int = 0
    run_id: str | None = None
    model_id: str | None = None  # MLflow 3: the logged model the point is for
    dataset_name: str | None = None  # and the dataset it was measured on
    dataset_digest: str | None = None


class MetricHistory(Sequence):
    """The points of one metric, oldest step first; ``Metric`` objects are made only when accessed.

    Behaves as a read-only list (len, index, slice, iteration, ``==`` with a list);
    ``steps``, ``timestamps`` and ``values`` give plain columns, ``to_arrow()`` a table.
    """

    def __init__(self, key: str, run_id: str | None, table: Any) -> None:
        self.key, self.run_id, self._table = key, run_id, table
        self._columns: tuple[list, list, list] | None = None

    def _cols(self) -> tuple[list, list, list]:
        if self._columns is None:
            t = self._table
            self._columns = (
                t.column("step").to_pylist(),
                t.column("timestamp").to_pylist(),
                t.column("value").to_pylist(),
            )
        return self._columns

    @property
    def steps(self) -> list[int]:
        """The steps, in order."""
        return self._cols()[0]

    @property
    def timestamps(self) -> list[int]:
        """The timestamps (ms), in order."""
        return self._cols()[1]

    @property
    def values(self) -> list[float]:
        """The values, in order."""
        return self._cols()[2]

    def to_arrow(self) -> Any:
        """The points as an Arrow table (step, timestamp, value)."""
        return self._table

    def __len__(self) -> int:
        return self._table.num_rows

    def __getitem__(self, index):
        steps, stamps, values = self._cols()
        if isinstance(index, slice):
            return [
                Metric(self.key, values[i], stamps[i], steps[i], self.run_id) for i in range(*index.indices(len(self)))
            ]
        i = range(len(self))[index]
        return Metric(self.key, values[i], stamps[i], steps[i], self.run_id)

    def __iter__(self) -> Iterator["Metric"]:
        steps, stamps, values = self._cols()
        key, run_id = self.key, self.run_id
        for i in range(len(steps)):
            yield Metric(key, values[i], stamps[i], steps[i], run_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"MetricHistory(key={self.key!r}, run_id={self.run_id!r}, points={len(self)})"


@dataclass(frozen=True, slots=True)
class Param:
    """A run parameter (immutable once logged)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RunTag:
    """A tag on a run."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ExperimentTag:
    """A tag on an experiment."""

    key: str
    value: str


@dataclass(slots=True)
class RunInfo:
    """Run metadata, as MLflow's ``RunInfo``."""

    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str

    @property
    def run_uuid(self) -> str:
        """MLflow's deprecated alias of ``run_id``."""
        return self.run_id


@dataclass(slots=True)
class RunData:
    """Run contents: params, latest metric values and tags."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset as recorded on a run, as MLflow's ``mlflow.entities.Dataset``.

    ``schema`` and ``profile`` are JSON text (or None); ``source`` is JSON text naming the
    source (``{"uri": "s3://…"}``) and ``source_type`` its kind (``local``, ``s3``, ``code``…).
    """

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None

    def to_dictionary(self) -> dict[str, Any]:
        """The dataset as a plain dict."""
        return {
            "name": self.name,
            "digest": self.digest,
            "source_type": self.source_type,
            "source": self.source,
            "schema": self.schema,
            "profile": self.profile,
        }


@dataclass(frozen=True, slots=True)
class InputTag:
    """A tag on a run's input; the context is the tag ``mlflow.data.context``."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset used by a run, with its input tags, as MLflow's ``DatasetInput``."""

    dataset: Dataset
    tags: list[InputTag] = field(default_factory=list)

    @property
    def context(self) -> str | None:
        """The ``mlflow.data.context`` tag ("training", "evaluation", …), if any."""
        return next((t.value for t in self.tags if t.key == DATASET_CONTEXT_TAG), None)

    def to_dictionary(self) -> dict[str, Any]:
        """The input as a plain dict."""
        return {"dataset": self.dataset.to_dictionary(), "tags": {t.key: t.value for t in self.tags}}


DATASET_CONTEXT_TAG = "mlflow.data.context"


@dataclass(slots=True)
class RunInputs:
    """What a run consumed: its dataset inputs, as MLflow's ``RunInputs``."""

    dataset_inputs: list[DatasetInput] = field(default_factory=list)


@dataclass(slots=True)
class Run:
    """A run: ``info`` plus ``data`` (plus ``inputs``: the datasets it used)."""

    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)

    def to_dictionary(self) -> dict[str, Any]:
        """The run as plain dicts, as MLflow's ``Run.to_dictionary``."""
        info = {name: getattr(self.info, name) for name in RunInfo.__slots__}
        return {
            "info": info,
            "data": {
                "metrics": dict(self.data.metrics),
                "params": dict(self.data.params),
                "tags": dict(self.data.tags),
            },
            **(
                {"inputs": {"dataset_inputs": [d.to_dictionary() for d in self.inputs.dataset_inputs]}}
                if self.inputs.dataset_inputs
                else {}
            ),
        }


@dataclass(slots=True)
class Experiment:
    """An experiment, as MLflow's ``Experiment``."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


@dataclass(frozen=True, slots=True)
class FileInfo:
    """An entry of an artifact listing: path relative to the run's root, dir flag, size."""

    path: str
    is_dir: bool
    file_size: int | None


class PagedList(list):
    """A list of results with the ``token`` of the next page (None on the last page)."""

    def __init__(self, items: Iterable[Any] = (), token: str | None = None) -> None:
        super().__init__(items)
        self.token = token
