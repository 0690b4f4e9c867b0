"""evtrack.sql: the documented views and their columns, pandas output, bound parameters, and a
connection that is read-only and can reach no file, network or other database."""

from __future__ import annotations

import math
import pathlib
from typing import Any

import pytest

import evtrack
from compaction import compact
from evtrack.entities import Metric, Param, RunTag
from evtrack.errors import EvtrackError, InvalidParameterError

RUN_COLUMNS = [
    "run_id",
    "experiment_id",
    "run_name",
    "user_id",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
    "lifecycle_stage",
    "parent_run_id",
]
VIEWS = {  # as documented in evtrack/query/engine.py
    "experiments": [
        "experiment_id",
        "name",
        "artifact_location",
        "lifecycle_stage",
        "creation_time",
        "last_update_time",
    ],
    "experiment_tags": ["experiment_id", "key", "value"],
    "runs": RUN_COLUMNS,
    "params": ["run_id", "key", "value"],
    "tags": ["run_id", "key", "value"],
    "metrics": ["run_id", "key", "value", "step", "timestamp"],
    "latest_metrics": ["run_id", "key", "value", "step", "timestamp"],
    "artifacts": ["run_id", "path", "size", "digest"],
    "events": [
        "eid",
        "type",
        "v",
        "ts",
        "experiment_id",
        "run_id",
        "key",
        "value",
        "metric_value",
        "step",
        "timestamp",
        "body",
    ],
    "logged_model_metrics": [
        "model_id",
        "run_id",
        "experiment_id",
        "key",
        "value",
        "step",
        "timestamp",
        "dataset_name",
        "dataset_digest",
    ],
    "model_inputs": ["run_id", "model_id"],
    "model_outputs": ["run_id", "model_id", "step"],
}
HOSTILE = "x' OR 1=1; DROP TABLE runs; --"


def rows(query: str, params: list[Any] | None = None, **kw: Any) -> list[dict[str, Any]]:
    return evtrack.sql(query, params, **kw).to_pylist()


def one(query: str, params: list[Any] | None = None, **kw: Any) -> Any:
    result = rows(query, params, **kw)
    assert len(result) == 1 and len(result[0]) == 1, result
    return next(iter(result[0].values()))


def log_data(client: Any) -> dict[str, str]:
    """Two experiments, three runs: params, metric histories (a duplicate, NaN), tags, artifacts."""
    exp = client.create_experiment("sql", tags={"team": "ml"})
    other = client.create_experiment("sql-other")
    a = client.create_run(exp, start_time=100, run_name="a").info.run_id
    b = client.create_run(exp, start_time=200, run_name="b").info.run_id
    c = client.create_run(other, start_time=300, run_name="c").info.run_id
    client.log_batch(
        a,
        params=[Param("alpha", "0.1"), Param("model", "lasso")],
        metrics=[
            Metric("rmse", 0.9, 10, 0),
            Metric("rmse", 0.5, 20, 1),
            Metric("rmse", 0.5, 20, 1),
            Metric("loss", math.nan, 10, 0),
        ],
        tags=[RunTag("team", "red"), RunTag("gone", "soon")],
    )
    client.log_batch(
        b,
        params=[Param("alpha", "0.5"), Param("note", HOSTILE)],
        metrics=[Metric("rmse", 0.7, 10, 0)],
        tags=[RunTag("team", "blue")],
    )
    client.log_batch(c, params=[Param("alpha", "0.1")], metrics=[Metric("rmse", 0.3, 10, 0)])
    client.delete_tag(a, "gone")
    client.log_text(a, "hello", "notes/readme.txt")
    client.set_terminated(a, "FINISHED", end_time=150)
    client.flush()
    return {"exp": exp, "other": other, "a": a, "b": b, "c": c}


@pytest.fixture
def client(tracking_uri: str, cache_dir: Any) -> Any:
    return evtrack.MlflowClient()


@pytest.fixture
def local_client(local_uri: str, fresh_evtrack: None, cache_dir: Any) -> Any:
    """A client of a fresh local store, for checks that do not depend on the backend."""
    evtrack.set_tracking_uri(local_uri)
    return evtrack.MlflowClient()


