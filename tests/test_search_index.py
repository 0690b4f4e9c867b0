"""The search index behind search_runs (``evtrack.query.run_index``): integer run ids, one dense
column per searched key, the tail's runs on top.

The reference is the same search rendered by ``render_search`` over the documented views (the
plain SQL of the filter grammar). Seeded random runs — ties on start time, NaN and ±inf, missing
keys, deleted tags, deleted runs and experiments, runs created or changed after a compaction — are
searched both ways with a table of filters, orders, view types and pages: in the tail, compacted
with a tail on top, and compacted.
"""

from __future__ import annotations

import math
import random
from typing import Any

import duckdb
import pytest

import evtrack
from compaction import compact
from evtrack.entities import Metric, Param, RunTag, ViewType
from evtrack.errors import EvtrackError
from evtrack.query import engine as engine_module
from evtrack.query import run_index
from evtrack.query import search_grammar as grammar
from evtrack.query.search import engine_of
from evtrack.query.search_sql import render_indexed_search, render_search

FILTERS = [
    "",
    "metrics.rmse < 0.5",
    "metrics.rmse != 0.5",
    "metrics.rmse >= 0.5 and metrics.r2 < 0.2",
    "params.alpha IS NULL and metrics.rmse <= 0.9",
    "params.model = 'lasso'",
    "params.model != 'lasso'",
    "params.model LIKE 'l%' and tags.developer IS NOT NULL",
    "params.model ILIKE 'L%'",
    "tags.developer LIKE 'a%'",
    "tags.developer IS NULL",
    "params.alpha = '0.1' and metrics.r2 > 0",
    "attributes.status = 'FINISHED' and params.model != 'ridge'",
    "attributes.run_name LIKE 'run-1%'",
    "attributes.start_time > 1500",
    "tags.team = 'vision'",  # a tag only set after the first compaction
]
ORDERS: list[list[str] | None] = [
    None,
    ["metrics.rmse"],
    ["metrics.rmse DESC"],
    ["params.model DESC", "tags.developer"],
    ["attributes.start_time ASC"],
    ["metrics.r2 DESC", "attributes.run_id DESC"],
]
VIEWS = [ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL]


def _value(rng: random.Random) -> float:
    return rng.choice([math.nan, math.inf, -math.inf, 0.5]) if rng.random() < 0.2 else round(rng.random(), 2)


