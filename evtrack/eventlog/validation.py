"""MLflow's validation rules and limits for keys, values, ids, batches and artifact paths.

Every check raises :class:`~evtrack.errors.InvalidParameterError` with a message close to
MLflow's wording that names the offending key or value. Over-long param and tag values are
truncated with a :class:`TruncatedValueWarning`, unless ``EVTRACK_TRUNCATE_LONG_VALUES`` (or
MLflow's ``MLFLOW_TRUNCATE_LONG_VALUES``) is ``false``. Keys that passed once are remembered,
so the hot path (``log_metric``) pays a single set lookup per repeated key.
"""

from __future__ import annotations

import numbers
import os
import posixpath
import re
import warnings
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from evtrack.errors import InvalidParameterError

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_KEY_LENGTH = 250
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_MODEL_REGISTRY_TAG_KEY_LENGTH = 250
MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH = 100_000
MAX_REGISTERED_MODEL_TAG_VAL_LENGTH = MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_LOG_REQUEST_SIZE = 1_000_000

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
TRUNCATE_ENV_VARS = ("EVTRACK_TRUNCATE_LONG_VALUES", "MLFLOW_TRUNCATE_LONG_VALUES")

# fullmatch, not MLflow's ``^...$`` with re.match, which also accepts a trailing newline.
_KEY_CHARS = re.compile(r"[/\w.\- :]*")
_RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}")
_DRIVE = re.compile(r"[A-Za-z]:")
_BAD_CHARACTERS_MESSAGE = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
    " spaces ( ), colons (:) and slashes (/)."
)
_KIND_WORDS = {"param": "parameter"}
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_KEY_CACHE_LIMIT = 100_000
_accepted_keys: set[str] = set()
# Number types (not bool) seen before: float()/int() of them needs no further checks.
_FLOAT_TYPES: set[type] = {int, float}
_INT_TYPES: set[type] = {int}


class TruncatedValueWarning(UserWarning):
    """A param or tag value was longer than MLflow's limit and has been truncated."""


def validate_key(key: str, kind: str) -> str:
    """Check a metric/param/tag key against MLflow's name rules; return it."""
    if key.__class__ is str and key in _accepted_keys:
        return key
    word = _KIND_WORDS.get(kind, kind)
    if key is None:
        raise InvalidParameterError(f"{word.capitalize()} name cannot be None. A key name must be provided.")
    if not isinstance(key, str):
        raise InvalidParameterError(f"Invalid {word} name: {key!r}. Names must be strings.")
    if key == "":
        raise InvalidParameterError(f"Invalid {word} name: ''. A key name must be provided.")
    if _KEY_CHARS.fullmatch(key) is None:
        raise InvalidParameterError(f"Invalid {word} name: {key!r}. {_BAD_CHARACTERS_MESSAGE}")
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        raise InvalidParameterError(
            f"Invalid {word} name: {key!r}. Names may be treated as files in certain cases,"
            " and must not resolve to other names when treated as such."
            f" This name would resolve to {norm!r}"
        )
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameterError(
            f"{word.capitalize()} name {key[:MAX_ENTITY_KEY_LENGTH]!r}... had length {len(key)},"
            f" which exceeded length limit of {MAX_ENTITY_KEY_LENGTH}"
        )
    if len(_accepted_keys) >= _KEY_CACHE_LIMIT:
        _accepted_keys.clear()
    _accepted_keys.add(key)
    return key


def _is_bool(value: Any) -> bool:
    """True for Python and numpy booleans."""
    return value.__class__ is bool or value.__class__.__name__ in ("bool", "bool_")


def _metric_value(key: str, value: Any, timestamp: Any) -> float:
    """Convert a metric value (number, numpy scalar, one-element array or tensor) to float."""
    candidate = value
    if candidate.__class__ not in _FLOAT_TYPES:
        if not isinstance(candidate, numbers.Number) and hasattr(candidate, "item"):
            try:  # numpy arrays and tensors holding a single number
                candidate = candidate.item()
            except (TypeError, ValueError, RuntimeError):
                pass
        if _is_bool(candidate) or isinstance(candidate, (str, bytes, complex)):
            candidate = None
        elif isinstance(candidate, numbers.Number):
            _FLOAT_TYPES.add(candidate.__class__)  # next time: one set lookup
        elif not hasattr(type(candidate), "__float__"):
            candidate = None
    try:
        if candidate is not None:
            return float(candidate)
    except (TypeError, ValueError, OverflowError):
        pass
    raise InvalidParameterError(
        f"Got invalid value {value!r} for metric {key!r} (timestamp={timestamp}). "
        "Please specify value as a valid double (64-bit floating point)"
    )


