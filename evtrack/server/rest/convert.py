"""Entities as MLflow's REST JSON, and the artifact URIs the server reports to clients.

JSON shapes follow MLflow's protobuf messages as its server prints them: field
names in snake_case, int64 fields as JSON numbers, unset fields and empty lists
left out, key/value maps as lists of ``{"key", "value"}``, and doubles that are
not finite as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.

Artifact URIs: with ``serve_artifacts`` on, locations in the store's default
layout (``<store>/artifacts/<experiment_id>[/<run_id>/artifacts]``) are reported
in MLflow's proxied form (``mlflow-artifacts:/<experiment_id>[/<run_id>/artifacts]``)
so MLflow's client uploads and downloads through the server; any other location
is reported as stored. :func:`resolve_proxied_path` maps the proxied form back.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from evtrack.entities import DatasetInput, Experiment, Metric, Run, RunInfo
from evtrack.errors import InvalidParameterError
from evtrack.server.rest.protocol import Params

PROXIED_SCHEME = "mlflow-artifacts:"
ARTIFACTS_DIR = "artifacts"


# -- numbers ------------------------------------------------------------------------------


def json_float(value: float | None) -> float | str | None:
    """A double as protobuf's JSON prints it: NaN and infinities as strings."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {}}


def key_values(items: Mapping[str, Any] | Iterable[Any]) -> list[dict[str, Any]]:
    """A map (or entities with ``key``/``value``) as MLflow's list of ``{"key", "value"}``."""
    if isinstance(items, Mapping):
        return [{"key": k, "value": v} for k, v in items.items()]
    return [{"key": t.key, "value": t.value} for t in items]


# -- artifact URIs ------------------------------------------------------------------------


def store_artifacts_root(config: Any) -> str:
    """The URI of the served store's ``artifacts`` directory (the root of proxied paths)."""
    from evtrack.read.backend import get_backend

    return f"{get_backend(config.tracking_uri).store.uri}/{ARTIFACTS_DIR}"


def client_artifact_uri(
    config: Any, stored_uri: str | None, experiment_id: str, run_id: str | None = None
) -> str | None:
    """The artifact location to report to clients for an experiment (or one of its runs)."""
    if not stored_uri or not config.serve_artifacts:
        return stored_uri
    suffix = f"{experiment_id}/{run_id}/{ARTIFACTS_DIR}" if run_id else str(experiment_id)
    if stored_uri.rstrip("/") != f"{store_artifacts_root(config)}/{suffix}":
        return stored_uri
    return f"{PROXIED_SCHEME}/{suffix}"


def proxied_relative_path(uri: str) -> str | None:
    """The path inside a ``mlflow-artifacts:`` URI (None for any other URI).

    Both ``mlflow-artifacts:/1/x`` and ``mlflow-artifacts://host:port/1/x`` name ``1/x``.
    """
    if not uri.startswith(PROXIED_SCHEME):
        return None
    rest = uri[len(PROXIED_SCHEME) :]
    if rest.startswith("//"):  # an authority (host:port) before the path
        rest = rest[2:].partition("/")[2]
    return rest.strip("/")


def check_relative_path(path: str) -> str:
    """A proxied artifact path, refused when it could leave the artifacts root."""
    path = path.strip("/")
    parts = path.split("/") if path else []
    if "\x00" in path or "\\" in path or any(p in ("..", ".") for p in parts) or "//" in path:
        raise InvalidParameterError(f"Invalid artifact path: '{path}'")
    if path and posixpath.normpath(path) != path:
        raise InvalidParameterError(f"Invalid artifact path: '{path}'")
    return path


def resolve_proxied_path(config: Any, path: str) -> str:
    """The stored URI of a proxied artifact path (``<experiment_id>/<run_id>/artifacts/<file>``)."""
    path = check_relative_path(path)
    root = store_artifacts_root(config)
    return f"{root}/{path}" if path else root


def proxied_store_key(path: str) -> str:
    """The key, in the served store, of a proxied artifact path."""
    path = check_relative_path(path)
    return f"{ARTIFACTS_DIR}/{path}" if path else ARTIFACTS_DIR


def stored_artifact_location(config: Any, requested: str | None) -> str | None:
    """The location to store for an artifact location a client asked for (proxied → stored)."""
    if not requested:
        return None
    relative = proxied_relative_path(requested)
    return requested if relative is None else resolve_proxied_path(config, relative)


def default_experiment_root(config: Any) -> str | None:
    """The root under which experiments created through the server get their directory
    (None: the store's own layout). A proxied root (``mlflow-artifacts:/…``) names the store's."""
    root = stored_artifact_location(config, getattr(config, "default_artifact_root", None))
    return root.rstrip("/") if root else None


# -- entities -----------------------------------------------------------------------------


DEFAULT_WORKSPACE = "default"  # MLflow 3's experiments name their workspace; evtrack has one


def experiment_json(exp: Experiment, config: Any) -> dict[str, Any]:
    """An experiment as MLflow's ``Experiment`` message."""
    return _drop_none(
        {
            "experiment_id": exp.experiment_id,
            "name": exp.name,
            "artifact_location": client_artifact_uri(config, exp.artifact_location, exp.experiment_id),
            "lifecycle_stage": exp.lifecycle_stage,
            "last_update_time": exp.last_update_time,
            "creation_time": exp.creation_time,
            "tags": key_values(exp.tags),
            "workspace": DEFAULT_WORKSPACE,
        }
    )


