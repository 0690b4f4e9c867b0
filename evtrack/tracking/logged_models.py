"""MLflow 3's logged models, kept as small revisioned documents in the store.

``mlflow.<flavor>.log_model`` on MLflow 3 creates a *logged model* (an id ``m-<hex>``,
a name, a status, tags, params and its own artifact directory
``<experiment artifact_location>/models/<model_id>/artifacts``) before uploading its
files, and ``mlflow.register_model("runs:/<run_id>/<name>")`` finds it again by
searching. evtrack's own API has no logged models (its models live in run
artifacts); the server and the MLflow store plugin keep MLflow's here::

    logged-models/<model_id>/<n:08d>.json   revision n of one model (put-if-absent)

A change reads the newest revision and writes the next one with put-if-absent;
a conflicting concurrent change re-reads and retries, so none is lost. Models are
few and small, so a search reads the newest revision of each one.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

import orjson

from evtrack.entities import Metric
from evtrack.errors import CommitConflictError, InvalidParameterError, ResourceNotFoundError, StoreError
from evtrack.eventlog.events import now_ms
from evtrack.query import search_grammar as grammar
from evtrack.query.matching import evaluate_comparison
from evtrack.read.views import decode_page_token, encode_page_token
from evtrack.store.base import ObjectStore

PREFIX = "logged-models/"
MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
STATUSES = ("PENDING", "READY", "FAILED")
_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")
_ATTEMPTS = 16
# the fields a search may filter and order by, by the names MLflow accepts for them
ATTRIBUTES = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run_id",
    "creation_time": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "creation_timestamp_ms": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
    "last_updated_timestamp_ms": "last_updated_timestamp_ms",
}
_FILTER = grammar._Spec(
    entities={
        "attribute": "attribute",
        "attributes": "attribute",
        "tag": "tag",
        "tags": "tag",
        "param": "param",
        "params": "param",
        "metric": "metric",
        "metrics": "metric",
    },
    entity_error="Invalid entity type '{}'. Valid values are ['attributes', 'tags', 'params', 'metrics']",
    attributes=ATTRIBUTES,
    order_attributes=ATTRIBUTES,
    numeric=frozenset({"creation_timestamp_ms", "last_updated_timestamp_ms"}),
    list_attributes=frozenset({"name", "model_id", "model_type", "status", "source_run_id"}),
    order_entities=frozenset({"attribute"}),
    order_entity_error="Invalid order_by entity: {}",
)


@dataclass(frozen=True)
class LoggedModel:
    """One logged model (``artifact_location`` is the stored URI of its artifact directory)."""

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp_ms: int
    last_updated_timestamp_ms: int
    status: str = "PENDING"
    status_message: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    deleted: bool = False


def validate_name(name: str | None) -> None:
    """MLflow's rule for logged-model names (None means a random one is chosen)."""
    if name is None:
        return
    if not name or any(c in name for c in _BAD_NAME_CHARS):
        raise InvalidParameterError(
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string and cannot "
            f"contain the following characters: {_BAD_NAME_CHARS}"
        )


def _not_found(model_id: str) -> ResourceNotFoundError:
    return ResourceNotFoundError(f"Logged model with ID '{model_id}' not found.")