def check_views(ids: dict[str, str], state: str) -> None:
    a, b, c = ids["a"], ids["b"], ids["c"]
    for view, columns in VIEWS.items():
        got = evtrack.sql(f"SELECT * FROM {view} LIMIT 0").column_names
        assert sorted(got) == sorted(columns), (state, view, got)
    assert {r["name"]: r["lifecycle_stage"] for r in rows("SELECT name, lifecycle_stage FROM experiments")} == {
        "Default": "active",
        "sql": "active",
        "sql-other": "active",
    }, state
    assert rows("SELECT key, value FROM experiment_tags WHERE experiment_id = ?", [ids["exp"]]) == [
        {"key": "team", "value": "ml"}
    ], state
    runs = {r["run_name"]: r for r in rows("SELECT * FROM runs")}
    assert set(runs) == {"a", "b", "c"}, state
    assert (runs["a"]["status"], runs["a"]["start_time"], runs["a"]["end_time"]) == ("FINISHED", 100, 150), state
    assert (runs["b"]["status"], runs["b"]["end_time"], runs["c"]["experiment_id"]) == (
        "RUNNING",
        None,
        ids["other"],
    ), state
    assert runs["a"]["artifact_uri"].endswith(f"{a}/artifacts") and runs["a"]["lifecycle_stage"] == "active"
    assert rows("SELECT run_id, key, value FROM params ORDER BY run_id = ?, key", [a])[-2:] == [
        {"run_id": a, "key": "alpha", "value": "0.1"},
        {"run_id": a, "key": "model", "value": "lasso"},
    ], state
    assert one("SELECT count(*) FROM params") == 5, state
    tags = {(r["run_id"], r["key"]): r["value"] for r in rows("SELECT * FROM tags WHERE key NOT LIKE 'mlflow.%'")}
    assert tags == {(a, "team"): "red", (b, "team"): "blue"}, state  # the deleted tag is gone
    history = rows("SELECT step, timestamp, value FROM metrics WHERE run_id = ? AND key = 'rmse' ORDER BY step", [a])
    assert history == [{"step": 0, "timestamp": 10, "value": 0.9}, {"step": 1, "timestamp": 20, "value": 0.5}], state
    latest = {(r["run_id"], r["key"]): r["value"] for r in rows("SELECT * FROM latest_metrics")}
    assert latest[(a, "rmse")] == 0.5 and latest[(b, "rmse")] == 0.7 and latest[(c, "rmse")] == 0.3, state
    assert math.isnan(latest[(a, "loss")]) and len(latest) == 4, state
    art = rows("SELECT * FROM artifacts")
    assert art == [{"run_id": a, "path": "notes/readme.txt", "size": 5, "digest": art[0]["digest"]}], state
    assert art[0]["digest"].startswith("sha256:"), state
    # runs_wide: one row per run, one column per param, latest metric and tag
    wide = {r["run_name"]: r for r in rows("SELECT * FROM runs_wide")}
    assert set(wide) == {"a", "b", "c"}, state
    cols = evtrack.sql("SELECT * FROM runs_wide LIMIT 0").column_names
    assert cols[: len(RUN_COLUMNS)] == evtrack.sql("SELECT * FROM runs LIMIT 0").column_names, state
    assert {"params.alpha", "params.model", "params.note", "metrics.rmse", "metrics.loss", "tags.team"} <= set(cols)
    assert (wide["a"]["params.alpha"], wide["a"]["metrics.rmse"], wide["a"]["tags.team"]) == ("0.1", 0.5, "red")
    assert (wide["c"]["params.model"], wide["c"]["tags.team"], wide["b"]["params.note"]) == (None, None, HOSTILE)
    # an aggregate across experiments: average latest rmse by alpha
    agg = rows(
        "SELECT p.value AS alpha, avg(m.value) AS rmse, count(*) AS n FROM params p "
        "JOIN latest_metrics m ON m.run_id = p.run_id AND m.key = 'rmse' "
        "WHERE p.key = 'alpha' GROUP BY p.value ORDER BY p.value"
    )
    assert agg == [{"alpha": "0.1", "rmse": pytest.approx(0.4), "n": 2}, {"alpha": "0.5", "rmse": 0.7, "n": 1}]


