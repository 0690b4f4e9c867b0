"""MLflow 3's logged-model endpoints (``/api/2.0/mlflow/logged-models/…``) and ``runs/outputs``.

The part of the API ``mlflow.<flavor>.log_model`` and ``mlflow.register_model`` use:
create, get, finalize, delete, search, tags, params, the artifact listing of a
model, and ``runs/outputs`` (which links a run to the models it produced). The
models themselves are kept by :mod:`evtrack.tracking.logged_models`; their files
go through the proxied artifact service under ``<experiment_id>/models/<model_id>/``.
A model's metrics, and the runs' model inputs and outputs, are events
(:mod:`evtrack.tracking.model_links`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from evtrack.entities import LifecycleStage, Metric
from evtrack.errors import InvalidParameterError, ResourceNotFoundError
from evtrack.tracking.logged_models import LoggedModel, LoggedModelStore, parse_status
from evtrack.server.rest import convert
from evtrack.server.rest.artifacts import Target, client_uri, list_files
from evtrack.server.rest.protocol import ApiContext, Params, api

_PROTO_STATUS = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
SEARCH_MAX_RESULTS_DEFAULT = 100


def models_of(ctx: ApiContext) -> LoggedModelStore:
    """The logged models of the served store."""
    return LoggedModelStore(ctx.client.store)


def logged_model_json(ctx: ApiContext, model: LoggedModel, metrics: list[Metric] | None = None) -> dict[str, Any]:
    """A logged model as MLflow's ``LoggedModel`` message (``metrics``: its points, read when not given)."""
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp_ms,
        "last_updated_timestamp_ms": model.last_updated_timestamp_ms,
        "artifact_uri": client_uri(ctx.client, ctx.config, model.artifact_location),
        "status": _PROTO_STATUS[model.status],
        "model_type": model.model_type or "",
        "source_run_id": model.source_run_id or "",
    }
    if model.status_message:
        info["status_message"] = model.status_message
    if model.tags:
        info["tags"] = convert.key_values(dict(sorted(model.tags.items())))
    data: dict[str, Any] = {}
    if model.params:
        data["params"] = convert.key_values(dict(sorted(model.params.items())))
    points = ctx.client.logged_model_metrics(model.model_id) if metrics is None else metrics
    if points:
        data["metrics"] = [convert.metric_json(p) for p in points]
    return {"info": info, "data": data}


def _model_id(params: Params) -> str:
    return params.str("model_id", required=True)  # type: ignore[return-value]


# -- create, get, finalize, delete ------------------------------------------------------------