def run_info_json(info: RunInfo, config: Any) -> dict[str, Any]:
    """A run's info as MLflow's ``RunInfo`` message (``run_uuid`` repeated for old clients)."""
    return _drop_none(
        {
            "run_uuid": info.run_id,
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "run_name": info.run_name,
            "user_id": info.user_id,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "artifact_uri": client_artifact_uri(config, info.artifact_uri, info.experiment_id, info.run_id),
            "lifecycle_stage": info.lifecycle_stage,
        }
    )


def metric_json(metric: Metric, run_id: str | None = None, named_run: bool = True) -> dict[str, Any]:
    """One metric point as MLflow's ``Metric`` message (``named_run=False``: without its run, as
    MLflow's ``metrics/get-history`` gives it)."""
    return _drop_none(
        {
            "key": metric.key,
            "value": json_float(metric.value),
            "timestamp": metric.timestamp,
            "step": metric.step,
            "run_id": (run_id or metric.run_id) if named_run else None,
            "model_id": metric.model_id,
            "dataset_name": metric.dataset_name,
            "dataset_digest": metric.dataset_digest,
        }
    )


def dataset_input_json(item: DatasetInput) -> dict[str, Any]:
    """A dataset input as MLflow's ``DatasetInput`` message."""
    d = item.dataset
    return _drop_none(
        {
            "tags": key_values(item.tags),
            "dataset": _drop_none(
                {
                    "name": d.name,
                    "digest": d.digest,
                    "source_type": d.source_type,
                    "source": d.source,
                    "schema": d.schema,
                    "profile": d.profile,
                }
            ),
        }
    )


def run_json(
    run: Run,
    config: Any,
    latest: Mapping[str, tuple[int, int]] | None = None,
    outputs: list[tuple[str, int]] | None = None,
    model_inputs: list[str] | None = None,
) -> dict[str, Any]:
    """A run as MLflow's ``Run`` message.

    ``latest`` gives each metric's (step, timestamp) of its latest value; metrics
    without an entry are reported at step 0, timestamp 0. ``inputs`` is always there (``{}``
    without datasets), with ``model_inputs`` (the logged models the run used) when there are any;
    ``outputs`` (the (model id, step) pairs the run produced) when given, as MLflow's reads of a
    run give it and its ``runs/create`` does not.
    """
    latest = latest or {}
    metrics = []
    for key, value in run.data.metrics.items():
        step, timestamp = latest.get(key, (0, 0))
        metrics.append({"key": key, "value": json_float(value), "timestamp": timestamp, "step": step})
    out: dict[str, Any] = {
        "info": run_info_json(run.info, config),
        "data": _drop_none(
            {"metrics": metrics, "params": key_values(run.data.params), "tags": key_values(run.data.tags)}
        ),
    }
    inputs: dict[str, Any] = {}
    if run.inputs.dataset_inputs:
        inputs["dataset_inputs"] = [dataset_input_json(d) for d in run.inputs.dataset_inputs]
    if model_inputs:
        inputs["model_inputs"] = [{"model_id": m} for m in model_inputs]
    out["inputs"] = inputs
    if outputs is not None:
        out["outputs"] = {"model_outputs": [{"model_id": m, "step": s} for m, s in outputs]} if outputs else {}
    return out


# -- request fields -----------------------------------------------------------------------


def request_objects(items: Any, name: str) -> Iterator[tuple[str, Params]]:
    """Each object of a request's list field, with its path (``name[i]``) and its fields as
    :class:`Params` keyed ``name[i].field`` so a missing or bad field is named exactly."""
    if not isinstance(items, list):
        raise InvalidParameterError(
            f'Invalid value for parameter \'{name}\' supplied: expected a list of {{"key": ..., "value": ...}} objects'
        )
    for i, item in enumerate(items):
        path = f"{name}[{i}]"
        if not isinstance(item, dict):
            raise InvalidParameterError(f"Invalid value for parameter '{path}' supplied: expected an object")
        yield path, Params({f"{path}.{k}": v for k, v in item.items()})


def parse_key_values(items: Any, name: str) -> list[tuple[str, str]]:
    """A request's list of ``{"key", "value"}`` objects as (key, value) pairs (value "" when unset)."""
    if items is None or items == "":
        return []
    return [
        (fields.str(f"{path}.key", required=True), fields.str(f"{path}.value", default=""))
        for path, fields in request_objects(items, name)
    ]


_VIEW_TYPES = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}


def parse_view_type(value: Any, name: str) -> int:
    """A ``ViewType`` given by name (as protobuf's JSON) or number; ACTIVE_ONLY when unset."""
    if isinstance(value, list):
        value = value[-1] if value else None
    if value is None or value == "":
        return 1
    if isinstance(value, int) and not isinstance(value, bool) and value in _VIEW_TYPES.values():
        return value
    text = str(value).strip().upper()
    if text in _VIEW_TYPES:
        return _VIEW_TYPES[text]
    if text.isdigit() and int(text) in _VIEW_TYPES.values():
        return int(text)
    raise InvalidParameterError(
        f"Invalid value {value!r} for parameter '{name}' supplied: expected one of {', '.join(_VIEW_TYPES)}"
    )