def test_views_in_the_tail_then_compacted(client: Any) -> None:
    ids = log_data(client)
    check_views(ids, "tail")
    assert rows("SELECT * FROM events") == []  # the events view is the compacted log only
    assert compact(client.store, grace_seconds=0).version == 1
    check_views(ids, "compacted")
    by_type = {r["type"]: r["n"] for r in rows("SELECT type, count(*) AS n FROM events GROUP BY type")}
    assert by_type["run_created"] == 3 and by_type["param"] == 5 and by_type["tag_deleted"] == 1
    assert by_type["metric"] == 6  # as logged, the exact duplicate included: the log of record
    assert by_type["experiment_created"] >= 2 and by_type["artifact_logged"] == 1
    metric = rows(
        "SELECT run_id, key, metric_value, step, timestamp FROM events WHERE type = 'metric' "
        "AND run_id = ? AND key = 'rmse' ORDER BY step, eid LIMIT 1",
        [ids["a"]],
    )
    assert metric == [{"run_id": ids["a"], "key": "rmse", "metric_value": 0.9, "step": 0, "timestamp": 10}]
    # a mix: compacted rows plus a tail that changes them
    client.log_metric(ids["b"], "rmse", 0.1, step=3, timestamp=30)
    client.set_tag(ids["b"], "team", "green")
    assert one("SELECT value FROM latest_metrics WHERE run_id = ? AND key = 'rmse'", [ids["b"]]) == 0.1
    assert one("SELECT value FROM tags WHERE run_id = ? AND key = 'team'", [ids["b"]]) == "green"
    assert one('SELECT "tags.team" FROM runs_wide WHERE run_id = ?', [ids["b"]]) == "green"
    assert one("SELECT count(*) FROM metrics WHERE run_id = ?", [ids["b"]]) == 2
    assert one("SELECT value FROM latest_metrics WHERE run_id = ? AND key = 'rmse'", [ids["b"]], fresh=False) == 0.7
    assert one("SELECT value FROM tags WHERE run_id = ? AND key = 'team'", [ids["b"]], version=1) == "blue"


def test_pandas_output_and_parameters(local_client: Any) -> None:
    pd = pytest.importorskip("pandas")
    ids = log_data(local_client)
    frame = evtrack.sql("SELECT run_name, start_time FROM runs ORDER BY start_time", output_format="pandas")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["run_name", "start_time"] and list(frame["run_name"]) == ["a", "b", "c"]
    assert evtrack.sql("SELECT 1 AS x").column_names == ["x"]  # Arrow by default
    with pytest.raises(InvalidParameterError, match="output format"):
        evtrack.sql("SELECT 1", output_format="csv")
    # parameters are bound, never spliced: the hostile value is matched exactly, as data
    assert rows("SELECT run_id FROM params WHERE value = ?", [HOSTILE]) == [{"run_id": ids["b"]}]
    assert rows("SELECT run_id FROM params WHERE value = $1 AND key = $2", [HOSTILE, "note"]) == [{"run_id": ids["b"]}]
    assert rows("SELECT ? AS v", [HOSTILE]) == [{"v": HOSTILE}]
    assert rows("SELECT run_id FROM params WHERE value = ?", ["' OR 1=1 --"]) == []
    assert one("SELECT count(*) FROM runs WHERE start_time > ? AND run_name IN (?, ?)", [150, "b", "c"]) == 2
    with pytest.raises(InvalidParameterError):
        evtrack.sql("SELECT ? + ?", [1])  # too few parameters: a clear error, not a crash
    assert one("SELECT count(*) FROM runs") == 3  # nothing was harmed


