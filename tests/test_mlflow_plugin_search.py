"""Differential: MLflow's own client on its sqlite store and on evtrack's store (the plugin), the same
runs logged, the same searches (``MlflowClient.search_runs`` and ``mlflow.search_runs``) answered
alike — with part of the data in evtrack's compacted tables and part in the inbox tail, and again
after everything is compacted.

The runs and the table of filters are those of ``tests/test_search_differential.py`` (which
compares evtrack's own client with MLflow); its module docstring lists the deliberate differences.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")

from test_search_differential import ALL, CASES, DELETED, MAX_DOUBLE, N_RUNS, System, log_runs, make_runs  # noqa: E402


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import mlflow.entities as me
    from mlflow.tracking import MlflowClient

    from compaction import compact
    from evtrack.read import backend
    from evtrack.store import open_store

    tmp = tmp_path_factory.mktemp("plugin-differential")
    mp = pytest.MonkeyPatch()
    mp.setenv("EVTRACK_SPOOL_DIR", str(tmp / "spool"))
    mp.setenv("EVTRACK_CACHE_DIR", str(tmp / "cache"))
    runs = make_runs()
    store_dir = tmp / "evtrack"
    try:
        ml = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
        ev = MlflowClient(tracking_uri=f"evtrack://{store_dir}")
        exps = {
            "mlflow": ml.create_experiment("diff", artifact_location=str(tmp / "mlflow-artifacts")),
            "evtrack": ev.create_experiment("diff"),
        }
        ids = {name: log_runs(c, exps[name], runs, me.Metric, me.Param, me.RunTag, "early") for name, c in
               (("mlflow", ml), ("evtrack", ev))}  # fmt: skip
        ev._tracking_client.store.flush_async_logging()
        compact(open_store(str(store_dir)), grace_seconds=0)  # the early data compacted, the late in the tail
        for name, client in (("mlflow", ml), ("evtrack", ev)):
            late = [{**r, "id": ids[name][r["case"]]} for r in runs]
            log_runs(client, exps[name], late, me.Metric, me.Param, me.RunTag, "late")
            for case in sorted(DELETED):
                client.delete_run(ids[name][case])
        yield (
            System("mlflow", ml, exps["mlflow"], ids["mlflow"]),
            System("evtrack", ev, exps["evtrack"], ids["evtrack"]),
            store_dir,
        )
    finally:
        for key in [k for k in backend._backends if k.startswith(str(tmp))]:
            backend._backends.pop(key).writer.close()
        mp.undo()


def _same(value: float) -> str:
    """A metric value as text, MLflow's SQL stand-in for ±inf (±max double) read as ±inf."""
    if abs(value) == MAX_DOUBLE:
        value = math.copysign(math.inf, value)
    return str(value)


def _differences(ml: System, ev: System) -> list[str]:
    failures = []
    for filter_string, order_by, view, page in CASES:
        expected = ml.search(filter_string, order_by, view, page)
        got = ev.search(filter_string, order_by, view, page)
        if got != expected:
            failures.append(f"{filter_string!r} order_by={order_by} view={view} page={page}:\n   {expected}\n   {got}")
    return failures


def _pandas(system: System, filter_string: str, order_by: list[str] | None) -> Any:
    mlflow.set_tracking_uri(system.client._tracking_client.tracking_uri)
    try:
        df = mlflow.search_runs([system.exp], filter_string.format(**system.ids), order_by=order_by)
    finally:
        mlflow.set_tracking_uri("")
    df["case"] = df["tags.case"]
    return df


def test_client_search_runs_agrees_with_tail_and_after_compaction(systems: Any) -> None:
    from compaction import compact
    from evtrack.store import open_store

    ml, ev, store_dir = systems
    failures = _differences(ml, ev)
    assert not failures, f"{len(failures)} of {len(CASES)} differ (tables + tail):\n" + "\n".join(failures)
    ev.client._tracking_client.store.flush_async_logging()
    compact(open_store(str(store_dir)), grace_seconds=0)
    failures = _differences(ml, ev)
    assert not failures, f"{len(failures)} of {len(CASES)} differ (all compacted):\n" + "\n".join(failures)


@pytest.mark.parametrize(
    "filter_string,order_by",
    [
        ("", None),
        ("metrics.rmse < 0.5", ["metrics.rmse"]),
        ("params.model LIKE 'la%'", ["attributes.start_time DESC"]),
        ("tags.env ILIKE '%d%'", None),
    ],
)
def test_pandas_search_runs_has_mlflows_columns_and_rows(systems: Any, filter_string: str, order_by: Any) -> None:
    ml, ev, _ = systems
    theirs, ours = _pandas(ml, filter_string, order_by), _pandas(ev, filter_string, order_by)
    assert list(ours["case"]) == list(theirs["case"]) and len(ours) > 0
    assert sorted(ours.columns) == sorted(theirs.columns)
    columns = [c for c in theirs.columns if c.startswith(("params.", "tags.")) and not c.startswith("tags.mlflow.")]
    columns += ["status", "start_time", "end_time"]
    assert ours[columns].astype(str).values.tolist() == theirs[columns].astype(str).values.tolist()
    for metric in [c for c in theirs.columns if c.startswith("metrics.")]:
        assert [_same(x) for x in ours[metric]] == [_same(x) for x in theirs[metric]], metric


def test_metric_history_and_run_data_agree(systems: Any) -> None:
    ml, ev, _ = systems
    assert len(ev.client.search_runs([ev.exp], run_view_type=ALL)) == N_RUNS
    for case in ("c00", "c05", "c11"):
        m_run, e_run = ml.client.get_run(ml.ids[case]), ev.client.get_run(ev.ids[case])
        assert m_run.data.params == e_run.data.params
        m_latest = {m.key: (m.step, m.timestamp) for m in m_run.data._metric_objs}
        e_latest = {m.key: (m.step, m.timestamp) for m in e_run.data._metric_objs}
        assert m_latest == e_latest, case
        for key in m_run.data.metrics:
            theirs = [(m.step, m.timestamp, _same(m.value)) for m in ml.client.get_metric_history(ml.ids[case], key)]
            ours = [(m.step, m.timestamp, _same(m.value)) for m in ev.client.get_metric_history(ev.ids[case], key)]
            assert sorted(ours) == sorted(theirs), (case, key)
