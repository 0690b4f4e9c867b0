"""MLflow's request-parameter checks: the per-endpoint schemas of MLflow's REST handlers.

MLflow checks a request's parameters against a list of assertions per parameter (type,
required, bounds) and refuses a failing one with ``INVALID_PARAMETER_VALUE`` and a fixed
wording: ``Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'.
See the API docs for more information about request parameters.``. The type assertions only
run when the body does not parse as the endpoint's protobuf message; a value of the right type
always passes them, so evtrack runs them on every non-null value (a JSON ``null`` clears a
protobuf field, so it only fails a *required* check). :func:`check` is applied by
:func:`evtrack.server.rest.protocol.api` before the handler sees the request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from evtrack.errors import InvalidParameterError

_API_DOCS = " See the API docs for more information about request parameters."


class _Fail(Exception):
    """One failed assertion; a message of its own replaces the generic wording."""


def _string(x: Any) -> None:
    if not isinstance(x, str):
        raise _Fail()


def _intlike(x: Any) -> None:
    if isinstance(x, bool):
        return  # bool is an int to MLflow's check (``isinstance(True, int)``)
    try:
        x = int(x)
    except (TypeError, ValueError):
        raise _Fail() from None


def _view_type(x: Any) -> None:
    """An int-like check on a protobuf enum field, whose names parse too (``"ACTIVE_ONLY"``)."""
    if x not in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        _intlike(x)


def _floatlike(x: Any) -> None:
    try:
        float(x)
    except (TypeError, ValueError):
        raise _Fail() from None


def _bool(x: Any) -> None:
    if not isinstance(x, bool):
        raise _Fail()


def _array(x: Any) -> None:
    if not isinstance(x, list):
        raise _Fail()


def _item_strings(x: Any) -> None:
    if not all(isinstance(item, str) for item in x):
        raise _Fail()


def required(x: Any) -> None:
    if x is None or x == "":
        raise _Fail()


def _at_most(limit: int) -> Callable[[Any], None]:
    def check(x: Any) -> None:
        if int(x) > limit:
            raise _Fail()

    return check


def _fields_present(name: str, *fields: str) -> Callable[[Any], None]:
    """Every item of a list names its ``fields`` (MLflow's log-batch checks)."""

    def check(items: Any) -> None:
        for idx, item in enumerate(items):
            for field in fields:
                if not isinstance(item, dict):
                    continue  # the handler refuses a non-object item with its own message
                value = item.get(field)
                if value is None or value == "":
                    raise _Fail(f"Missing value for required parameter '{name}[{idx}].{field}'.")

    return check


_TYPES = {_string, _intlike, _view_type, _floatlike, _bool, _array, _item_strings}

S, I, F, B, A, R = _string, _intlike, _floatlike, _bool, _array, required

# Per endpoint (path after /2.0/mlflow/), in MLflow's order: parameter → assertions.
SCHEMAS: dict[str, dict[str, list[Callable[[Any], None]]]] = {
    "experiments/create": {"name": [R, S], "artifact_location": [S], "tags": [A]},
    "experiments/get": {"experiment_id": [R, S]},
    "experiments/get-by-name": {"experiment_name": [R, S]},
    "experiments/delete": {"experiment_id": [R, S]},
    "experiments/restore": {"experiment_id": [R, S]},
    "experiments/update": {"experiment_id": [R, S], "new_name": [S, R]},
    "experiments/search": {
        "view_type": [_view_type],
        "max_results": [I],
        "order_by": [A],
        "filter": [S],
        "page_token": [S],
    },
    "experiments/set-experiment-tag": {"experiment_id": [R, S], "key": [R, S], "value": [S]},
    "experiments/delete-experiment-tag": {"experiment_id": [R, S], "key": [R, S]},
    "runs/create": {"experiment_id": [S], "start_time": [I], "run_name": [S]},
    "runs/update": {"run_id": [R, S], "end_time": [I], "status": [S], "run_name": [S]},
    "runs/delete": {"run_id": [R, S]},
    "runs/restore": {"run_id": [R, S]},
    "runs/log-metric": {
        "run_id": [R, S],
        "key": [R, S],
        "value": [R, F],
        "timestamp": [I, R],
        "step": [I],
        "model_id": [S],
        "dataset_name": [S],
        "dataset_digest": [S],
    },
    "runs/log-parameter": {"run_id": [R, S], "key": [R, S], "value": [S]},
    "runs/log-inputs": {"run_id": [R, S], "datasets": [A], "models": [A]},
    "runs/outputs": {"run_id": [R, S], "models": [R, A]},
    "runs/set-tag": {"run_id": [R, S], "key": [R, S], "value": [S]},
    "runs/delete-tag": {"run_id": [R, S], "key": [R, S]},
    "runs/get": {"run_id": [R, S]},
    "runs/search": {
        "experiment_ids": [A],
        "filter": [S],
        "max_results": [I, _at_most(50000)],
        "order_by": [A, _item_strings],
    },
    "runs/log-batch": {
        "run_id": [S, R],
        "metrics": [A, _fields_present("metrics", "key", "value", "timestamp")],
        "params": [A, _fields_present("params", "key")],
        "tags": [A, _fields_present("tags", "key")],
    },
    "runs/log-model": {"run_id": [S, R], "model_json": [S, R]},
    "artifacts/list": {"run_id": [S, R], "path": [S], "page_token": [S]},
    "metrics/get-history": {"run_id": [S, R], "metric_key": [S, R], "page_token": [S]},
    "registered-models/create": {"name": [S, R], "tags": [A], "description": [S]},
    "registered-models/get": {"name": [S, R]},
    "registered-models/update": {"name": [S, R], "description": [S]},
    "registered-models/rename": {"name": [S, R], "new_name": [S, R]},
    "registered-models/delete": {"name": [S, R]},
    "registered-models/search": {
        "filter": [S],
        "max_results": [I, _at_most(1000)],
        "order_by": [A, _item_strings],
        "page_token": [S],
    },
    "registered-models/get-latest-versions": {"name": [S, R], "stages": [A, _item_strings]},
    "registered-models/set-tag": {"name": [S, R], "key": [S, R], "value": [S]},
    "registered-models/delete-tag": {"name": [S, R], "key": [S, R]},
    "registered-models/alias": {"name": [S, R], "alias": [S, R], "version": [S, R]},
    "registered-models/get-by-alias": {"name": [S, R], "alias": [S, R]},
    "model-versions/create": {
        "name": [S, R],
        "source": [S, R],
        "run_id": [S],
        "tags": [A],
        "run_link": [S],
        "description": [S],
        "model_id": [S],
    },
    "model-versions/get": {"name": [S, R], "version": [S, R]},
    "model-versions/update": {"name": [S, R], "version": [S, R], "description": [S]},
    "model-versions/transition-stage": {
        "name": [S, R],
        "version": [S, R],
        "stage": [S, R],
        "archive_existing_versions": [B],
    },
    "model-versions/delete": {"name": [S, R], "version": [S, R]},
    "model-versions/search": {
        "filter": [S],
        "max_results": [I, _at_most(200_000)],
        "order_by": [A, _item_strings],
        "page_token": [S],
    },
    "model-versions/set-tag": {"name": [S, R], "version": [S, R], "key": [S, R], "value": [S]},
    "model-versions/delete-tag": {"name": [S, R], "version": [S, R], "key": [S, R]},
    "logged-models": {
        "experiment_id": [S, R],
        "name": [S],
        "model_type": [S],
        "source_run_id": [S],
        "params": [A],
        "tags": [A],
    },
    "logged-models/search": {
        "experiment_ids": [A, _item_strings, R],
        "filter": [S],
        "datasets": [A],
        "max_results": [I],
        "order_by": [A],
        "page_token": [S],
    },
}
# registered-models/alias is POST (set) and DELETE (remove: no version).
_DELETE_ALIAS = {"name": [S, R], "alias": [S, R]}


def schema_for(path: str, method: str) -> dict[str, list[Callable[[Any], None]]] | None:
    """The schema of an endpoint path (``/api/2.0/mlflow/…``), or None when MLflow has none."""
    marker = "/2.0/mlflow/"
    if marker not in path:
        return None
    name = path.split(marker, 1)[1]
    if name == "registered-models/alias" and method in ("DELETE", "GET"):
        return _DELETE_ALIAS
    return SCHEMAS.get(name)


def _message(param: str, value: Any, fn: Callable[[Any], None], exc: _Fail) -> str:
    if exc.args:
        return exc.args[0] + _API_DOCS
    if fn is required:
        return f"Missing value for required parameter '{param}'." + _API_DOCS
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return (
        f"Invalid value {shown} for parameter '{param}' supplied:  Hint: Value was of type '{type(value).__name__}'."
        + _API_DOCS
    )


def check(schema: dict[str, list[Callable[[Any], None]]], data: dict[str, Any], query: bool) -> None:
    """Refuse ``data`` as MLflow's handler would (the first failing assertion, in schema order).

    ``query`` is true for a GET, whose values are strings: a single value of a repeated field
    counts as a one-item list, and booleans are left to the handler's own parsing.
    """
    for param, fns in schema.items():
        if param not in data and required not in fns:
            continue
        value = data.get(param)
        if param == "run_id" and value is None and "run_uuid" in data:
            value = data.get("run_uuid")
        if query and _array in fns and isinstance(value, str):
            value = [value]
        for fn in fns:
            if fn in _TYPES and (value is None or (query and fn is _bool)):
                continue
            try:
                fn(value)
            except _Fail as exc:
                raise InvalidParameterError(_message(param, value, fn, exc)) from None
