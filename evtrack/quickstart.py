"""The quickstart: a small hyper-parameter sweep tracked with evtrack, end to end.

It generates NYC-taxi-like trips (distance, pickup hour, weekday, passengers,
zones) with a trip duration to predict, trains Lasso and Ridge regressions for a
sweep of ``alpha`` (numpy only; scikit-learn's models when it is installed),
logs params, a training-loss curve, final metrics and the model as artifacts,
then compacts the log and prints the best runs of this sweep (its runs carry a
``sweep`` tag, so a second quickstart on the same store shows only its own) and
the commands to try next — the workflow of MLflow's tracking tutorial, on the
embedded local store.

Run it with ``evtrack quickstart`` (or ``python -m evtrack.quickstart``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
import time
import uuid
from typing import Any

import evtrack

EXPERIMENT = "nyc-taxi-experiment"
SWEEP_TAG = "sweep"  # every run of one quickstart carries the same sweep id
BEST_FILTER = "metrics.r2 > 0.5"
BEST_ORDER = "metrics.rmse ASC"
BEST_COLUMNS = "params.model,params.alpha,metrics.rmse,metrics.r2"
# rmse by model over one sweep; {sweep} is a bound "?" here and the id itself in the printed command
SWEEP_SQL = (
    "SELECT p.value AS model, count(*) AS runs, round(min(m.value), 3) AS best_rmse, "
    "round(avg(m.value), 3) AS mean_rmse "
    "FROM params p JOIN latest_metrics m USING (run_id) JOIN tags t USING (run_id) "
    f"WHERE p.key = 'model' AND m.key = 'rmse' AND t.key = '{SWEEP_TAG}' AND t.value = {{sweep}} "
    "GROUP BY p.value ORDER BY min(m.value)"
)
ALPHAS = (0.001, 0.01, 0.1, 0.5, 1.0)
FEATURES = [
    "trip_distance",
    "hour_sin",
    "hour_cos",
    "is_weekend",
    "passenger_count",
    "zone_airport",
    "zone_midtown",
    "zone_downtown",
]


def make_trips(n: int, seed: int) -> tuple[Any, Any]:
    """Synthetic trips: features X and duration in minutes y."""
    import numpy as np

    rng = np.random.default_rng(seed)
    distance = rng.gamma(2.0, 1.6, n)
    hour = rng.integers(0, 24, n)
    weekend = (rng.random(n) < 2 / 7).astype(float)
    passengers = rng.integers(1, 5, n).astype(float)
    zone = rng.choice(3, n, p=[0.15, 0.5, 0.35])
    rush = ((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 19))
    y = (
        4.0
        + 3.1 * distance
        + 6.0 * rush * (1 - weekend)
        + 9.0 * (zone == 0)
        + 2.5 * (zone == 1)
        + rng.normal(0, 3.0, n)
    )
    X = np.column_stack(
        [
            distance,
            np.sin(2 * np.pi * hour / 24),
            np.cos(2 * np.pi * hour / 24),
            weekend,
            passengers,
            zone == 0,
            zone == 1,
            zone == 2,
        ]
    ).astype(float)
    return X, y


def _fit(model: str, alpha: float, X: Any, y: Any, epochs: int) -> tuple[Any, float, list[float]]:
    """Coordinate descent (Lasso) or closed-form steps (Ridge); returns coef, intercept, loss curve."""
    import numpy as np

    mu, sd = X.mean(0), X.std(0) + 1e-12
    Z = (X - mu) / sd
    y_mean = y.mean()
    r = y - y_mean
    w = np.zeros(Z.shape[1])
    n = len(y)
    curve = []
    col_sq = (Z**2).sum(0) / n
    for _ in range(epochs):
        for j in range(Z.shape[1]):
            r += Z[:, j] * w[j]
            rho = Z[:, j] @ r / n
            if model == "lasso":
                w[j] = np.sign(rho) * max(abs(rho) - alpha, 0.0) / col_sq[j]
            else:
                w[j] = rho / (col_sq[j] + alpha)
            r -= Z[:, j] * w[j]
        curve.append(float((r**2).mean()))
    coef = w / sd
    return coef, float(y_mean - mu @ coef), curve


def _scores(y: Any, pred: Any) -> dict[str, float]:
    import numpy as np

    err = y - pred
    rmse = float(np.sqrt((err**2).mean()))
    r2 = float(1 - (err**2).sum() / ((y - y.mean()) ** 2).sum())
    return {"rmse": rmse, "mae": float(np.abs(err).mean()), "r2": r2}


def new_sweep_id() -> str:
    """A fresh sweep id: 8 hex digits."""
    return uuid.uuid4().hex[:8]


def run_sweep(epochs: int = 20, sweep: str | None = None) -> list[str]:
    """Train and track one run per (model, alpha), tagged ``sweep``; returns the run ids."""
    sweep = sweep or new_sweep_id()
    X_train, y_train = make_trips(8_000, seed=1)
    X_val, y_val = make_trips(4_000, seed=2)
    evtrack.set_experiment(EXPERIMENT)
    run_ids = []
    for model in ("lasso", "ridge"):
        for alpha in ALPHAS:
            with evtrack.start_run(run_name=f"{model}-{alpha}") as run:
                evtrack.set_tags({"developer": os.environ.get("USER") or "data-scientist", SWEEP_TAG: sweep})
                evtrack.log_param("train-data-path", "synthetic://nyc-taxi/fhv_tripdata_2021-01")
                evtrack.log_params({"model": model, "alpha": alpha, "epochs": epochs})
                coef, intercept, curve = _fit(model, alpha, X_train, y_train, epochs)
                for step, loss in enumerate(curve):
                    evtrack.log_metric("train_loss", loss, step=step)
                evtrack.log_metrics(_scores(y_val, X_val @ coef + intercept))
                evtrack.log_dict(
                    {"features": FEATURES, "coef": coef.tolist(), "intercept": intercept}, "model/coefficients.json"
                )
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "notes.txt")
                    with open(path, "w") as fh:
                        fh.write(f"{model} regression, alpha={alpha}, {len(y_train)} training trips\n")
                    evtrack.log_artifact(path, artifact_path="docs")
                run_ids.append(run.info.run_id)
    return run_ids


def main(tracking_uri: str | None = None) -> None:
    """Run the sweep, compact, print this sweep's best runs and the commands to try next."""
    if tracking_uri:
        evtrack.set_tracking_uri(tracking_uri)
    uri = evtrack.get_tracking_uri()
    sweep = new_sweep_id()
    started = time.perf_counter()
    run_ids = run_sweep(sweep=sweep)
    evtrack.flush()
    print(f"Logged {len(run_ids)} runs (sweep {sweep}) to {uri} in {time.perf_counter() - started:.2f}s.")

    from compaction import compact
    from evtrack.store import open_store

    print(compaction_sentence(compact(open_store(uri))))
    best = _print_best(sweep)
    print(json.dumps({"experiment": EXPERIMENT, "sweep": sweep, "best_run_id": best}))
    _print_next(uri, sweep)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def compaction_sentence(report: Any) -> str:
    """What one compaction pass did, in plain words (``report``: a ``CompactionReport``)."""
    if not report.events:
        return f"Nothing new to compact: the tables (manifest v{report.version}) already hold every event."
    kept = f" ({report.quarantined:,} kept aside in quarantine)" if report.quarantined else ""
    return (
        f"Compacted {_plural(report.events, 'event')} from {_plural(report.segments, 'inbox file')} into the "
        f"runs, params, metrics and tags tables ({_plural(report.files_written, 'table file')}, "
        f"manifest v{report.version}){kept}: searches now read these tables, not the raw log."
    )


