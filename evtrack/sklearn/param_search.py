"""A ``GridSearchCV`` / ``RandomizedSearchCV`` fit as a parent run with one child run per candidate.

As MLflow: the parent gets ``best_<param>`` params, the ``best_cv_score`` metric
and ``cv_results.csv``; the ``max_tuning_runs`` best candidates (by
``rank_test_score``, or the first ``rank_test_*`` column) become finished child
runs, tagged with the parent's id and the seed estimator's name and class, with
the seed's params overlaid by the candidate's and the aggregate columns of
``cv_results_`` (``mean_test_score``, ``std_fit_time``, … — not the per-split or
``param_*`` ones) as metrics.
"""

from __future__ import annotations

import logging
import numbers
import tempfile
import warnings
from typing import Any

from evtrack.entities import Metric, Param
from evtrack.eventlog.events import now_ms
from evtrack.sklearn.training_content import estimator_tags, is_parameter_search
from evtrack.tracking.client import PARENT_RUN_TAG

_log = logging.getLogger("evtrack.sklearn")


def best_params(search: Any) -> dict[str, Any]:
    """The ``best_<param>`` params of a fitted search (empty if it has no ``best_params_``)."""
    return {f"best_{k}": v for k, v in getattr(search, "best_params_", {}).items()}


def _rank_column(columns: list[str], max_tuning_runs: int) -> str:
    if "rank_test_score" in columns:
        return "rank_test_score"
    column = next(c for c in columns if "rank_test_" in c)
    warnings.warn(
        f"Top {max_tuning_runs} child runs will be created based on ordering in {column} column.  "
        "You can choose not to limit the number of child runs created by setting `max_tuning_runs=None`.",
        stacklevel=2,
    )
    return column


def _describe(count: int, total: int) -> str:
    count = min(count, total)
    logged = {0: "no runs", 1: "the best run"}.get(count, f"the {count} best runs")
    rest = total - count
    omitted = "no runs" if rest <= 0 else ("one run" if rest == 1 else f"{rest} runs")
    return f"Logging {logged}, {omitted} will be omitted."


def log_child_runs(
    client: Any,
    search: Any,
    parent: Any,
    max_tuning_runs: int | None,
    child_tags: dict[str, Any],
    dataset_input: Any = None,
) -> list[str]:
    """Create the finished child runs of a fitted search under ``parent``; returns their ids."""
    import pandas as pd

    seed = search.estimator
    base = seed.get_params(deep=not is_parameter_search(seed))
    results = pd.DataFrame.from_dict(search.cv_results_)
    if max_tuning_runs is not None:
        results = results.nsmallest(max_tuning_runs, _rank_column(list(results.columns), max_tuning_runs))
        _log.info(_describe(max_tuning_runs, len(search.cv_results_["params"])))
    start, end = parent.info.start_time, now_ms()
    ids = []
    for _, row in results.iterrows():
        tags = {**child_tags, PARENT_RUN_TAG: parent.info.run_id, **estimator_tags(seed)}
        run = client.create_run(parent.info.experiment_id, start_time=start, tags=tags)
        rid = run.info.run_id
        params = {**base, **row.get("params", {})}
        metrics = {
            k: v
            for k, v in row.items()
            if not str(k).startswith(("param", "split")) and isinstance(v, numbers.Number) and not isinstance(v, bool)
        }
        ts = now_ms()
        client.log_batch(
            rid,
            metrics=[Metric(str(k), float(v), ts, 0) for k, v in metrics.items()],
            params=[Param(str(k), str(v)) for k, v in params.items()],
        )
        if dataset_input is not None:
            client.log_inputs(rid, [dataset_input])
        client.set_terminated(rid, "FINISHED", end_time=end)
        ids.append(rid)
    return ids


def log_cv_results(client: Any, run_id: str, search: Any) -> None:
    """Upload ``cv_results_`` as ``cv_results.csv`` (one row per candidate, as MLflow)."""
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="evtrack-autolog-") as tmp:
        path = f"{tmp}/cv_results.csv"
        pd.DataFrame.from_dict(search.cv_results_).to_csv(path, index=False)
        client.log_artifact(run_id, path)


def log_search_results(
    client: Any, run: Any, search: Any, max_tuning_runs: int | None, child_tags: dict[str, Any], dataset_input: Any
) -> None:
    """The parent's ``best_*`` params and ``best_cv_score``, the child runs and ``cv_results.csv``."""
    rid = run.info.run_id
    metrics = []
    if hasattr(search, "best_score_"):
        metrics.append(Metric("best_cv_score", float(search.best_score_), now_ms(), 0))
    client.log_batch(rid, metrics=metrics, params=[Param(k, str(v)) for k, v in best_params(search).items()])
    if hasattr(search, "cv_results_"):
        try:
            log_child_runs(client, search, run, max_tuning_runs, child_tags, dataset_input)
        except Exception as exc:  # noqa: BLE001 - the parent run is still worth having
            _log.warning(
                "Encountered exception during creation of child runs for parameter search. "
                "Child runs may be missing. Exception: %s",
                exc,
            )
        try:
            log_cv_results(client, rid, search)
        except Exception as exc:  # noqa: BLE001
            _log.warning("Failed to log parameter search results as an artifact. Exception: %s", exc)
