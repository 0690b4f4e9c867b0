"""Differential test: the same runs logged to MLflow's sqlite store and to evtrack, the same
filters and orderings run on both, identical run lists in identical order.

Runs are matched across the two systems by their ``tags.case``; every run has a distinct
start_time so that MLflow's last tie-breaker (the random run_id) never decides an order.
Half of the runs' updates are logged after an evtrack compaction, so evtrack answers from
compacted tables with a tail folded on top.

Needs the ``mlflow`` extra: ``pip install mlflow-skinny sqlalchemy alembic`` (MLflow's sqlite
tracking store works with mlflow-skinny plus sqlalchemy and alembic).

Deliberate differences, left out of the table:
* ±inf: MLflow's SQL store keeps them as ±1.7976931348623157e308 (and returns that value in
  ``run.data.metrics``), so ``metrics.x = 1.7976931348623157e308`` matches an infinite value
  there and not in evtrack, which keeps and returns the IEEE value (``test_same_run_data`` maps
  ±max double to ±inf before comparing).
* A metric's latest value when two points share (step, timestamp) and one is NaN: MLflow's SQL
  store compares the NaN as its stored placeholder 0; evtrack ranks NaN above every number
  (``evtrack.state.fold.metric_rank``). The runs below never log such a pair.
* ILIKE on non-ASCII text: sqlite's lower() folds ASCII only; DuckDB folds Unicode. The values
  below are ASCII.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

N_RUNS = 30
SEED = 20240611
MODELS = ["lasso", "Lasso", "ridge", "elasticnet", "la_so", None]
ALPHAS = ["0.1", "0.5", "1.0", "10", "2", None]
DEVELOPERS = ["alice", "Alice", "anna", "bob", "al_x", "Aaron", "carol", None]
ENVS = ["prod", "dev", "staging", None]
RMSE = [0.1, 0.25, 0.3, 0.3, 0.5, 0.75, 1.2, math.nan, math.inf, -math.inf, None]
R2 = [0.1, 0.3, 0.3, 0.5, 0.9, -0.2, None]
STATUSES = ["FINISHED", "FINISHED", "FAILED", "KILLED", "RUNNING"]
BASE_TIME = 1_700_000_000_000
MAX_DOUBLE = 1.7976931348623157e308


def make_runs() -> list[dict[str, Any]]:
    """The runs to log, the same for both systems (deterministic)."""
    rng = random.Random(SEED)
    starts = list(range(N_RUNS))
    rng.shuffle(starts)  # creation order is not start order
    runs = []
    for i in range(N_RUNS):
        start = BASE_TIME + starts[i] * 1000
        params = {k: v for k, v in (("model", rng.choice(MODELS)), ("alpha", rng.choice(ALPHAS))) if v is not None}
        tags = {k: v for k, v in (("developer", rng.choice(DEVELOPERS)), ("env", rng.choice(ENVS))) if v is not None}
        tags["case"] = f"c{i:02d}"
        metrics: list[tuple[str, float, int, int]] = []  # key, value, timestamp, step
        rmse = rng.choice(RMSE)
        if rmse is not None:
            if rng.random() < 0.4:  # an older point that is not the latest (lower step, later timestamp)
                metrics.append(("rmse", rng.choice([0.2, 2.0, 0.3]), start + 900, 0))
                metrics.append(("rmse", rmse, start + 500, 1))
            else:
                metrics.append(("rmse", rmse, start + 500, 0))
        r2 = rng.choice(R2)
        if r2 is not None:
            metrics.append(("r2", r2, start + 500, 0))
        status = rng.choice(STATUSES)
        end = None if status == "RUNNING" else start + 100 + rng.randrange(5) * 100
        runs.append(
            {
                "case": tags["case"],
                "start": start,
                "name": f"run-{starts[i]:02d}" if i % 3 else f"exp {i}",
                "params": params,
                "tags": tags,
                "metrics": metrics,
                "status": status,
                "end": end,
                "late": i % 2 == 1,
            }
        )  # late: its metrics, tags and status are logged after compaction
    return runs


DELETED = {"c03", "c17"}


def log_runs(
    client: Any, exp: str, runs: list[dict[str, Any]], metric_cls: Any, param_cls: Any, tag_cls: Any, phase: str
) -> dict[str, str]:
    """Log ``runs`` with an MLflow-style client; ``phase`` 'early' logs the runs and the data of the
    not-late ones, 'late' the rest. Returns case -> run_id (from 'early')."""
    ids = {}
    for run in runs:
        if phase == "early":
            created = client.create_run(exp, start_time=run["start"], tags={"case": run["case"]}, run_name=run["name"])
            ids[run["case"]] = created.info.run_id
        if (phase == "late") != run["late"]:
            continue
        rid = run["id"] if phase == "late" else ids[run["case"]]
        client.log_batch(
            rid,
            metrics=[metric_cls(k, v, ts, step) for k, v, ts, step in run["metrics"]],
            params=[param_cls(k, v) for k, v in run["params"].items()],
            tags=[tag_cls(k, v) for k, v in run["tags"].items() if k != "case"],
        )
        if run["status"] != "RUNNING":
            client.set_terminated(rid, run["status"], end_time=run["end"])
    return ids


class System:
    """One tracking system under test, with its case <-> run_id maps."""

    def __init__(self, name: str, client: Any, exp: str, ids: dict[str, str]) -> None:
        self.name, self.client, self.exp, self.ids = name, client, exp, ids
        self.cases = {rid: case for case, rid in ids.items()}

    def search(self, filter_string: str, order_by: list[str] | None, view: int, page_size: int | None) -> list[str]:
        filter_string = filter_string.format(**self.ids)
        if page_size is None:
            runs = self.client.search_runs(
                [self.exp], filter_string, run_view_type=view, max_results=1000, order_by=order_by
            )
            return [self.cases[r.info.run_id] for r in runs]
        out, token = [], None
        while True:
            page = self.client.search_runs(
                [self.exp],
                filter_string,
                run_view_type=view,
                max_results=page_size,
                order_by=order_by,
                page_token=token,
            )
            out += [self.cases[r.info.run_id] for r in page]
            token = page.token
            if not token:
                return out


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import mlflow.entities as me
    from mlflow.tracking import MlflowClient as MlflowSqlClient

    import evtrack.entities as ee
    from compaction import compact
    from evtrack.read import backend
    from evtrack.client import EvtrackClient

    tmp = tmp_path_factory.mktemp("differential")
    mp = pytest.MonkeyPatch()
    mp.setenv("EVTRACK_SPOOL_DIR", str(tmp / "spool"))
    mp.setenv("EVTRACK_CACHE_DIR", str(tmp / "cache"))
    runs = make_runs()
    try:
        ml = MlflowSqlClient(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
        ml_exp = ml.create_experiment("diff", artifact_location=str(tmp / "mlflow-artifacts"))
        ev = EvtrackClient(str(tmp / "evtrack"))
        ev_exp = ev.create_experiment("diff")

        ml_ids = log_runs(ml, ml_exp, runs, me.Metric, me.Param, me.RunTag, "early")
        ev_ids = log_runs(ev, ev_exp, runs, ee.Metric, ee.Param, ee.RunTag, "early")
        ev.flush()
        compact(ev.store, grace_seconds=0)  # evtrack: early data compacted, the late data in the tail
        for system_ids, client, exp, cls in ((ml_ids, ml, ml_exp, me), (ev_ids, ev, ev_exp, ee)):
            late = [{**r, "id": system_ids[r["case"]]} for r in runs]
            log_runs(client, exp, late, cls.Metric, cls.Param, cls.RunTag, "late")
            for case in sorted(DELETED):
                client.delete_run(system_ids[case])
        yield System("mlflow", ml, ml_exp, ml_ids), System("evtrack", ev, ev_exp, ev_ids)
    finally:
        for key in [k for k in backend._backends if k.startswith(str(tmp))]:
            backend._backends.pop(key).writer.close()
        mp.undo()


ACTIVE, DELETED_ONLY, ALL = 1, 2, 3

# (filter, order_by, run_view_type, page size or None)
CASES: list[tuple[str, list[str] | None, int, int | None]] = [
    ("", None, ACTIVE, None),
    ("", None, ALL, None),
    ("", None, DELETED_ONLY, None),
    ("", None, ACTIVE, 7),  # pages of 7 cover every run once, in order
    ("metrics.rmse < 0.5", ["metrics.rmse"], ACTIVE, None),
    ("metrics.rmse < 0.5", ["metrics.rmse"], ACTIVE, 4),
    ("metrics.rmse >= 0.3", ["metrics.rmse DESC"], ACTIVE, None),
    ("metrics.rmse = 0.3", None, ACTIVE, None),
    ("metrics.rmse != 0.3", None, ALL, None),  # NaN matches != in both
    ("metrics.rmse > 100", None, ACTIVE, None),  # +inf
    ("metrics.rmse <= -100", None, ACTIVE, None),  # -inf
    ("metrics.rmse = 2.0", None, ACTIVE, None),  # an older point, never the latest
    ("metrics.r2 > 0.3", ["metrics.r2 DESC"], ACTIVE, None),
    ("params.model = 'lasso' and metrics.r2 > 0.3", None, ACTIVE, None),
    ("params.model != 'lasso'", None, ACTIVE, None),
    ("params.model LIKE 'la%'", None, ACTIVE, None),
    ("params.model LIKE 'la_so'", None, ACTIVE, None),
    ("params.model ILIKE 'LA%'", None, ACTIVE, None),
    ("params.model IS NULL", None, ACTIVE, None),
    ("params.alpha IS NOT NULL", ["params.alpha DESC"], ACTIVE, None),
    ("tags.developer LIKE 'a%'", None, ACTIVE, None),
    ("tags.developer ILIKE '%L%'", ["tags.developer"], ACTIVE, None),
    ("tags.developer != 'alice'", None, ACTIVE, None),
    ("tags.env IS NULL", None, ALL, None),
    ("tags.env = 'prod' and params.model != 'ridge'", ["attributes.start_time"], ACTIVE, None),
    ("attributes.status = 'FINISHED'", None, ACTIVE, None),
    ("attributes.status != 'RUNNING'", ["attributes.end_time DESC"], ACTIVE, None),
    ("attributes.status LIKE 'F%'", None, ALL, None),
    ("attributes.run_name LIKE 'run-1%'", None, ACTIVE, None),
    ("attributes.run_name ILIKE 'EXP%'", ["attributes.run_name DESC"], ACTIVE, None),
    (
        f"attributes.start_time >= {BASE_TIME + 10_000} and attributes.start_time < {BASE_TIME + 20_000}",
        None,
        ACTIVE,
        None,
    ),
    (f"attributes.end_time > {BASE_TIME + 15_000}", None, ACTIVE, None),
    ("attributes.run_id IN ('{c01}', '{c05}', '{c08}', '{c03}')", None, ACTIVE, None),
    ("attributes.run_id NOT IN ('{c01}', '{c05}', '{c08}')", None, ACTIVE, None),
    ("metrics.rmse > 0 and metrics.rmse < 1 and params.alpha != '0.1'", None, ACTIVE, None),
    ("datasets.name = 'x'", None, ACTIVE, None),  # no run logged a dataset
    # orderings over every run: NaN after numbers, missing last, ties by start_time DESC
    ("", ["metrics.rmse"], ACTIVE, None),
    ("", ["metrics.rmse DESC"], ACTIVE, None),
    ("", ["metrics.r2"], ALL, None),
    ("", ["params.model"], ACTIVE, None),
    ("", ["params.model DESC", "metrics.rmse"], ACTIVE, None),
    ("", ["tags.env", "tags.developer DESC"], ACTIVE, None),
    ("", ["attributes.start_time"], ACTIVE, None),
    ("", ["attributes.end_time"], ACTIVE, None),
    ("", ["attributes.status", "params.alpha"], ACTIVE, 6),
    ("", ["attributes.run_name"], ACTIVE, None),
]


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 15
    assert sum(1 for c in CASES if c[0]) >= 15 and sum(1 for c in CASES if c[1]) >= 10


def test_mlflow_and_evtrack_agree(systems: tuple[System, System]) -> None:
    ml, ev = systems
    failures, nonempty = [], 0
    for filter_string, order_by, view, page in CASES:
        expected = ml.search(filter_string, order_by, view, page)
        got = ev.search(filter_string, order_by, view, page)
        nonempty += bool(expected)
        if got != expected:
            failures.append(
                f"{filter_string!r} order_by={order_by} view={view} page={page}:\n"
                f"   mlflow  {expected}\n   evtrack {got}"
            )
    assert not failures, f"{len(failures)} of {len(CASES)} differ:\n" + "\n".join(failures)
    assert nonempty >= len(CASES) - 3  # the table is not vacuous


def test_same_run_data(systems: tuple[System, System]) -> None:
    """Latest metrics (NaN, ±inf), params, tags and info agree run by run."""
    ml, ev = systems
    ml_runs = {ml.cases[r.info.run_id]: r for r in ml.client.search_runs([ml.exp], run_view_type=ALL)}
    ev_runs = {ev.cases[r.info.run_id]: r for r in ev.client.search_runs([ev.exp], run_view_type=ALL)}
    assert set(ml_runs) == set(ev_runs) and len(ev_runs) == N_RUNS

    def same(mlflow_value: float, evtrack_value: float) -> bool:
        if abs(mlflow_value) == MAX_DOUBLE:  # MLflow's stand-in for ±inf (see the module doc)
            mlflow_value = math.copysign(math.inf, mlflow_value)
        return (math.isnan(mlflow_value) and math.isnan(evtrack_value)) or mlflow_value == evtrack_value

    for case, m in ml_runs.items():
        e = ev_runs[case]
        assert m.data.metrics.keys() == e.data.metrics.keys(), case
        assert all(same(m.data.metrics[k], e.data.metrics[k]) for k in m.data.metrics), case
        assert m.data.params == e.data.params, case
        assert {k: v for k, v in m.data.tags.items() if not k.startswith("mlflow.")} == {
            k: v for k, v in e.data.tags.items() if not k.startswith("mlflow.")
        }, case
        for attr in ("status", "start_time", "end_time", "run_name", "lifecycle_stage"):
            assert getattr(m.info, attr) == getattr(e.info, attr), (case, attr)


def test_same_rejections(systems: tuple[System, System]) -> None:
    """Filters MLflow rejects, evtrack rejects too."""
    from mlflow.exceptions import MlflowException

    from evtrack.errors import InvalidParameterError

    ml, ev = systems
    bad = [
        "metrics.rmse < 'a'",
        "params.model = lasso",
        "metrics.rmse IS NULL",
        "params.a = 'x' OR params.b = 'y'",
        "attributes.status IN ('FINISHED')",
        "foo.bar = 'x'",
        "attributes.nosuch = 'x'",
        "params.model = 'a'; params.model = 'b'",
    ]
    for f in bad:
        with pytest.raises(MlflowException):
            ml.client.search_runs([ml.exp], f)
        with pytest.raises(InvalidParameterError):
            ev.client.search_runs([ev.exp], f)
