"""A run's page (info, params, metrics with charts, tags, datasets, models) and one metric's page."""

from __future__ import annotations

import json
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.server.ui import charts, queries
from evtrack.server.ui.registry import run_versions, version_url
from evtrack.server.ui.render import page, render
from evtrack.server.ui.runs_table import is_system_tag
from evtrack.tracking.system_metrics.config import is_system_metric

CHARTED_METRICS = 12  # charts on the run page; the rest link to their own page
CHARTED_SYSTEM_METRICS = 24  # charts of system/… metrics, in their own section (as MLflow's UI)
MAX_POINTS_TABLE = 1000  # points listed on a metric's page (the chart shows them all)
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"


def logged_models(tags: dict[str, str]) -> list[dict[str, Any]]:
    """The models recorded in the run's ``mlflow.log-model.history`` tag (newest last)."""
    raw = tags.get(LOG_MODEL_HISTORY_TAG)
    if not raw:
        return []
    try:
        history = json.loads(raw)
    except ValueError:
        return []
    out = []
    for entry in history if isinstance(history, list) else []:
        if isinstance(entry, dict):
            flavors = entry.get("flavors")
            out.append(
                {
                    "artifact_path": str(entry.get("artifact_path") or ""),
                    "flavors": ", ".join(sorted(flavors)) if isinstance(flavors, dict) else "",
                    "created": str(entry.get("utc_time_created") or ""),
                    "model_uuid": str(entry.get("model_uuid") or ""),
                }
            )
    return out


@page
def run_page(request):
    """``/runs/{run_id}``: everything about one run."""
    client = request.app.state.client
    run = client.get_run(request.path_params["run_id"])
    experiment = client.get_experiment(run.info.experiment_id)
    keys = sorted(k for k in run.data.metrics if not is_system_metric(k))
    system_keys = sorted(k for k in run.data.metrics if is_system_metric(k))
    latest = queries.latest_points(client, run.info.run_id)
    metric_charts, system_charts = [], []
    charted = keys[:CHARTED_METRICS] + system_keys[:CHARTED_SYSTEM_METRICS]
    histories = queries.metric_histories(client, [run.info.run_id], charted)
    for key in charted:
        steps, values = histories.get((run.info.run_id, key), ([], []))
        series = [(key, steps, values)]
        (system_charts if is_system_metric(key) else metric_charts).append(
            (
                key,
                charts.line_chart(
                    series, title=key, x_label="step", y_label=key, width=560, height=280, css_class="metric-chart"
                ),
            )
        )
    tags = run.data.tags
    return render(
        request,
        "run.html",
        title=run.info.run_name or run.info.run_id,
        run=run,
        experiment=experiment,
        params=sorted(run.data.params.items()),
        metric_keys=keys,
        latest=latest,
        charts=metric_charts,
        more_metrics=keys[CHARTED_METRICS:],
        system_keys=system_keys,
        system_charts=system_charts,
        more_system_metrics=system_keys[CHARTED_SYSTEM_METRICS:],
        user_tags=sorted((k, v) for k, v in tags.items() if not is_system_tag(k)),
        system_tags=sorted((k, v) for k, v in tags.items() if is_system_tag(k) and k != LOG_MODEL_HISTORY_TAG),
        models=logged_models(tags),
        model_versions=run_versions(client, run.info.run_id),
        version_url=version_url,
        datasets=run.inputs.dataset_inputs,
        parent_run_id=tags.get("mlflow.parentRunId"),
        note=tags.get("mlflow.note.content"),
    )


@page
def metric_page(request):
    """``/runs/{run_id}/metrics/{key}``: one metric's full history."""
    client = request.app.state.client
    run = client.get_run(request.path_params["run_id"])
    key = request.path_params["key"]
    if key not in run.data.metrics:
        from evtrack.errors import ResourceNotFoundError

        raise ResourceNotFoundError(f"Run {run.info.run_id} has no metric {key!r}")
    history = list(client.get_metric_history(run.info.run_id, key))
    x_axis = request.query_params.get("x") or "step"
    if x_axis not in ("step", "time"):
        raise InvalidParameterError(f"Invalid x axis {x_axis!r}: expected step or time")
    if x_axis == "step":
        xs = [float(m.step) for m in history]
    else:
        t0 = history[0].timestamp if history else 0
        xs = [(m.timestamp - t0) / 1000 for m in history]
    chart = charts.line_chart(
        [(key, xs, [float(m.value) for m in history])],
        title=key,
        x_label="step" if x_axis == "step" else "seconds since first point",
        y_label=key,
        width=900,
        height=420,
        css_class="metric-chart",
    )
    return render(
        request,
        "metric.html",
        title=f"{key} · {run.info.run_name}",
        run=run,
        key=key,
        chart=chart,
        points=history[-MAX_POINTS_TABLE:],
        total=len(history),
        x_axis=x_axis,
        shown_from=max(0, len(history) - MAX_POINTS_TABLE),
    )


def routes() -> list:
    """The run and metric pages."""
    from starlette.routing import Route

    return [
        Route("/runs/{run_id}", run_page, methods=["GET"]),
        Route("/runs/{run_id}/metrics/{key:path}", metric_page, methods=["GET"]),
    ]