class LoggedModelStore:
    """Create, read, change and list logged models in one object store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _revisions(self, model_id: str) -> list[str]:
        return sorted(info.key for info in self.store.list(f"{PREFIX}{model_id}/"))

    def _read(self, key: str) -> LoggedModel:
        data = orjson.loads(self.store.get(key))
        data.pop("outputs", None)  # earlier builds kept run outputs here; they are events now (model_links)
        return LoggedModel(**data)

    def _write(self, key: str, model: LoggedModel) -> None:
        self.store.put_if_absent(key, orjson.dumps(asdict(model)))

    def create(
        self,
        experiment_id: str,
        artifact_root: str,
        name: str | None = None,
        model_type: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> LoggedModel:
        """A new PENDING model whose artifacts go under ``<artifact_root>/models/<model_id>/artifacts``."""
        from evtrack.tracking.names import random_run_name

        validate_name(name)
        model_id = f"m-{uuid.uuid4().hex}"
        ts = now_ms()
        model = LoggedModel(
            model_id=model_id,
            experiment_id=experiment_id,
            name=name or random_run_name(),
            artifact_location=f"{artifact_root.rstrip('/')}/models/{model_id}/artifacts",
            creation_timestamp_ms=ts,
            last_updated_timestamp_ms=ts,
            model_type=model_type or None,
            source_run_id=source_run_id or None,
            tags=dict(tags or {}),
            params=dict(params or {}),
        )
        self._write(f"{PREFIX}{model_id}/{0:08d}.json", model)
        return model

    def _newest(self, model_id: str) -> tuple[int, LoggedModel]:
        """(revision number, model) of the newest revision; RESOURCE_DOES_NOT_EXIST when none."""
        if not isinstance(model_id, str) or not MODEL_ID.fullmatch(model_id):
            raise _not_found(model_id)
        keys = self._revisions(model_id)
        if not keys:
            raise _not_found(model_id)
        return int(keys[-1].rsplit("/", 1)[1].split(".")[0]), self._read(keys[-1])

    def get(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        """The newest revision of a model; RESOURCE_DOES_NOT_EXIST for an unknown (or deleted) one."""
        _, model = self._newest(model_id)
        if model.deleted and not allow_deleted:
            raise _not_found(model_id)
        return model

    def update(self, model_id: str, change: Callable[[LoggedModel], LoggedModel]) -> LoggedModel:
        """Apply ``change`` to the newest revision of a live model and store the result as the next
        revision (retried on top of a concurrent change)."""
        for attempt in range(_ATTEMPTS):
            number, current = self._newest(model_id)
            if current.deleted:
                raise _not_found(model_id)
            updated = replace(
                change(current), last_updated_timestamp_ms=max(now_ms(), current.last_updated_timestamp_ms)
            )
            try:
                self._write(f"{PREFIX}{model_id}/{number + 1:08d}.json", updated)
                return updated
            except CommitConflictError:
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        raise StoreError(f"could not update logged model {model_id} after {_ATTEMPTS} attempts")

    def all(self) -> list[LoggedModel]:
        """The newest revision of every model not deleted."""
        newest: dict[str, str] = {}
        for info in self.store.list(PREFIX):
            model_id = info.key[len(PREFIX) :].split("/", 1)[0]
            if info.key > newest.get(model_id, ""):
                newest[model_id] = info.key
        models = [self._read(key) for key in newest.values()]
        return [m for m in models if not m.deleted]

    def search(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        order_by: list[dict[str, Any]] | None = None,
        max_results: int | None = 100,
        page_token: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        metrics: Mapping[str, list[Metric]] | None = None,
    ) -> tuple[list[LoggedModel], str | None]:
        """One page of the live models of ``experiment_ids`` matching MLflow's logged-model filter,
        ordered by ``order_by`` (MLflow's ``{"field_name", "ascending", "dataset_name",
        "dataset_digest"}`` items; then newest first); returns (page, next token).

        ``metrics`` gives each model's metric points (``ModelLinksMixin.logged_model_metrics``): a
        metric comparison holds when any point of that metric does, on one of ``datasets`` when
        they are given; ``datasets`` alone keeps the models with a metric on one of them; ordering
        by ``metrics.<key>`` uses each model's latest point (by timestamp, then step)."""
        if max_results is None or max_results < 1:
            raise InvalidParameterError(f"Invalid value for max_results: {max_results}")
        if datasets and not all(d.get("dataset_name") for d in datasets):
            raise InvalidParameterError("`dataset_name` in the `datasets` clause must be specified.")
        clauses = grammar._parse_filter(filter_string or None, _FILTER)
        orders = _orders(order_by or [])
        metrics = metrics or {}
        wanted = {str(e) for e in experiment_ids}
        found = []
        for m in self.all():
            if m.experiment_id not in wanted:
                continue
            points = metrics.get(m.model_id, [])
            if datasets:
                points = [p for p in points if any(_on_dataset(p, d) for d in datasets)]
                if not points:
                    continue
            if all(_holds(m, points, c) for c in clauses):
                found.append(m)
        found = _sorted(found, orders, metrics)
        start = decode_page_token(page_token)
        page = found[start : start + max_results]
        return page, (encode_page_token(start + max_results) if start + max_results < len(found) else None)