def log_runs(client: Any, experiments: list[str], rng: random.Random, n: int, prefix: str) -> list[str]:
    """``n`` runs with overlapping start times and sometimes-missing params, metrics and tags."""
    ids = []
    for i in range(n):
        run = client.create_run(
            rng.choice(experiments), start_time=rng.choice([1000, 2000, 3000]), run_name=f"{prefix}-{i}"
        )
        rid = run.info.run_id
        params = {
            k: v
            for k, v in (
                ("model", rng.choice(["lasso", "ridge", "Lasso", "elastic"])),
                ("alpha", rng.choice(["0.1", "1"])),
            )
            if rng.random() < 0.8
        }
        metrics = [Metric(k, _value(rng), 10, 0) for k in ("rmse", "r2") if rng.random() < 0.8]
        tags = {k: v for k, v in (("developer", rng.choice(["anna", "ahmad", "bob", "Al"])),) if rng.random() < 0.7}
        client.log_batch(
            rid,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if rng.random() < 0.6:
            client.set_terminated(rid, rng.choice(["FINISHED", "FAILED"]), end_time=5000)
        ids.append(rid)
    return ids


def change_runs(client: Any, ids: list[str], rng: random.Random) -> None:
    """Updates that override compacted values: newer metric points, tags set and deleted,
    runs deleted and restored, statuses."""
    for rid in rng.sample(ids, len(ids) // 2):
        action = rng.randrange(5)
        try:
            if action == 0:
                client.log_metric(rid, "rmse", _value(rng), timestamp=20, step=5)
            elif action == 1:
                client.set_tag(rid, "team", rng.choice(["vision", "nlp"]))
            elif action == 2:
                client.delete_tag(rid, "developer")
            elif action == 3:
                client.delete_run(rid)
            else:
                client.set_terminated(rid, "KILLED", end_time=6000)
        except EvtrackError:
            pass  # no such tag, or a deleted run


def search_ids(client: Any, experiments: list[str], f: str, order: list[str] | None, view: int, page: int) -> list[str]:
    """Every matching run id, page by page through search_runs."""
    out, token = [], None
    while True:
        runs = client.search_runs(experiments, f, view, page, order, token)
        out += [r.info.run_id for r in runs]
        token = runs.token
        if not token:
            return out


def reference_ids(client: Any, experiments: list[str], f: str, order: list[str] | None, view: int) -> list[str]:
    """The same search as plain SQL over the documented views."""
    snap = engine_of(client._backend).snapshot()
    sql, params = render_search(
        grammar.parse_run_filter(f),
        grammar.parse_order_by(order, kind="run"),
        experiments,
        ViewType.stages(view),
        100_000,
        0,
    )
    return [row[0] for row in snap.rows(sql, params)]


def check_all(client: Any, scopes: list[list[str]], state: str) -> None:
    """Every filter with every order, each in one of the scopes (and view types), one page size."""
    failures = []
    combos = [(f, order) for f in FILTERS for order in ORDERS]
    for i, (f, order) in enumerate(combos):
        experiments, view = scopes[i % 3], VIEWS[i % 3]
        page = (5, 1000)[i // 3 % 2]
        got = search_ids(client, experiments, f, order, view, page)
        expected = reference_ids(client, experiments, f, order, view)
        if got != expected:
            failures.append(
                f"[{state}] {f!r} order={order} view={view} page={page}: {len(got)} runs, expected {len(expected)}"
            )
    assert not failures, "\n".join(failures[:20])


@pytest.fixture
def one_client(local_uri: str, fresh_evtrack: None, cache_dir: Any) -> Any:
    evtrack.set_tracking_uri(local_uri)
    return evtrack.MlflowClient()


@pytest.fixture(params=["tail merged", "tail tables"])
def client(request: pytest.FixtureRequest, one_client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client whose fresh snapshots, once taken a few times, merge the tail into a database of
    their own (small stores), or always search the base's index plus tail tables (stores past
    ``MERGE_MAX_RUNS``)."""
    if request.param == "tail tables":
        monkeypatch.setattr(engine_module, "MERGE_MAX_RUNS", 0)
    return one_client


def compact_now(client: Any) -> None:
    client.flush()
    compact(client.store, grace_seconds=0)


def test_index_matches_the_views_in_the_tail_and_compacted(client: Any) -> None:
    rng = random.Random(7)
    experiments = [client.create_experiment(f"idx-{i}") for i in range(3)]
    scopes = [[experiments[0]], experiments, experiments + ["no-such-experiment"]]
    ids = log_runs(client, experiments, rng, 40, "run")
    for rid in rng.sample(ids, 4):
        client.delete_run(rid)
    check_all(client, scopes, "tail")

    compact_now(client)
    check_all(client, scopes, "compacted")

    ids += log_runs(client, experiments, rng, 12, "late")  # ties with compacted runs on start_time
    change_runs(client, ids, rng)
    client.delete_experiment(experiments[2])
    client.flush()
    check_all(client, scopes, "compacted + tail")

    compact_now(client)
    check_all(client, scopes, "compacted again")


def test_keys_past_the_column_cap_use_the_views(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a version has MAX_KEY_COLUMNS dense columns, further keys are searched by semi-joins,
    with the same results."""
    monkeypatch.setattr(run_index, "MAX_KEY_COLUMNS", 1)
    rng = random.Random(11)
    exp = client.create_experiment("cap")
    log_runs(client, [exp], rng, 30, "run")
    compact_now(client)
    for f, order in [
        ("params.model = 'lasso' and metrics.rmse < 0.7", ["tags.developer DESC"]),
        ("tags.developer LIKE 'a%' and params.alpha IS NOT NULL", ["metrics.r2"]),
        ("", ["params.alpha", "metrics.rmse DESC"]),
    ]:
        assert search_ids(client, [exp], f, order, ViewType.ALL, 4) == reference_ids(
            client, [exp], f, order, ViewType.ALL
        ), (f, order)


def test_unordered_scans_come_in_row_order_on_large_tables() -> None:
    """Searches in the default order over dense columns have no ORDER BY: they rely on DuckDB
    returning a scan with positional joins in table order (preserve_insertion_order), also when
    the tables span several row groups scanned by several threads."""
    con = duckdb.connect(":memory:")
    con.execute("SET threads TO 4")
    con.execute("SET preserve_insertion_order = true")
    n = 400_000  # more than three row groups
    con.execute(f"""CREATE TABLE s_runs AS SELECT i::INTEGER AS rid, 'r' || i AS run_id, (i % 3)::INTEGER AS xid,
                    i % 11 != 0 AS active, i % 11 = 0 AS deleted, 'n' AS run_name, 'u' AS user_id,
                    'FINISHED' AS status, 1000 - i AS start_time, NULL::BIGINT AS end_time, 'a' AS artifact_uri
                    FROM range({n}) t(i) ORDER BY i""")
    con.execute(
        f"CREATE TABLE s_key_0 AS SELECT CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 7919 % 1000) / 1000.0 END"
        f" AS v FROM range({n}) t(i) ORDER BY i"
    )
    filters = grammar.parse_run_filter("metrics.m < 0.3")
    for offset in (0, 25_000, 61_000):  # of the ~62,000 matches
        sql, params = render_indexed_search(
            filters, [], [0, 1], [], ["active"], lambda e, k: "s_key_0", None, 1000, offset
        )
        assert "ORDER BY" not in sql
        got = [r[0] for r in con.execute(sql, params).fetchall()]
        ordered = [r[0] for r in con.execute(sql.replace(" LIMIT", " ORDER BY r.rid LIMIT"), params).fetchall()]
        assert got == ordered and len(got) == 1000


@pytest.mark.parametrize("value", ["x' OR '1'='1", "a; DROP TABLE s_runs; --", "UNION SELECT 1", "ünï'cødé"])
def test_indexed_sql_never_contains_user_text(value: str) -> None:
    """Keys and values travel as bound parameters; the key columns come from the index."""
    quoted = "'" + value.replace("'", "''") + "'"
    for key in ("k'ey; DROP", "mlflow.runName"):
        qkey = "`" + key + "`"
        f = (
            f"params.{qkey} = {quoted} and tags.{qkey} ILIKE {quoted} and metrics.{qkey} > 0.123456 "
            f"and attributes.run_name LIKE {quoted} and run_id IN ({quoted}, 'x')"
        )
        orders = grammar.parse_order_by([f"tags.{qkey} DESC", f"metrics.{qkey}"])
        for tail in (None, "s_tail_3"):
            for column in (lambda e, k: None, lambda e, k: f"s_key_{len(k)}"):
                sql, params = render_indexed_search(
                    grammar.parse_run_filter(f), orders, [1], [2], ["active", "deleted"], column, tail, 10, 0
                )
                assert value not in sql and key not in sql and "'" not in sql and "0.123456" not in sql
                assert sql.count("?") == len(params) and value in params


def test_a_column_table_outside_the_index_is_refused() -> None:
    with pytest.raises(ValueError):
        render_indexed_search(
            grammar.parse_run_filter("params.a = 'b'"),
            [],
            [0],
            [],
            ["active"],
            lambda e, k: "runs; DROP TABLE x",
            None,
            10,
            0,
        )


@pytest.mark.parametrize("merge_max_runs", [0, engine_module.MERGE_MAX_RUNS])
def test_a_snapshot_keeps_its_own_tail_and_dead_tails_are_dropped(
    one_client: Any, monkeypatch: pytest.MonkeyPatch, merge_max_runs: int
) -> None:
    """Each fresh snapshot searches its own tail (tables, or a database of its own on a small
    store): one taken before later writes still answers as of its time; tail tables of snapshots
    nobody holds are unregistered."""
    import gc

    monkeypatch.setattr(engine_module, "MERGE_MAX_RUNS", merge_max_runs)
    client = one_client

    from evtrack.query.search import _runs, search_rids

    exp = client.create_experiment("tails")
    base = client.create_run(exp, start_time=1).info.run_id
    client.log_param(base, "model", "lasso")
    compact_now(client)
    engine = engine_of(client._backend)

    def lasso_runs(snap: Any) -> list[str]:
        rids, index, tail = search_rids(
            snap, grammar.parse_run_filter("params.model = 'lasso'"), [], [exp], ["active"], 100, 0
        )
        return [run.info.run_id for run in _runs(snap, index, tail, rids)]

    first = client.create_run(exp, start_time=2).info.run_id
    client.log_param(first, "model", "lasso")
    client.flush()
    old = engine.snapshot()
    assert lasso_runs(old) == [first, base]
    second = client.create_run(exp, start_time=3).info.run_id
    client.log_param(second, "model", "lasso")
    client.flush()
    new = engine.snapshot()
    assert lasso_runs(new) == [second, first, base]
    assert lasso_runs(old) == [first, base]  # not the newer tail
    if merge_max_runs:  # taken again with no write between: merged into a database of its own
        again = [engine.snapshot() for _ in range(engine_module.MERGE_AFTER)]
        assert again[0] is new and again[-1] is not new
        merged = again[-1]
        assert merged._tail is None and merged.tail_ids == frozenset() and merged.con is not new.con
        assert lasso_runs(merged) == [second, first, base] and lasso_runs(old) == [first, base]
        assert engine.snapshot() is merged
        return

    def tail_tables() -> set[str]:
        return {name for (name,) in new.rows("SELECT view_name FROM duckdb_views() WHERE view_name LIKE 's_tail_%'")}

    old_tables = {name for name in tail_tables() if name.startswith(old._tail.name + "_") or name == old._tail.name}
    assert old_tables
    del old
    gc.collect()
    assert lasso_runs(new) == [second, first, base]
    assert not old_tables & tail_tables()


def test_a_snapshot_built_for_an_older_version_leaves_get_run_right(one_client: Any) -> None:
    """A snapshot of version v folds the tail onto v's rows; if the reader has meanwhile moved to
    a newer version (another thread refreshed), the runs it caches for get_run are read from the
    newer version, not patched from v's rows."""
    client = one_client
    exp = client.create_experiment("versions")
    rid = client.create_run(exp).info.run_id
    compact_now(client)  # v1: the run without tags
    engine = engine_of(client._backend)
    old_manifest = client._backend.reader.manifest
    engine.snapshot()
    client.set_tag(rid, "t", "x")
    compact_now(client)  # v2: tag t
    client.set_tag(rid, "u", "y")  # the tail of v2
    client.flush()
    client._backend.reader.refresh()
    engine._build(old_manifest, True)  # as a search that read the manifest just before the refresh
    tags = client.get_run(rid).data.tags
    assert tags.get("t") == "x" and tags.get("u") == "y"
