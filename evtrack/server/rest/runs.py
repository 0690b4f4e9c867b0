"""MLflow's run endpoints (``/api/2.0/mlflow/runs/…``) and metric histories (``metrics/…``)."""

from __future__ import annotations

import json
from typing import Any

from evtrack.entities import Dataset, DatasetInput, InputTag, Metric, Param, Run, RunTag
from evtrack.errors import InvalidParameterError
from evtrack.server.rest import convert
from evtrack.server.rest.protocol import ApiContext, Params, api
from evtrack.read import views

# RunStatus numbers of MLflow's protobuf enum (clients may send either the name or the number).
_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
MAX_RUNS_HISTORY_BULK = 100
MAX_RESULTS_PER_RUN = 2500
_MODEL_REQUIRED_FIELDS = ("artifact_path", "flavors", "utc_time_created", "run_id")


def run_id_of(params: Params) -> str:
    """The run a request names (``run_id``, or the deprecated ``run_uuid``)."""
    return params.str("run_id") or params.str("run_uuid") or params.str("run_id", required=True)


def _run_with_latest(ctx: ApiContext, run_id: str) -> tuple[Run, dict[str, tuple[int, int]]]:
    """A run and the (step, timestamp) of each metric's latest value."""
    client = ctx.client
    state = client._run_view(run_id)
    run = views.run(state, client._run_state(run_id, state))
    latest = {k: (s.latest[0], s.latest[1]) for k, s in state.metrics.get(run_id, {}).items() if s.latest}
    return run, latest


# -- runs -----------------------------------------------------------------------------------


