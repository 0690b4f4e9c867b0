"""MLflow's experiment endpoints (``/api/2.0/mlflow/experiments/…``)."""

from __future__ import annotations

from typing import Any

from evtrack.errors import ResourceNotFoundError
from evtrack.server.rest import convert
from evtrack.server.rest.protocol import ApiContext, Params, api


@api("experiments/create", write=True)
def create_experiment(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Create an experiment → ``{"experiment_id"}``."""
    name = params.str("name", required=True)
    location = convert.stored_artifact_location(ctx.config, params.str("artifact_location"))
    tags = dict(convert.parse_key_values(params.data.get("tags"), "tags"))
    experiment_id = ctx.client.create_experiment(
        name, location, tags, artifact_root=convert.default_experiment_root(ctx.config)
    )
    return {"experiment_id": experiment_id}


@api("experiments/get", methods=("GET",))
def get_experiment(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """One experiment by id (active or deleted) → ``{"experiment"}``."""
    exp = ctx.client.get_experiment(params.str("experiment_id", required=True))
    return {"experiment": convert.experiment_json(exp, ctx.config)}


@api("experiments/get-by-name", methods=("GET",))
def get_experiment_by_name(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """One experiment by name → ``{"experiment"}``; RESOURCE_DOES_NOT_EXIST when there is none."""
    name = params.str("experiment_name", required=True)
    exp = ctx.client.get_experiment_by_name(name)
    if exp is None:
        raise ResourceNotFoundError(f"Could not find experiment with name '{name}'")
    return {"experiment": convert.experiment_json(exp, ctx.config)}


@api("experiments/search", methods=("POST", "GET"))
def search_experiments(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """One page of experiments → ``{"experiments", "next_page_token"}``."""
    found = ctx.client.search_experiments(
        view_type=convert.parse_view_type(params.data.get("view_type"), "view_type"),
        max_results=params.int("max_results"),
        filter_string=params.str("filter"),
        order_by=[str(o) for o in params.list("order_by")] or None,
        page_token=params.str("page_token"),
    )
    out: dict[str, Any] = {}
    if found:
        out["experiments"] = [convert.experiment_json(e, ctx.config) for e in found]
    if found.token:
        out["next_page_token"] = found.token
    return out


@api("experiments/update", write=True)
def update_experiment(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Rename an experiment."""
    experiment_id = params.str("experiment_id", required=True)
    ctx.client.rename_experiment(experiment_id, params.str("new_name", required=True))
    return {}


@api("experiments/delete", write=True)
def delete_experiment(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Mark an experiment (and its runs) deleted."""
    ctx.client.delete_experiment(params.str("experiment_id", required=True))
    return {}


@api("experiments/restore", write=True)
def restore_experiment(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Bring a deleted experiment back."""
    ctx.client.restore_experiment(params.str("experiment_id", required=True))
    return {}


@api("experiments/set-experiment-tag", write=True)
def set_experiment_tag(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Set a tag on an experiment."""
    experiment_id = params.str("experiment_id", required=True)
    key = params.str("key", required=True)
    ctx.client.set_experiment_tag(experiment_id, key, params.str("value", default=""))
    return {}


@api("experiments/delete-experiment-tag", write=True)
def delete_experiment_tag(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Remove a tag from an experiment."""
    experiment_id = params.str("experiment_id", required=True)
    ctx.client.delete_experiment_tag(experiment_id, params.str("key", required=True))
    return {}
