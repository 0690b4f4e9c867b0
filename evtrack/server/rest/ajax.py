"""The endpoints MLflow's web UI calls under ``/ajax-api/2.0/mlflow/…`` only.

``metrics/get-history-bulk`` (one metric of several runs, for the charts of a comparison) and
``experiments/search-datasets`` (the dataset summaries of the experiment page). evtrack serves
them under ``/api/2.0/mlflow/…`` as well (its routes are the same under both prefixes).
"""

from __future__ import annotations

from typing import Any

from evtrack.errors import InvalidParameterError, ResourceNotFoundError
from evtrack.server.rest import convert
from evtrack.server.rest.protocol import ApiContext, Params, api

MAX_HISTORY_RESULTS = 25000
MAX_RUN_IDS_PER_REQUEST = 100
MAX_EXPERIMENT_IDS_PER_REQUEST = 20
MAX_DATASET_SUMMARIES = 1000


@api("metrics/get-history-bulk", methods=("GET",))
def get_metric_history_bulk(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Every point of ``metric_key`` for each ``run_id`` (runs in id order, points by time)."""
    run_ids = [str(r) for r in params.list("run_id") if r not in (None, "")]
    if not run_ids:
        raise InvalidParameterError("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > MAX_RUN_IDS_PER_REQUEST:
        raise InvalidParameterError(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_RUN_IDS_PER_REQUEST}"
            f" run_ids. Received {len(run_ids)} run_ids."
        )
    key = params.str("metric_key")
    if key is None:
        raise InvalidParameterError("GetMetricHistoryBulk request must specify a metric_key.")
    limit = min(params.int("max_results", default=MAX_HISTORY_RESULTS), MAX_HISTORY_RESULTS)
    out: list[dict[str, Any]] = []
    for run_id in sorted(set(run_ids)):
        try:
            history = ctx.client.get_metric_history(run_id, key)
        except ResourceNotFoundError:
            continue  # as MLflow's: an unknown run contributes no points
        points = sorted(history, key=lambda m: (m.timestamp, m.step, m.value))
        out += [convert.metric_json(m, run_id) for m in points]
    return {"metrics": out[:limit]}


@api("experiments/search-datasets")
def search_datasets(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """The distinct (experiment, dataset name, digest, context) the runs of experiments used."""
    from evtrack.query.search import engine_of

    experiment_ids = [str(e) for e in params.list("experiment_ids")]
    if not experiment_ids:
        raise InvalidParameterError("SearchDatasets request must specify at least one experiment_id.")
    if len(experiment_ids) > MAX_EXPERIMENT_IDS_PER_REQUEST:
        raise InvalidParameterError(
            f"SearchDatasets request cannot specify more than {MAX_EXPERIMENT_IDS_PER_REQUEST}"
            f" experiment_ids. Received {len(experiment_ids)} experiment_ids."
        )
    rows = (
        engine_of(ctx.client._backend)
        .snapshot()
        .rows(
            "SELECT DISTINCT r.experiment_id, d.name, d.digest, d.context FROM inputs d "
            "JOIN runs r USING (run_id) WHERE r.experiment_id IN (SELECT unnest(?::VARCHAR[])) "
            "ORDER BY 1, 2, 3, 4 NULLS FIRST LIMIT ?",
            [experiment_ids, MAX_DATASET_SUMMARIES],
        )
    )
    summaries = []
    for experiment_id, name, digest, context in rows:
        summary = {"experiment_id": str(experiment_id), "name": name, "digest": digest}
        if context is not None:
            summary["context"] = context
        summaries.append(summary)
    return {"dataset_summaries": summaries} if summaries else {}