def _as_int64(value: Any) -> int | None:
    """Return value as an int if it is an integral non-bool number within int64, else None."""
    if value.__class__ in _INT_TYPES:
        result = int(value)
    elif _is_bool(value) or not isinstance(value, numbers.Real):
        return None
    elif isinstance(value, numbers.Integral):
        _INT_TYPES.add(value.__class__)
        result = int(value)
    else:
        as_float = float(value)
        if not as_float.is_integer():
            return None
        result = int(as_float)
    return result if _I64_MIN <= result <= _I64_MAX else None


def validate_metric(key: str, value: Any, timestamp: Any, step: Any) -> tuple[float, int, int]:
    """Check a metric's key, value, timestamp and step; return (float value, timestamp, step)."""
    if key.__class__ is not str or key not in _accepted_keys:
        validate_key(key, "metric")
    if value.__class__ is not float:
        value = _metric_value(key, value, timestamp)
    if timestamp.__class__ is not int or timestamp < 0 or timestamp > _I64_MAX:
        checked = _as_int64(timestamp)
        if checked is None or checked < 0:
            raise InvalidParameterError(
                f"Got invalid timestamp {timestamp!r} for metric {key!r} (value={value}). "
                "Timestamp must be a nonnegative long (64-bit integer)"
            )
        timestamp = checked
    # Steps are usually small: literal single-digit ints keep CPython's fast int compare.
    if step.__class__ is not int or not -1073741824 <= step <= 1073741823:
        checked = _as_int64(step)
        if checked is None:
            raise InvalidParameterError(
                f"Got invalid step {step!r} for metric {key!r} (value={value}). "
                "Step must be a valid long (64-bit integer)."
            )
        step = checked
    return value, timestamp, step


def _truncation_enabled() -> bool:
    """Read EVTRACK_TRUNCATE_LONG_VALUES (falling back to MLflow's variable); default true."""
    for name in TRUNCATE_ENV_VARS:
        raw = os.environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        lowered = raw.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise InvalidParameterError(f"{name} value must be one of ['true', 'false', '1', '0'] (got {raw!r})")
    return True


def _limit_value(what: str, key: str, value: Any, limit: int, *, truncate: bool) -> str:
    """Stringify a value and truncate (with a warning) or reject it when longer than limit."""
    text = value if value.__class__ is str else str(value)
    if len(text) <= limit:
        return text
    preview = f"{text[:100]!r}..."
    if truncate and _truncation_enabled():
        warnings.warn(
            f"{what} for key {key!r} ({preview}, {len(text)} characters) is truncated to"
            f" {limit} characters to meet the length limit. Set"
            " EVTRACK_TRUNCATE_LONG_VALUES=false to raise an error instead.",
            TruncatedValueWarning,
            stacklevel=3,
        )
        return text[:limit]
    raise InvalidParameterError(
        f"{what} {preview} for key {key!r} had length {len(text)}, which exceeded length limit of {limit}"
    )


def validate_param(key: str, value: Any) -> str:
    """Check a param key; return the value as str, truncated to MAX_PARAM_VAL_LENGTH."""
    validate_key(key, "param")
    return _limit_value("Param value", key, value, MAX_PARAM_VAL_LENGTH, truncate=True)


def new_params(run_id: str, params: Sequence[Any], known: dict[str, str]) -> dict[str, str]:
    """The params of a batch not yet logged to the run (validated, in order), given the values
    ``known`` for it; a different value for a logged key is refused with MLflow's message
    (params are immutable, the same value again is no change)."""
    new: dict[str, str] = {}
    for p in params:
        value = validate_param(validate_key(p.key, "param"), p.value)
        old = known.get(p.key, new.get(p.key))
        if old is not None and old != value:
            raise InvalidParameterError(
                f"Changing param values is not allowed. Param with key='{p.key}' was already "
                f"logged with value='{old}' for run ID='{run_id}'. "
                f"Attempted logging new value '{value}'."
            )
        if old is None:
            new[p.key] = value
    return new


def validate_tag(key: str, value: Any) -> str:
    """Check a run tag key; return the value as str, truncated to MAX_TAG_VAL_LENGTH."""
    validate_key(key, "tag")
    return _limit_value("Tag value", key, value, MAX_TAG_VAL_LENGTH, truncate=True)


def validate_experiment_tag(key: str, value: Any) -> str:
    """Check an experiment tag; return the value as str (too long is an error, as in MLflow)."""
    validate_key(key, "tag")
    return _limit_value("Experiment tag value", key, value, MAX_EXPERIMENT_TAG_VAL_LENGTH, truncate=False)


def validate_experiment_name(name: Any) -> str:
    """Check an experiment name: a non-empty string of at most 500 characters."""
    if name is None or name == "":
        raise InvalidParameterError(f"Invalid experiment name: '{name}'")
    if not isinstance(name, str):
        raise InvalidParameterError(f"Invalid experiment name: {name!r}. Expects a string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameterError(
            f"Invalid experiment name: {name[:100]!r}... Experiment name exceeds the maximum"
            f" length of {MAX_EXPERIMENT_NAME_LENGTH} characters (got {len(name)})"
        )
    return name


