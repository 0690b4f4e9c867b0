"""Side-by-side comparison of selected runs: a table, a parallel-coordinates or scatter plot,
and the metric curves of the runs overlaid."""

from __future__ import annotations

from typing import Any

from evtrack.entities import Run
from evtrack.errors import InvalidParameterError
from evtrack.server.ui import charts, queries
from evtrack.server.ui.render import page, render

MAX_RUNS = 100
MAX_CURVE_CHARTS = 20
MAX_AXES = 12


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _label(run: Run) -> str:
    return run.info.run_name or run.info.run_id[:8]


def _axis_value(run: Run, axis: str) -> Any:
    """A run's value on ``params.<key>`` (number when it parses) or ``metrics.<key>``."""
    prefix, _, key = axis.partition(".")
    if prefix == "metrics":
        return run.data.metrics.get(key)
    value = run.data.params.get(key)
    number = _number(value)
    return number if number is not None else value


def _load_runs(client, run_ids: list[str]) -> list[Run]:
    if not run_ids:
        raise InvalidParameterError("Select runs to compare (?runs=<run_id>&runs=<run_id>…)")
    if len(run_ids) > MAX_RUNS:
        raise InvalidParameterError(f"Compare at most {MAX_RUNS} runs at once (got {len(run_ids)})")
    runs, seen = [], set()
    for rid in run_ids:
        if rid not in seen:
            seen.add(rid)
            runs.append(client.get_run(rid))
    return runs


def _experiments(client, runs: list[Run]) -> dict[str, Any]:
    """The experiments of the runs, by id (each fetched once)."""
    ids = dict.fromkeys(r.info.experiment_id for r in runs)
    return {eid: client.get_experiment(eid) for eid in ids}


def _plot(runs: list[Run], params: list[str], metrics: list[str], x: str | None, y: str | None) -> str:
    """A scatter of one param against one metric when asked, else parallel coordinates."""
    if x and y:
        points = []
        for run in runs:
            xv, yv = _number(_axis_value(run, x)), _number(_axis_value(run, y))
            if xv is not None and yv is not None:
                points.append((_label(run), xv, yv))
        return charts.scatter_chart(points, x_label=x, y_label=y, title=f"{y} vs {x}")
    axes = ([f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics])[:MAX_AXES]
    rows = [{"label": _label(run), **{a: _axis_value(run, a) for a in axes}} for run in runs]
    color_by = f"metrics.{metrics[0]}" if metrics else (axes[0] if axes else "")
    return charts.parallel_coordinates(rows, axes, color_by=color_by, title="Params and metrics")


def _curves(client, runs: list[Run], common: list[str]) -> list[tuple[str, str]]:
    out = []
    keys = common[:MAX_CURVE_CHARTS]
    histories = queries.metric_histories(client, [r.info.run_id for r in runs], keys)
    for key in keys:
        series = [(_label(run), *histories.get((run.info.run_id, key), ([], []))) for run in runs]
        out.append(
            (
                key,
                charts.line_chart(
                    series, title=key, x_label="step", y_label=key, width=560, height=280, css_class="compare-chart"
                ),
            )
        )
    return out


def _choice(value: str | None, allowed: list[str], what: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise InvalidParameterError(f"Invalid {what} {value!r}: expected one of {', '.join(allowed) or 'none'}")
    return value


@page
def compare_page(request):
    """``/compare?runs=a&runs=b``: the selected runs side by side."""
    client = request.app.state.client
    runs = _load_runs(client, request.query_params.getlist("runs"))
    params = sorted({k for r in runs for k in r.data.params})
    metrics = sorted({k for r in runs for k in r.data.metrics})
    x = _choice(request.query_params.get("x"), [f"params.{k}" for k in params], "x param")
    y = _choice(request.query_params.get("y"), [f"metrics.{k}" for k in metrics], "y metric")
    common = sorted(set.intersection(*(set(r.data.metrics) for r in runs))) if runs else []
    diff_params = {k for k in params if len({r.data.params.get(k) for r in runs}) > 1}
    experiments = _experiments(client, runs)
    return render(
        request,
        "compare.html",
        title=f"Comparing {len(runs)} runs",
        runs=runs,
        experiments=experiments,
        only_experiment=next(iter(experiments.values())) if len(experiments) == 1 else None,
        params=params,
        metrics=metrics,
        diff_params=diff_params,
        plot=_plot(runs, params, metrics, x, y),
        curves=_curves(client, runs, common),
        x=x,
        y=y,
        run_ids=[r.info.run_id for r in runs],
        more_curves=common[MAX_CURVE_CHARTS:],
    )


def routes() -> list:
    """The compare page."""
    from starlette.routing import Route

    return [Route("/compare", compare_page, methods=["GET"])]