@api("runs/create", write=True)
def create_run(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Create a RUNNING run → ``{"run"}``; the user is the request's ``user_id``, else the caller."""
    tags = dict(convert.parse_key_values(params.data.get("tags"), "tags"))
    run = ctx.client.create_run(
        params.str("experiment_id") or "0",
        start_time=params.int("start_time"),
        tags=tags,
        run_name=params.str("run_name") or None,
        user_id=params.str("user_id") or ctx.user,
    )
    return {"run": convert.run_json(run, ctx.config)}


@api("runs/get", methods=("GET",))
def get_run(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """One run with its params, latest metrics, tags and inputs → ``{"run"}``."""
    run, latest = _run_with_latest(ctx, run_id_of(params))
    run_id = run.info.run_id
    inputs, outputs = ctx.client.model_links_of_runs(run_id)
    return {"run": convert.run_json(run, ctx.config, latest, outputs.get(run_id, []), inputs.get(run_id))}


def _status(params: Params) -> str | None:
    value = params.data.get("status")
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value not in _STATUS_NUMBERS:
            raise InvalidParameterError(
                f"Invalid run status: {value!r}. Valid run status strings: {list(_STATUS_NUMBERS.values())}"
            )
        return _STATUS_NUMBERS[value]
    return params.str("status")


@api("runs/update", write=True)
def update_run(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Change a run's status, end time and/or name → ``{"run_info"}``."""
    run_id = run_id_of(params)
    status, end_time = _status(params), params.int("end_time")
    name = params.str("run_name") or None
    client = ctx.client
    if end_time is not None:
        client.set_terminated(run_id, status or client.get_run(run_id).info.status, end_time)
        if name is not None:
            client.update_run(run_id, name=name)
    elif status is not None or name is not None:
        client.update_run(run_id, status, name)
    return {"run_info": convert.run_info_json(client.get_run(run_id).info, ctx.config)}


@api("runs/delete", write=True)
def delete_run(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Mark a run deleted."""
    ctx.client.delete_run(params.str("run_id", required=True))
    return {}


@api("runs/restore", write=True)
def restore_run(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Bring a deleted run back."""
    ctx.client.restore_run(params.str("run_id", required=True))
    return {}


@api("runs/search", methods=("POST", "GET"))
def search_runs(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """One page of runs matching a filter → ``{"runs", "next_page_token"}``."""
    found, latest = ctx.client._search_runs_points(
        [str(e) for e in params.list("experiment_ids")],
        filter_string=params.str("filter") or "",
        run_view_type=convert.parse_view_type(params.data.get("run_view_type"), "run_view_type"),
        max_results=params.int("max_results", default=views.SEARCH_MAX_RESULTS_DEFAULT),
        order_by=[str(o) for o in params.list("order_by")] or None,
        page_token=params.str("page_token"),
    )
    out: dict[str, Any] = {}
    if found:
        _, outputs = ctx.client.model_links_of_runs()  # MLflow's search gives outputs, not model inputs
        out["runs"] = [
            convert.run_json(r, ctx.config, latest.get(r.info.run_id), outputs.get(r.info.run_id, [])) for r in found
        ]
    if found.token:
        out["next_page_token"] = found.token
    return out


# -- logging --------------------------------------------------------------------------------


@api("runs/log-metric", write=True)
def log_metric(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Log one metric point (``timestamp`` required, ``step`` 0 by default)."""
    run_id = run_id_of(params)
    key = params.str("key", required=True)
    value = params.float("value", required=True)
    timestamp = params.int("timestamp", required=True)
    ctx.client.log_metric(
        run_id,
        key,
        value,
        timestamp,
        params.int("step", default=0),
        model_id=params.str("model_id") or None,
        dataset_name=params.str("dataset_name") or None,
        dataset_digest=params.str("dataset_digest") or None,
    )
    return {}


@api("runs/log-parameter", write=True)
def log_param(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Log a parameter (immutable once logged)."""
    run_id = run_id_of(params)
    ctx.client.log_param(run_id, params.str("key", required=True), params.str("value", default=""))
    return {}


@api("runs/set-tag", write=True)
def set_tag(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Set a tag on a run."""
    run_id = run_id_of(params)
    ctx.client.set_tag(run_id, params.str("key", required=True), params.str("value", default=""))
    return {}


@api("runs/delete-tag", write=True)
def delete_tag(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Remove a tag from a run."""
    run_id = params.str("run_id", required=True)
    ctx.client.delete_tag(run_id, params.str("key", required=True))
    return {}


def _batch_metrics(items: list[Any]) -> list[Metric]:
    return [
        Metric(
            fields.str(f"{path}.key", required=True),
            fields.float(f"{path}.value", required=True),
            fields.int(f"{path}.timestamp", required=True),
            fields.int(f"{path}.step", default=0),
            model_id=fields.str(f"{path}.model_id") or None,
            dataset_name=fields.str(f"{path}.dataset_name") or None,
            dataset_digest=fields.str(f"{path}.dataset_digest") or None,
        )
        for path, fields in convert.request_objects(items, "metrics")
    ]


@api("runs/log-batch", write=True)
def log_batch(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Log metrics, params and tags at once (MLflow's batch limits apply)."""
    run_id = params.str("run_id", required=True)
    ctx.client.log_batch(
        run_id,
        metrics=_batch_metrics(params.list("metrics")),
        params=[Param(k, v) for k, v in convert.parse_key_values(params.data.get("params"), "params")],
        tags=[RunTag(k, v) for k, v in convert.parse_key_values(params.data.get("tags"), "tags")],
    )
    return {}


def _dataset_input(item: Any, path: str) -> DatasetInput:
    if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
        raise InvalidParameterError(
            f"Invalid value for parameter '{path}' supplied: expected an object with a 'dataset' object"
        )
    d = item["dataset"]
    dataset = Dataset(
        d.get("name"), d.get("digest"), d.get("source_type"), d.get("source"), d.get("schema"), d.get("profile")
    )
    tags = [InputTag(k, v) for k, v in convert.parse_key_values(item.get("tags"), f"{path}.tags")]
    return DatasetInput(dataset, tags)


@api("runs/log-inputs", write=True)
def log_inputs(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Record the datasets a run used."""
    run_id = params.str("run_id", required=True)
    datasets = [_dataset_input(item, f"datasets[{i}]") for i, item in enumerate(params.list("datasets"))]
    ctx.client.log_inputs(run_id, datasets=datasets, models=params.list("models") or None)
    return {}


@api("runs/log-model", write=True)
def log_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Record a logged model in the run's ``mlflow.log-model.history`` tag (MLflow's deprecated call)."""
    from evtrack.models.model import Model
    from evtrack.models.run_logging import record_logged_model

    run_id = params.str("run_id", required=True)
    text = params.str("model_json", required=True)
    try:
        model = json.loads(text)
    except ValueError:
        model = None
    if not isinstance(model, dict):
        raise InvalidParameterError(f"Malformed model info. \n {text} \n is not a valid JSON.")
    missing = [f for f in _MODEL_REQUIRED_FIELDS if f not in model]
    if missing:
        raise InvalidParameterError(f"Model json is missing mandatory fields: {set(missing)}")
    record_logged_model(ctx.client, run_id, Model.from_dict(model))
    return {}


# -- metric histories -----------------------------------------------------------------------


@api("metrics/get-history", methods=("GET",))
def get_metric_history(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Every point of one metric, paged when ``max_results`` is given → ``{"metrics", "next_page_token"}``."""
    run_id = run_id_of(params)
    key = params.str("metric_key", required=True)
    max_results = params.int("max_results")
    if max_results is not None and max_results <= 0:
        raise InvalidParameterError(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer."
        )
    history = ctx.client.get_metric_history(run_id, key)
    token = params.str("page_token")
    if max_results is None and not token:
        points, next_token = list(history), None
    else:
        page = views.page(history, max_results or len(history) or 1, token)
        points, next_token = list(page), page.token
    out: dict[str, Any] = {}
    if points:
        out["metrics"] = [convert.metric_json(m, named_run=False) for m in points]
    if next_token:
        out["next_page_token"] = next_token
    return out


def _sample(points: list[Metric], limit: int) -> list[Metric]:
    """At most ``limit`` of the points (ordered by step, timestamp, value) as MLflow's SQL store
    samples them: the points fall into ``limit`` buckets as SQL's ``NTILE`` deals them (the first
    ``len % limit`` buckets one point larger), the first point of each bucket is kept, and the
    last point ends the sample (replacing the last pick when the sample is full)."""
    total = len(points)
    if total <= limit:
        return points
    size, larger = divmod(total, limit)
    picked, start = [], 0
    for bucket in range(limit):
        picked.append(start)
        start += size + (1 if bucket < larger else 0)
    if picked[-1] != total - 1:
        picked[-1] = total - 1
    return [points[i] for i in picked]


@api("metrics/get-history-bulk-interval", methods=("GET",))
def get_metric_history_bulk_interval(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """One metric of several runs, sampled to ``max_results`` points per run (for charts)."""
    run_ids = [str(r) for r in params.list("run_ids")]
    if not run_ids:
        params.str("run_ids", required=True)
    if len(run_ids) > MAX_RUNS_HISTORY_BULK:
        raise InvalidParameterError(
            f"GetMetricHistoryBulkInterval request must specify at most "
            f"{MAX_RUNS_HISTORY_BULK} run_ids. Received {len(run_ids)} run_ids."
        )
    key = params.str("metric_key", required=True)
    limit = params.int("max_results", default=MAX_RESULTS_PER_RUN)
    if not 1 <= limit <= MAX_RESULTS_PER_RUN:
        raise InvalidParameterError(f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}.")
    start, end = params.int("start_step"), params.int("end_step")
    if (start is None) != (end is None):
        raise InvalidParameterError("If either start step or end step are specified, both must be specified.")
    if start is not None and start > end:
        raise InvalidParameterError(
            f"end_step must be greater than start_step. Found start_step={start} and end_step={end}."
        )
    metrics = []
    for run_id in run_ids:  # in the order asked, as MLflow's
        history = ctx.client.get_metric_history(run_id, key)
        points = sorted(
            (m for m in history if start is None or start <= m.step <= end),
            key=lambda m: (m.step, m.timestamp, m.value),
        )
        metrics += [convert.metric_json(m, run_id) for m in _sample(points, limit)]
    return {"metrics": metrics} if metrics else {}