def sweep_filter(sweep: str) -> str:
    """The search filter of this sweep's good runs."""
    return f"tags.{SWEEP_TAG} = '{sweep}' and {BEST_FILTER}"


def _print_best(sweep: str) -> str | None:
    """Print this sweep's best runs and its rmse by model; returns the best run's id."""
    best = evtrack.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=sweep_filter(sweep),
        order_by=[BEST_ORDER],
        max_results=5,
        output_format="list",
    )
    print(f'\nBest runs of this sweep: search_runs(filter_string="{sweep_filter(sweep)}", order_by=["{BEST_ORDER}"])')
    print(f"  {'run name':<14} {'model':<6} {'alpha':>6} {'rmse':>8} {'r2':>7}  run id")
    for r in best:
        print(
            f"  {r.info.run_name:<14} {r.data.params['model']:<6} {r.data.params['alpha']:>6} "
            f"{r.data.metrics['rmse']:8.3f} {r.data.metrics['r2']:7.3f}  {r.info.run_id}"
        )
    summary = evtrack.sql(SWEEP_SQL.format(sweep="?"), [sweep])
    print("\nSQL: rmse by model over this sweep")
    for row in summary.to_pylist():
        print(f"  {row['model']:<6} runs={row['runs']}  best={row['best_rmse']:.3f}  mean={row['mean_rmse']:.3f}")
    return best[0].info.run_id if best else None


def shell_arg(text: str) -> str:
    """``text`` quoted for a POSIX shell, in double quotes when that needs no escapes (easier to read)."""
    if re.fullmatch(r"[\w@%+=:,./-]+", text):
        return text
    if not re.search(r'["$`\\!]', text):
        return f'"{text}"'
    return shlex.quote(text)


def next_commands(uri: str, sweep: str) -> list[tuple[str, str]]:
    """(what it shows, command) for each command to try next on the store at ``uri``."""
    if not re.fullmatch(r"[0-9a-f]+", sweep):
        raise ValueError(f"a sweep id is hex digits, not {sweep!r}")
    store = shell_arg(uri)
    search = (
        f"evtrack search --tracking-uri {store} --experiment {shell_arg(EXPERIMENT)} "
        f"--filter {shell_arg(sweep_filter(sweep))} --order-by {shell_arg(BEST_ORDER)} --columns {BEST_COLUMNS}"
    )
    literal = "'" + sweep + "'"
    sql = f"evtrack sql --tracking-uri {store} {shell_arg(SWEEP_SQL.format(sweep=literal))}"
    experiment = evtrack.get_experiment_by_name(EXPERIMENT)
    page = f"/experiments/{experiment.experiment_id}" if experiment else ""
    return [
        (f"the web UI (then open http://127.0.0.1:5000{page})", f"evtrack ui --backend-store-uri {store}"),
        ("this sweep's best runs", search),
        ("its rmse by model, in SQL", sql),
    ]


def _print_next(uri: str, sweep: str) -> None:
    print(f"\nNext, try these on the same store ({uri}):")
    for what, command in next_commands(uri, sweep):
        print(f"  {what}:\n    {command}")


if __name__ == "__main__":
    main()