REFUSED = [  # statements that are not a single SELECT
    "DROP TABLE runs",
    "DROP VIEW runs",
    "CREATE TABLE x AS SELECT * FROM runs",
    "CREATE TEMP TABLE x (a INTEGER)",
    "CREATE MACRO m(a) AS a",
    "CREATE OR REPLACE VIEW runs AS SELECT 1 AS run_id",
    "INSERT INTO runs SELECT * FROM runs",
    "UPDATE runs SET status = 'KILLED'",
    "DELETE FROM params",
    "ALTER VIEW runs RENAME TO r",
    "ATTACH ':memory:' AS other",
    "ATTACH '/tmp/evtrack-evil.db' AS evil",
    "DETACH memory",
    "USE memory",
    "COPY runs TO '{tmp}/out.csv'",
    "COPY (SELECT * FROM runs) TO '{tmp}/out.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{tmp}/export'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 8",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    "EXPLAIN ANALYZE DROP VIEW runs",
    "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    "explain   analyse  DELETE FROM params",
    "/* hidden */ EXPLAIN ANALYZE DROP VIEW runs",
    "SELECT 1; DROP VIEW runs",
    "SELECT 1; SELECT 2",
]

UNREACHABLE = [  # SELECTs that try to reach files, the network or other databases
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM glob('{root}/**')",
    "SELECT * FROM read_parquet('{parquet}')",
    "SELECT * FROM '{parquet}'",
    "SELECT * FROM parquet_metadata('{parquet}')",
    "SELECT * FROM read_json_auto('{root}/_manifests/00000000000000000001.json')",
    "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
    "SELECT * FROM 'https://example.invalid/x.parquet'",
    "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
    "SELECT * FROM sqlite_scan('/tmp/x.db', 't')",
    "SELECT * FROM query('DROP VIEW runs')",
    "SELECT * FROM duckdb_extensions()",
]


def test_sql_is_read_only_and_sandboxed(local_client: Any, tmp_path: Any) -> None:
    log_data(local_client)
    compact(local_client.store, grace_seconds=0)
    root = local_client.store.root
    parquet = str(next(pathlib.Path(root, "tables").rglob("*.parquet")))
    before = {r["run_id"] for r in rows("SELECT run_id FROM runs")}
    out = tmp_path / "out"  # where the refused statements would write
    out.mkdir()
    failures = []
    for template in REFUSED:
        query = template.format(tmp=out)
        try:
            evtrack.sql(query)
        except InvalidParameterError as exc:
            if not any(w in str(exc) for w in ("read-only", "exactly one statement")):
                failures.append(f"{query!r}: unclear error {exc}")
        else:
            failures.append(f"{query!r} was allowed")
    for template in UNREACHABLE:
        query = template.format(root=root, parquet=parquet)
        try:
            evtrack.sql(query)
        except InvalidParameterError:
            pass
        else:
            failures.append(f"{query!r} was allowed")
    assert not failures, "\n".join(failures)
    assert not any(out.iterdir()), list(out.iterdir())  # nothing was written
    assert {r["run_id"] for r in rows("SELECT run_id FROM runs")} == before  # nothing was changed
    assert one("SELECT current_setting('enable_external_access')") is False
    # read-only statements that stay allowed
    assert evtrack.sql("EXPLAIN SELECT * FROM runs").num_rows >= 1
    assert evtrack.sql("EXPLAIN ANALYZE SELECT count(*) FROM runs").num_rows >= 1
    assert one("WITH r AS (SELECT * FROM runs) SELECT count(*) FROM r") == 3
    assert one("SELECT count(*) FROM query('SELECT * FROM runs')") == 3


def test_sql_errors_are_clear(local_client: Any) -> None:
    log_data(local_client)
    with pytest.raises(InvalidParameterError, match="syntax"):
        evtrack.sql("SELEC * FROM runs")
    with pytest.raises(InvalidParameterError, match="SELECT"):
        evtrack.sql("   ")
    with pytest.raises(InvalidParameterError):
        evtrack.sql(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="nosuch"):
        evtrack.sql("SELECT * FROM nosuch")
    with pytest.raises(InvalidParameterError, match="nosuch"):
        evtrack.sql("SELECT nosuch FROM runs")
    with pytest.raises(EvtrackError):
        evtrack.sql("SELECT 1", version=99)  # no such manifest version