@api("logged-models", write=True)
def create_logged_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """A new PENDING model in an active experiment → ``{"model"}``."""
    experiment_id = params.str("experiment_id", required=True)
    experiment = ctx.client.get_experiment(experiment_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterError(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )
    model = models_of(ctx).create(
        experiment_id,
        experiment.artifact_location,
        name=params.str("name") or None,
        model_type=params.str("model_type"),
        source_run_id=params.str("source_run_id"),
        tags=dict(convert.parse_key_values(params.data.get("tags"), "tags")),
        params=dict(convert.parse_key_values(params.data.get("params"), "params")),
    )
    return {"model": logged_model_json(ctx, model)}


@api("logged-models/{model_id}", methods=("GET",))
def get_logged_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """One model (``allow_deleted=true`` also finds a deleted one) → ``{"model"}``."""
    model = models_of(ctx).get(_model_id(params), allow_deleted=params.bool("allow_deleted"))
    return {"model": logged_model_json(ctx, model)}


@api("logged-models/{model_id}", methods=("PATCH",), write=True)
def finalize_logged_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Set a model's final status (LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED) → ``{"model"}``."""
    if "status" not in params:
        raise InvalidParameterError("Missing value for required parameter 'status'.")
    status = parse_status(params.data.get("status"))
    model = models_of(ctx).update(_model_id(params), lambda m: replace(m, status=status))
    return {"model": logged_model_json(ctx, model)}


@api("logged-models/{model_id}", methods=("DELETE",), write=True)
def delete_logged_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Mark a model deleted (its files stay until garbage collection) → ``{}``."""
    models_of(ctx).update(_model_id(params), lambda m: replace(m, deleted=True))
    return {}


# -- tags and params ----------------------------------------------------------------------------


@api("logged-models/{model_id}/tags", methods=("PATCH",), write=True)
def set_logged_model_tags(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Set (or overwrite) tags on a model → ``{}``."""
    tags = dict(convert.parse_key_values(params.data.get("tags"), "tags"))
    models_of(ctx).update(_model_id(params), lambda m: replace(m, tags={**m.tags, **tags}))
    return {}


@api("logged-models/{model_id}/tags/{tag_key}", methods=("DELETE",), write=True)
def delete_logged_model_tag(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Remove one tag; RESOURCE_DOES_NOT_EXIST when the model has no such tag → ``{}``."""
    model_id, key = _model_id(params), params.str("tag_key", required=True)

    def drop(m: LoggedModel) -> LoggedModel:
        if key not in m.tags:
            raise ResourceNotFoundError(f"No tag with key {key!r} found for model with ID {model_id!r}.")
        return replace(m, tags={k: val for k, val in m.tags.items() if k != key})

    models_of(ctx).update(model_id, drop)
    return {}


@api("logged-models/{model_id}/params", write=True)
def log_logged_model_params(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Add params to a model → ``{}``."""
    new = dict(convert.parse_key_values(params.data.get("params"), "params"))
    models_of(ctx).update(_model_id(params), lambda m: replace(m, params={**m.params, **new}))
    return {}


@api("logged-models/{model_id}/artifacts/directories", methods=("GET",))
def list_logged_model_artifacts(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """A model's files directly under ``artifact_directory_path`` → ``{"root_uri", "files"}``."""
    model = models_of(ctx).get(_model_id(params))
    rel = params.str("artifact_directory_path") or ""
    from evtrack.eventlog import validation as v

    rel = v.validate_artifact_path(rel)
    files = list_files(Target(model.artifact_location, rel, model_id=model.model_id))
    if rel:
        files = [{**f, "path": f"{rel}/{f['path']}"} for f in files]
    out: dict[str, Any] = {"root_uri": client_uri(ctx.client, ctx.config, model.artifact_location)}
    if files:
        out["files"] = files
    return out


# -- search -------------------------------------------------------------------------------------


@api("logged-models/search")
def search_logged_models(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Models of ``experiment_ids`` matching ``filter`` → ``{"models", "next_page_token"}``."""
    experiment_ids = [str(e) for e in params.list("experiment_ids")]
    if not experiment_ids:
        raise InvalidParameterError("Missing value for required parameter 'experiment_ids'.")
    datasets = [
        {"dataset_name": fields.str(f"{path}.dataset_name"), "dataset_digest": fields.str(f"{path}.dataset_digest")}
        for path, fields in convert.request_objects(params.list("datasets"), "datasets")
    ]
    limit = params.int("max_results", default=SEARCH_MAX_RESULTS_DEFAULT)
    metrics = ctx.client.logged_model_metrics_by_model()
    page, token = models_of(ctx).search(
        experiment_ids,
        params.str("filter") or None,
        _orders(params.data.get("order_by")),
        limit,
        params.str("page_token"),
        datasets=datasets or None,
        metrics=metrics,
    )
    out: dict[str, Any] = {}
    if page:
        out["models"] = [logged_model_json(ctx, m, metrics.get(m.model_id, [])) for m in page]
    if token:
        out["next_page_token"] = token
    return out


def _orders(items: Any) -> list[dict[str, Any]]:
    """``order_by`` of a request (``[{"field_name", "ascending", "dataset_name", "dataset_digest"}]``)."""
    orders = []
    for item in items if isinstance(items, list) else ([items] if items else []):
        if not isinstance(item, dict) or not isinstance(item.get("field_name"), str):
            raise InvalidParameterError(f'Invalid order_by item {item!r}: expected {{"field_name", "ascending"}}')
        orders.append({**item, "ascending": item.get("ascending", True) is not False})
    return orders


# -- runs/outputs -------------------------------------------------------------------------------


@api("runs/outputs", write=True)
def log_outputs(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Record that a run produced logged models (``models: [{model_id, step}]``) → ``{}``."""
    run_id = params.str("run_id", required=True)
    items = params.data.get("models")
    if not isinstance(items, list) or not items:
        raise InvalidParameterError("Missing value for required parameter 'models'.")
    outputs = []
    for path, fields in convert.request_objects(items, "models"):
        outputs.append({"model_id": fields.str(f"{path}.model_id", required=True), "step": fields.int(f"{path}.step")})
    ctx.client.log_outputs(run_id, outputs)
    return {}
