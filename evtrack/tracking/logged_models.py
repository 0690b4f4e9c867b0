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
from typing import Any

import orjson

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
    outputs: list[dict[str, Any]] = field(default_factory=list)  # [{"run_id", "step"}] from runs/outputs
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
        return LoggedModel(**orjson.loads(self.store.get(key)))

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
        order_by: list[tuple[str, bool]] | None = None,
        max_results: int | None = 100,
        page_token: str | None = None,
    ) -> tuple[list[LoggedModel], str | None]:
        """One page of the live models of ``experiment_ids`` matching MLflow's logged-model filter,
        ordered by ``(field, ascending)`` pairs (then newest first); returns (page, next token)."""
        if max_results is None or max_results < 1:
            raise InvalidParameterError(f"Invalid value for max_results: {max_results}")
        clauses = grammar._parse_filter(filter_string or None, _FILTER)
        wanted = {str(e) for e in experiment_ids}
        found = [
            m
            for m in self.all()
            if m.experiment_id in wanted
            and all(evaluate_comparison(c.op, _value(m, c.entity, c.key), c.value) for c in clauses)
        ]
        found = _sorted(found, _orders(order_by or []))
        start = decode_page_token(page_token)
        page = found[start : start + max_results]
        return page, (encode_page_token(start + max_results) if start + max_results < len(found) else None)

    def outputs_of_run(self, run_id: str) -> list[tuple[str, int]]:
        """The (model_id, step) pairs a run recorded as its outputs."""
        return [(m.model_id, o["step"]) for m in self.all() for o in m.outputs if o["run_id"] == run_id]


def _value(model: LoggedModel, entity: str, key: str) -> Any:
    if entity == "attribute":
        return getattr(model, key)
    if entity == "tag":
        return model.tags.get(key)
    if entity == "param":
        return model.params.get(key)
    return None  # metrics of logged models are not kept


def _orders(items: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    orders = []
    for name, ascending in items:
        if name not in ATTRIBUTES:
            raise InvalidParameterError(f"Invalid order by field name: {name}")
        orders.append((ATTRIBUTES[name], ascending))
    keys = [k for k, _ in orders]
    if "creation_timestamp_ms" not in keys:
        orders.append(("creation_timestamp_ms", False))
    if "model_id" not in keys:
        orders.append(("model_id", True))
    return orders


def _sorted(models: list[LoggedModel], orders: list[tuple[str, bool]]) -> list[LoggedModel]:
    for key, ascending in reversed(orders):  # stable sorts, last key first; missing values last
        present = [m for m in models if getattr(m, key) is not None]
        missing = [m for m in models if getattr(m, key) is None]
        models = sorted(present, key=lambda m: getattr(m, key), reverse=not ascending) + missing
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