def validate_run_id(run_id: str) -> str:
    """Check a run id against MLflow's rule (alphanumeric start, then word chars or dashes)."""
    if not isinstance(run_id, str) or _RUN_ID.fullmatch(run_id) is None:
        raise InvalidParameterError(f"Invalid run ID: {run_id!r}")
    return run_id


def validate_experiment_id(experiment_id: Any) -> str:
    """Check an experiment id (non-negative int or ASCII digit string); return it as str."""
    if isinstance(experiment_id, int) and not isinstance(experiment_id, bool):
        if experiment_id >= 0:
            return str(experiment_id)
    elif isinstance(experiment_id, str) and experiment_id.isascii() and experiment_id.isdigit():
        return str(int(experiment_id))
    raise InvalidParameterError(
        f"Invalid experiment ID: {experiment_id!r}. Experiment ID must be a non-negative integer or a string of digits."
    )


def _check_batch_limit(entity_name: str, limit: int, length: int) -> None:
    """Raise when a batch holds more than limit entities of one kind."""
    if length > limit:
        raise InvalidParameterError(
            f"A batch logging request can contain at most {limit} {entity_name}. Got {length}"
            f" {entity_name}. Please split up {entity_name} across multiple requests and try"
            " again."
        )


def validate_batch(metrics: Sequence[Any], params: Sequence[Any], tags: Sequence[Any]) -> None:
    """Check MLflow's per-batch limits and that no param key appears twice."""
    _check_batch_limit("metrics", MAX_METRICS_PER_BATCH, len(metrics))
    _check_batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, len(params))
    _check_batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, len(tags))
    total = len(metrics) + len(params) + len(tags)
    _check_batch_limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, total)
    seen: set[str] = set()
    dupes: list[str] = []
    for param in params:
        if param.key in seen and param.key not in dupes:
            dupes.append(param.key)
        seen.add(param.key)
    if dupes:
        raise InvalidParameterError(
            f"Duplicate parameter keys have been submitted: {dupes}. Please ensure the request"
            " contains only one param value per param key."
        )


def validate_batch_request_size(size: int) -> None:
    """Check a serialized log_batch request against MAX_BATCH_LOG_REQUEST_SIZE bytes."""
    if size > MAX_BATCH_LOG_REQUEST_SIZE:
        raise InvalidParameterError(
            f"Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} bytes,"
            f" got a request of size {size}."
        )


def validate_artifact_path(path: str | None) -> str:
    """Check an artifact path or file name; return it as a normalized relative posix path."""
    if path is None:
        return ""
    if isinstance(path, PurePath):
        path = path.as_posix()
    if not isinstance(path, str):
        raise InvalidParameterError(f"Invalid artifact path: {path!r}. Artifact paths must be strings.")
    reason = None
    if "\x00" in path:
        reason = "NUL characters are not allowed"
    elif "\\" in path:
        reason = "use '/' as the separator, not '\\'"
    elif path.startswith("/"):
        reason = "absolute paths are not allowed"
    elif _DRIVE.match(path):
        reason = "Windows drive paths are not allowed"
    elif "://" in path:
        reason = "URIs are not allowed"
    elif ".." in path.split("/"):
        reason = "'..' components are not allowed"
    if reason is not None:
        raise InvalidParameterError(
            f"Invalid artifact path: {path!r} ({reason}). Artifact paths must be relative and"
            " stay inside the run's artifact root"
        )
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def validate_run_status(status: str) -> str:
    """Check a run status string (case-sensitive, as in MLflow)."""
    if status not in RUN_STATUSES:
        raise InvalidParameterError(f"Invalid run status: {status!r}. Valid run status strings: {list(RUN_STATUSES)}")
    return status


def metric_names_a_model(metric: Any) -> bool:
    """Whether a metric names a logged model (MLflow 3), after checking its links: model and dataset
    names are strings, and a dataset is named by both its name and digest (MLflow's ``Metric`` refuses
    one without the other)."""
    links = (
        getattr(metric, "model_id", None),
        getattr(metric, "dataset_name", None),
        getattr(metric, "dataset_digest", None),
    )
    if links == _NO_LINKS:
        return False
    for name, value in zip(("model_id", "dataset_name", "dataset_digest"), links):
        if value is not None and not isinstance(value, str):
            raise InvalidParameterError(f"Invalid value {value!r} for metric field '{name}': expected a string")
    if links[1:].count(None) == 1:
        raise InvalidParameterError("Both dataset_name and dataset_digest must be provided if one is provided")
    return links[0] is not None


_NO_LINKS = (None, None, None)