def _on_dataset(point: Metric, dataset: dict[str, Any]) -> bool:
    """Whether a point was measured on a dataset filter (a digest given, even None, must match too:
    MLflow's server sends None for a missing digest and its SQL store compares it)."""
    if point.dataset_name != dataset.get("dataset_name"):
        return False
    return "dataset_digest" not in dataset or point.dataset_digest == dataset["dataset_digest"]


def _holds(model: LoggedModel, points: list[Metric], clause: Any) -> bool:
    if clause.entity == "metric":
        return any(evaluate_comparison(clause.op, p.value, clause.value) for p in points if p.key == clause.key)
    if clause.entity == "attribute":
        value = getattr(model, clause.key)
    else:
        value = (model.tags if clause.entity == "tag" else model.params).get(clause.key)
    return evaluate_comparison(clause.op, value, clause.value)


@dataclass(frozen=True)
class _Order:
    key: str  # an attribute of LoggedModel, or a metric key when ``metric``
    ascending: bool
    metric: bool = False
    dataset: tuple[tuple[str, str], ...] = ()  # a metric order's dataset_name / dataset_digest


def _orders(items: list[dict[str, Any]]) -> list[_Order]:
    orders = []
    for item in items:
        name = item["field_name"]
        ascending = item.get("ascending", True) is not False
        if "." not in name:
            if name not in ATTRIBUTES:
                raise InvalidParameterError(f"Invalid order by field name: {name}")
            orders.append(_Order(ATTRIBUTES[name], ascending))
            continue
        entity, key = name.split(".", 1)
        if entity != "metrics":
            raise InvalidParameterError(f"Invalid order by field name: {name}. Only metrics are supported.")
        dataset = tuple((k, item[k]) for k in ("dataset_name", "dataset_digest") if item.get(k))
        orders.append(_Order(key, ascending, metric=True, dataset=dataset))
    fields = [o.key for o in orders if not o.metric]
    if "creation_timestamp_ms" not in fields:
        orders.append(_Order("creation_timestamp_ms", False))
    if "model_id" not in fields:
        orders.append(_Order("model_id", True))
    return orders


def _latest_value(points: list[Metric], order: _Order) -> float | None:
    """A model's latest value of the order's metric (by timestamp, then step; the first run id on
    a tie), on the order's dataset when it names one."""
    matching = [p for p in points if p.key == order.key and all(getattr(p, k) == v for k, v in order.dataset)]
    if not matching:
        return None
    return min(matching, key=lambda p: (-p.timestamp, -p.step, p.run_id or "")).value


def _sorted(models: list[LoggedModel], orders: list[_Order], metrics: Mapping[str, list[Metric]]) -> list[LoggedModel]:
    for order in reversed(orders):  # stable sorts, last key first; missing values last
        if order.metric:
            latest = {m.model_id: _latest_value(metrics.get(m.model_id, []), order) for m in models}
            values = [latest[m.model_id] for m in models]
        else:
            values = [getattr(m, order.key) for m in models]
        present = [(v, m) for v, m in zip(values, models) if v is not None]
        missing = [m for v, m in zip(values, models) if v is None]
        present.sort(key=lambda vm: vm[0], reverse=not order.ascending)
        models = [m for _, m in present] + missing
    return models


def parse_status(value: Any) -> str:
    """A status from a request: ``LOGGED_MODEL_READY`` (protobuf's JSON), ``READY`` or its number."""
    numbers = {1: "PENDING", 2: "READY", 3: "FAILED"}
    if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
        return numbers[value]
    text = str(value or "").strip().upper()
    if text.isdigit() and int(text) in numbers:
        return numbers[int(text)]
    text = text.removeprefix("LOGGED_MODEL_")
    if text == "UPLOAD_FAILED":
        return "FAILED"
    if text not in STATUSES:
        raise InvalidParameterError(
            f"Invalid logged model status {value!r}: expected one of "
            "LOGGED_MODEL_PENDING, LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED"
        )
    return text
