"""Dataset inputs of runs: MLflow's ``log_inputs``, one ``input_logged`` event per dataset.

A run records each (dataset name, digest, context) once: logging the same
dataset again in the same context is a no-op (the first record wins, as in
MLflow); the same dataset in another context ("training", "evaluation") is a
second input. MLflow's size limits apply.
"""

from __future__ import annotations

from typing import Any, Sequence

from evtrack.eventlog import events as ev
from evtrack.entities import DATASET_CONTEXT_TAG, Dataset, DatasetInput, InputTag
from evtrack.errors import InvalidParameterError

MAX_DATASETS_PER_BATCH = 1000
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500


def _too_long(path: str, limit: int) -> InvalidParameterError:
    return InvalidParameterError(f"'{path}' exceeds the maximum length of {limit} characters")


def _check_str(value: Any, what: str, limit: int, optional: bool = False) -> None:
    if value is None:
        if optional:
            return
        raise InvalidParameterError(f"Dataset {what} cannot be None")
    if not isinstance(value, str):
        raise InvalidParameterError(f"Dataset {what} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise _too_long(what, limit)


def validate_dataset_input(item: DatasetInput) -> DatasetInput:
    """MLflow's checks on one dataset input (None fields, lengths); returns it."""
    if not isinstance(item, DatasetInput):
        raise InvalidParameterError(f"Expected an evtrack.entities.DatasetInput, got {type(item).__name__}")
    d = item.dataset
    if d is None:
        raise InvalidParameterError("Dataset cannot be None")
    _check_str(d.name, "name", MAX_DATASET_NAME_SIZE)
    _check_str(d.digest, "digest", MAX_DATASET_DIGEST_SIZE)
    _check_str(d.source_type, "source_type", MAX_DATASET_SOURCE_SIZE)
    _check_str(d.source, "source", MAX_DATASET_SOURCE_SIZE)
    _check_str(d.schema, "schema", MAX_DATASET_SCHEMA_SIZE, optional=True)
    _check_str(d.profile, "profile", MAX_DATASET_PROFILE_SIZE, optional=True)
    for tag in item.tags:
        if tag.key is None or tag.value is None:
            raise InvalidParameterError("InputTag key and value cannot be None")
        if len(str(tag.key)) > MAX_INPUT_TAG_KEY_SIZE:
            raise _too_long("key", MAX_INPUT_TAG_KEY_SIZE)
        if len(str(tag.value)) > MAX_INPUT_TAG_VALUE_SIZE:
            raise _too_long("value", MAX_INPUT_TAG_VALUE_SIZE)
    return item


def to_entity(dataset: Any) -> Dataset:
    """The ``Dataset`` entity of an ``evtrack.data`` dataset, an entity, or an MLflow dataset."""
    if isinstance(dataset, Dataset):
        return dataset
    to_entity_fn = getattr(dataset, "to_entity", None)
    if callable(to_entity_fn):
        return to_entity_fn()
    to_dict = getattr(dataset, "to_dict", None)  # mlflow.data.dataset.Dataset and look-alikes
    if callable(to_dict):
        d = to_dict()
        return Dataset(d["name"], d["digest"], d["source_type"], d["source"], d.get("schema"), d.get("profile"))
    raise InvalidParameterError(
        f"Cannot log {type(dataset).__name__} as a dataset: build one with evtrack.data.from_path, "
        "from_pandas, from_arrow or from_numpy"
    )


def dataset_input(dataset: Any, context: str | None = None, tags: dict[str, Any] | None = None) -> DatasetInput:
    """A ``DatasetInput`` for ``log_input``: the dataset with its tags and context tag."""
    if dataset is None:
        raise InvalidParameterError("`dataset` must be specified")
    input_tags = [InputTag(str(k), str(v)) for k, v in (tags or {}).items() if k != DATASET_CONTEXT_TAG]
    if context:
        input_tags.append(InputTag(DATASET_CONTEXT_TAG, str(context)))
    elif tags and tags.get(DATASET_CONTEXT_TAG):
        input_tags.append(InputTag(DATASET_CONTEXT_TAG, str(tags[DATASET_CONTEXT_TAG])))
    return DatasetInput(to_entity(dataset), input_tags)


class InputsMixin:
    """The ``log_inputs`` method of the tracking client."""

    def log_inputs(
        self, run_id: str, datasets: Sequence[DatasetInput] | None = None, models: Sequence[Any] | None = None
    ) -> None:
        """Record the datasets and logged models (MLflow 3: ids, ``{"model_id"}`` or ``LoggedModelInput``)
        a run used (MLflow's ``MlflowClient.log_inputs``)."""
        items = list(datasets or [])
        if len(items) > MAX_DATASETS_PER_BATCH:
            raise InvalidParameterError(
                f"A batch logging request can contain at most {MAX_DATASETS_PER_BATCH} datasets. "
                f"Got {len(items)} datasets."
            )
        for item in items:
            validate_dataset_input(item)
        self._check_writable(run_id)  # type: ignore[attr-defined]
        ts = ev.now_ms()
        lines = []
        for item in items:
            d = item.dataset
            tags = {t.key: t.value for t in item.tags}
            context = tags.pop(DATASET_CONTEXT_TAG, None) or None
            lines.append(
                ev.encode(
                    ev.InputLogged(
                        eid=self._eid(),
                        ts=ts,
                        run_id=run_id,
                        name=d.name,
                        digest=d.digest,  # type: ignore[attr-defined]
                        source_type=d.source_type,
                        source=d.source,
                        schema=d.schema,
                        profile=d.profile,
                        context=context,
                        tags=tags,
                    )
                )
            )
        lines += self._model_input_lines(run_id, ts, models or ())  # type: ignore[attr-defined]
        self._backend.writer.append_many(lines)  # type: ignore[attr-defined]
