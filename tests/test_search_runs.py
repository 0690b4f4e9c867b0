"""search_runs over both stores: filters, orderings, paging, view types and freshness.

One small, hand-made set of eight runs (``WORLD`` below) is logged through the
client; every table of filters and orderings is then checked twice on each
backend — first with everything still in the inbox tail, then after a
compaction — with the expected runs written out by hand.  Runs are named by
their ``tags.case`` (``r0`` … ``r7``) and have distinct start times, so the
default order (start_time DESC, then run_id) is simply r7 … r0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

import evtrack
from compaction import compact
from evtrack.entities import Metric, Param, RunTag, ViewType
from evtrack.errors import InvalidParameterError
from evtrack.query import search_grammar as grammar
from evtrack.query.lexer import SearchFilterError
from evtrack.query.search_sql import render_search

NAN, INF = math.nan, math.inf
ALL = ["r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"]  # the default order: start_time DESC
USER = "tester"

# case: run_name, status, params, metric points {key: [(value, step, timestamp)]}, tags
# (start_time = 1000 * (i + 1); end_time = start_time + 500 unless the run is RUNNING)
WORLD: dict[str, tuple[str, str, dict[str, str], dict[str, list[tuple[float, int, int]]], dict[str, str]]] = {
    "r0": (
        "alpha-run",
        "FINISHED",
        {"model": "lasso", "alpha": "0.1"},
        {"rmse": [(0.9, 0, 10), (0.3, 1, 5)], "r2": [(0.9, 0, 10)]},  # latest rmse: the higher step
        {"developer": "alice", "env": "prod"},
    ),
    "r1": (
        "beta-run",
        "FINISHED",
        {"model": "Lasso", "alpha": "0.5"},
        {"rmse": [(0.8, 0, 10), (0.5, 0, 20)], "r2": [(0.5, 0, 10)]},  # same step: later timestamp wins
        {"developer": "Alice"},
    ),
    "r2": (
        "gamma",
        "FAILED",
        {"model": "ridge"},
        {"rmse": [(0.2, 0, 10), (NAN, 1, 10)], "r2": [(0.1, 0, 10)]},  # latest rmse is NaN
        {"developer": "bob", "env": "dev"},
    ),
    "r3": (
        "delta",
        "RUNNING",
        {"model": "ridge", "alpha": "1.0"},
        {"rmse": [(INF, 0, 10)]},
        {"developer": "carol", "env": "prod"},
    ),
    "r4": ("epsilon", "KILLED", {"alpha": "0.1"}, {"rmse": [(-INF, 0, 10)], "r2": [(-0.2, 0, 10)]}, {"env": "dev"}),
    "r5": (
        "zeta",
        "FINISHED",
        {"model": "lasso", "alpha": "2"},
        {"r2": [(0.3, 0, 10)]},
        {"developer": "anna", "env": "prod"},
    ),
    "r6": (
        "eta",
        "FINISHED",
        {"model": "elasticnet", "alpha": "0.5"},
        {"rmse": [(0.3, 0, 10)], "r2": [(0.3, 0, 10)]},  # ties with r0 (rmse) and r5 (r2)
        {"developer": "al_x", "env": "staging"},
    ),
    "r7": (
        "theta",
        "FINISHED",
        {"model": "lasso", "alpha": "10"},
        {"rmse": [(1.5, 0, 10)], "r2": [(0.95, 0, 10)]},
        {"developer": "Aaron"},
    ),
}


@dataclass
class World:
    client: Any
    exp: str
    ids: dict[str, str]  # case -> run_id

    @property
    def cases(self) -> dict[str, str]:
        return {rid: case for case, rid in self.ids.items()}

    def search(self, filter_string: str = "", order_by: list[str] | None = None, **kw: Any) -> list[str]:
        runs = self.client.search_runs([self.exp], filter_string, order_by=order_by, **kw)
        return [self.cases.get(r.info.run_id, r.info.run_id) for r in runs]

    def expand(self, text: str) -> str:
        """``{r3}`` in a filter stands for r3's run id."""
        return text.format(**self.ids)


def start_of(case: str) -> int:
    return 1000 * (int(case[1:]) + 1)


def log_world(client: Any, name: str = "search") -> World:
    exp = client.create_experiment(name)
    ids = {}
    for case, (run_name, status, params, metrics, tags) in WORLD.items():
        run = client.create_run(
            exp, start_time=start_of(case), run_name=run_name, tags={"case": case, "mlflow.user": USER}
        )
        rid = ids[case] = run.info.run_id
        client.log_batch(
            rid,
            metrics=[Metric(k, v, ts, step) for k, points in metrics.items() for v, step, ts in points],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if status != "RUNNING":
            client.set_terminated(rid, status, end_time=start_of(case) + 500)
    client.flush()
    return World(client, exp, ids)


@pytest.fixture
def client(tracking_uri: str, cache_dir: Any) -> Any:
    return evtrack.MlflowClient()


@pytest.fixture
def world(client: Any) -> World:
    return log_world(client)


def check_table(world: World, table: list[tuple], state: str) -> None:
    """Run every (filter, [order_by,] expected) row; report every mismatch at once."""
    failures = []
    for row in table:
        filter_string, order_by, expected = row if len(row) == 3 else (row[0], None, row[1])
        got = world.search(world.expand(filter_string), order_by)
        if got != expected:
            failures.append(f"[{state}] {filter_string!r} order_by={order_by}: got {got}, expected {expected}")
    assert not failures, "\n".join(failures)


def compact_now(client: Any) -> Any:
    """Flush this process's buffer, then compact everything (the writer's background flush
    could otherwise land a segment mid-way and make two commits); returns the report."""
    client.flush()
    return compact(client.store, grace_seconds=0)


def compact_store(world: World) -> int:
    return compact_now(world.client).version


# ------------------------------------------------------------------------- filters

FILTERS: list[tuple] = [
    ("", ALL),
    # metrics: the latest value; IEEE semantics for NaN (only != matches); ±inf are numbers
    ("metrics.rmse < 0.5", ["r6", "r4", "r0"]),
    ("metrics.rmse <= 0.5", ["r6", "r4", "r1", "r0"]),
    ("metrics.rmse > 0.3", ["r7", "r3", "r1"]),
    ("metrics.rmse >= 0.3", ["r7", "r6", "r3", "r1", "r0"]),
    ("metrics.rmse = 0.3", ["r6", "r0"]),
    ("metrics.rmse != 0.3", ["r7", "r4", "r3", "r2", "r1"]),  # NaN matches !=, missing (r5) never
    ("metrics.rmse > 1e308", ["r3"]),
    ("metrics.rmse < -1e308", ["r4"]),
    ("metrics.rmse = 0.9", []),  # an older point of r0's history, not its latest value
    ("metrics.rmse = 0.2", []),  # r2's step-0 value; its latest (step 1) is NaN
    ("metrics.`rmse` < 0.5", ["r6", "r4", "r0"]),
    ("metric.r2 > 0.3", ["r7", "r1", "r0"]),
    ("metrics.r2 >= 0.3", ["r7", "r6", "r5", "r1", "r0"]),
    ("metrics.r2 < 0", ["r4"]),
    ("metrics.r2 != 0.3", ["r7", "r4", "r2", "r1", "r0"]),  # r3 has no r2: never matches
    ("metrics.nosuch < 1", []),
    ("metrics.nosuch != 1", []),
    # params: strings; LIKE is case-sensitive, ILIKE not
    ("params.model = 'lasso'", ["r7", "r5", "r0"]),
    ('params.model = "lasso"', ["r7", "r5", "r0"]),
    ("params.model != 'lasso'", ["r6", "r3", "r2", "r1"]),  # r4 has no model: never matches
    ("params.model LIKE 'las%'", ["r7", "r5", "r0"]),
    ("params.model LIKE 'Las%'", ["r1"]),
    ("params.model ILIKE 'LAS%'", ["r7", "r5", "r1", "r0"]),
    ("params.model LIKE '%i%'", ["r6", "r3", "r2"]),
    ("params.model LIKE 'r_dge'", ["r3", "r2"]),
    ("params.model LIKE 'lasso'", ["r7", "r5", "r0"]),
    ("params.model IS NULL", ["r4"]),
    ("params.model IS NOT NULL", ["r7", "r6", "r5", "r3", "r2", "r1", "r0"]),
    ("params.alpha = '0.1'", ["r4", "r0"]),
    ("params.alpha IS NULL", ["r2"]),
    ("param.alpha != '0.1'", ["r7", "r6", "r5", "r3", "r1"]),
    ("params.nosuch != 'x'", []),
    ("params.nosuch IS NULL", ALL),
    # tags
    ("tags.developer = 'alice'", ["r0"]),
    ("tags.developer LIKE 'a%'", ["r6", "r5", "r0"]),
    ("tags.developer ILIKE 'a%'", ["r7", "r6", "r5", "r1", "r0"]),
    ("tags.developer != 'alice'", ["r7", "r6", "r5", "r3", "r2", "r1"]),
    ("tags.developer LIKE 'al_%'", ["r6", "r0"]),
    ("tags.developer LIKE 'al_x'", ["r6"]),
    ("tags.env IS NULL", ["r7", "r1"]),
    ("tags.env IS NOT NULL", ["r6", "r5", "r4", "r3", "r2", "r0"]),
    ("tags.env = 'prod'", ["r5", "r3", "r0"]),
    ("tags.`mlflow.runName` = 'gamma'", ["r2"]),
    ("tags.\"mlflow.runName\" ILIKE '%-RUN'", ["r1", "r0"]),
    # attributes
    ("attributes.status = 'FINISHED'", ["r7", "r6", "r5", "r1", "r0"]),
    ("status != 'FINISHED'", ["r4", "r3", "r2"]),
    ("attributes.status LIKE 'F%'", ["r7", "r6", "r5", "r2", "r1", "r0"]),
    ("attributes.status LIKE 'f%'", []),
    ("attributes.status ILIKE 'f%'", ["r7", "r6", "r5", "r2", "r1", "r0"]),
    ("attributes.run_name = 'gamma'", ["r2"]),
    ("attributes.run_name LIKE '%-run'", ["r1", "r0"]),
    ("run_name ILIKE '%RUN'", ["r1", "r0"]),
    ("`Run Name` = 'delta'", ["r3"]),
    ("attributes.start_time >= 3000", ["r7", "r6", "r5", "r4", "r3", "r2"]),
    ("attributes.start_time < 3000", ["r1", "r0"]),
    ("created = 5000", ["r4"]),
    ("attributes.start_time != 5000", ["r7", "r6", "r5", "r3", "r2", "r1", "r0"]),
    ("attributes.end_time > 0", ["r7", "r6", "r5", "r4", "r2", "r1", "r0"]),
    ("attributes.end_time != 0", ["r7", "r6", "r5", "r4", "r2", "r1", "r0"]),  # r3 has no end_time
    ("attributes.end_time <= 3500", ["r2", "r1", "r0"]),
    ("attributes.run_id = '{r2}'", ["r2"]),
    ("attributes.run_id != '{r2}'", ["r7", "r6", "r5", "r4", "r3", "r1", "r0"]),
    ("attributes.run_id IN ('{r1}', '{r3}')", ["r3", "r1"]),
    ("run_id IN ('{r1}',)", ["r1"]),
    ("attributes.run_id NOT IN ('{r1}', '{r3}')", ["r7", "r6", "r5", "r4", "r2", "r0"]),
    ("attributes.run_id IN ('nope')", []),
    ("attributes.user_id = 'tester'", ALL),
    ("attributes.user_id = 'somebody'", []),
    ("attributes.artifact_uri LIKE '%{r1}%'", ["r1"]),
    # AND-joined clauses
    ("params.model = 'lasso' and metrics.r2 > 0.3", ["r7", "r0"]),
    ("params.model = 'lasso' AND metrics.rmse < 1 AND tags.env = 'prod'", ["r0"]),
    ("metrics.rmse > 0 and metrics.rmse < 1", ["r6", "r1", "r0"]),
    ("params.model = 'ridge' and tags.env != 'prod'", ["r2"]),
    ("tags.env IS NULL and params.model IS NOT NULL", ["r7", "r1"]),
    (
        "metrics.r2 >= 0.3 and attributes.status = 'FINISHED' and params.alpha IS NOT NULL",
        ["r7", "r6", "r5", "r1", "r0"],
    ),
    ("attributes.run_id IN ('{r0}', '{r2}', '{r4}') and metrics.rmse != 0", ["r4", "r2", "r0"]),
    ("status = 'FINISHED' and status != 'FINISHED'", []),
]

ORDERS: list[tuple] = [
    # NaN after every number, missing values last, in both directions; ties: start_time DESC
    ("", ["metrics.rmse"], ["r4", "r6", "r0", "r1", "r7", "r3", "r2", "r5"]),
    ("", ["metrics.rmse ASC"], ["r4", "r6", "r0", "r1", "r7", "r3", "r2", "r5"]),
    ("", ["metrics.rmse DESC"], ["r3", "r7", "r1", "r6", "r0", "r4", "r2", "r5"]),
    ("", ["metrics.r2"], ["r4", "r2", "r6", "r5", "r1", "r0", "r7", "r3"]),
    ("", ["metrics.r2 DESC"], ["r7", "r0", "r1", "r6", "r5", "r2", "r4", "r3"]),
    ("", ["params.model"], ["r1", "r6", "r7", "r5", "r0", "r3", "r2", "r4"]),  # byte order: 'L' < 'e'
    ("", ["params.model DESC"], ["r3", "r2", "r7", "r5", "r0", "r6", "r1", "r4"]),
    ("", ["params.alpha"], ["r4", "r0", "r6", "r1", "r3", "r7", "r5", "r2"]),  # strings: '10' < '2'
    ("", ["tags.developer DESC"], ["r3", "r2", "r5", "r0", "r6", "r1", "r7", "r4"]),
    ("", ["tags.env"], ["r4", "r2", "r5", "r3", "r0", "r6", "r7", "r1"]),
    ("", ["tags.env DESC"], ["r6", "r5", "r3", "r0", "r4", "r2", "r7", "r1"]),
    ("", ["attributes.start_time"], list(reversed(ALL))),
    ("", ["start_time DESC"], ALL),
    ("", ["created ASC"], list(reversed(ALL))),
    ("", ["attributes.run_name"], ["r0", "r1", "r3", "r4", "r6", "r2", "r7", "r5"]),
    ("", ["run_name DESC"], ["r5", "r7", "r2", "r6", "r4", "r3", "r1", "r0"]),
    ("", ["attributes.status"], ["r2", "r7", "r6", "r5", "r1", "r0", "r4", "r3"]),
    ("", ["attributes.end_time DESC"], ["r7", "r6", "r5", "r4", "r2", "r1", "r0", "r3"]),
    ("", ["attributes.end_time ASC"], ["r0", "r1", "r2", "r4", "r5", "r6", "r7", "r3"]),
    ("", ["params.model ASC", "metrics.r2 DESC"], ["r1", "r6", "r7", "r0", "r5", "r2", "r3", "r4"]),
    ("", ["tags.env", "attributes.start_time ASC"], ["r2", "r4", "r0", "r3", "r5", "r6", "r1", "r7"]),
    ("", ["metrics.nosuch DESC"], ALL),  # every run lacks the key: the tie-breakers decide
    ("metrics.rmse < 1", ["metrics.rmse"], ["r4", "r6", "r0", "r1"]),
    ("params.model = 'lasso'", ["metrics.rmse DESC"], ["r7", "r0", "r5"]),
    ("tags.developer ILIKE 'a%'", ["tags.developer"], ["r7", "r1", "r6", "r0", "r5"]),
]


@pytest.fixture
def local_client(local_uri: str, fresh_evtrack: None, cache_dir: Any) -> Any:
    """A client of a fresh local store, for behaviour that does not depend on the backend
    (parsing, SQL rendering, the fluent wrappers): the S3 runs would only add minutes."""
    evtrack.set_tracking_uri(local_uri)
    return evtrack.MlflowClient()


def check_run_data(world: World, state: str) -> None:
    """Results carry the latest metrics (NaN and ±inf exact), params, tags and info."""
    runs = {world.cases[r.info.run_id]: r for r in world.client.search_runs([world.exp])}
    assert runs["r0"].data.metrics == {"rmse": 0.3, "r2": 0.9}, state
    assert runs["r1"].data.metrics["rmse"] == 0.5, state
    assert math.isnan(runs["r2"].data.metrics["rmse"]), state
    assert runs["r3"].data.metrics == {"rmse": INF}, state
    assert runs["r4"].data.metrics["rmse"] == -INF, state
    assert runs["r4"].data.params == {"alpha": "0.1"}, state
    assert runs["r0"].data.tags["developer"] == "alice", state
    assert runs["r0"].data.tags["mlflow.runName"] == "alpha-run", state
    info = runs["r2"].info
    assert (info.run_name, info.status, info.start_time, info.end_time, info.user_id, info.lifecycle_stage) == (
        "gamma",
        "FAILED",
        3000,
        3500,
        USER,
        "active",
    ), state
    assert info.experiment_id == world.exp and info.artifact_uri.endswith(f"{world.ids['r2']}/artifacts")
    assert runs["r3"].info.end_time is None and runs["r3"].info.status == "RUNNING", state


def check_paging(world: World, state: str) -> None:
    """max_results + page_token: every run exactly once, in the order of the unpaged search."""
    for order_by in (None, ["metrics.rmse DESC"], ["params.alpha", "tags.env DESC"]):
        whole = world.search("", order_by)
        assert sorted(whole) == sorted(ALL)
        for size in (3, 8) if order_by is None else (3,):
            seen, token, pages = [], None, 0
            while True:
                page = world.client.search_runs([world.exp], "", order_by=order_by, max_results=size, page_token=token)
                assert len(page) <= size
                seen += [world.cases[r.info.run_id] for r in page]
                pages += 1
                token = page.token
                if token is None:
                    break
            assert seen == whole, (state, order_by, size)
            assert pages == math.ceil(len(ALL) / size), (state, order_by, size)
    first = world.client.search_runs([world.exp], "params.model IS NOT NULL", max_results=4)
    assert [world.cases[r.info.run_id] for r in first] == ["r7", "r6", "r5", "r3"] and first.token
    rest = world.client.search_runs([world.exp], "params.model IS NOT NULL", max_results=4, page_token=first.token)
    assert [world.cases[r.info.run_id] for r in rest] == ["r2", "r1", "r0"] and rest.token is None


def test_filters_orders_and_pages_in_the_tail_then_compacted(world: World, store_uri: str) -> None:
    """Every row on the compacted local store; a quarter or a sixth of the rows (each entity type
    and order kind) in each other (backend, state) combination: the SQL is the same, only the
    sources differ (and a search costs tens of ms, so the full table everywhere would be slow)."""
    table = FILTERS + ORDERS
    local = not store_uri.startswith("s3://")
    check_table(world, table[0::4] if local else table[1::6], "tail")
    check_run_data(world, "tail")
    if local:
        check_paging(world, "tail")
    assert compact_store(world) == 1
    check_table(world, table if local else table[2::6], "compacted")
    check_run_data(world, "compacted")
    check_paging(world, "compacted")


def test_default_order_breaks_ties_by_run_id(local_client: Any) -> None:
    """Equal start times: run_id ascending; equal order keys: start_time DESC, then run_id."""
    client = local_client
    exp = client.create_experiment("ties")
    same = [client.create_run(exp, start_time=5, tags={"case": f"s{i}"}).info.run_id for i in range(5)]
    for rid in same:
        client.log_metric(rid, "m", 1.0)
    later = client.create_run(exp, start_time=9).info.run_id
    client.log_metric(later, "m", 1.0)
    assert [r.info.run_id for r in client.search_runs([exp])] == [later] + sorted(same)
    assert [r.info.run_id for r in client.search_runs([exp], order_by=["metrics.m"])] == [later] + sorted(same)
    assert [r.info.run_id for r in client.search_runs([exp], order_by=["start_time ASC"])] == sorted(same) + [later]


def test_bad_paging_arguments(local_client: Any) -> None:
    exp = local_client.create_experiment("paging")
    local_client.create_run(exp)
    with pytest.raises(InvalidParameterError, match="page token"):
        local_client.search_runs([exp], page_token="not-a-token")
    for bad in (0, -1, 50_001, "10"):
        with pytest.raises(InvalidParameterError, match="max_results"):
            local_client.search_runs([exp], max_results=bad)
    assert len(local_client.search_runs([exp], max_results=50_000)) == 1


# ------------------------------------------------------------------------- rejected filters

REJECTED_FILTERS = [
    "metrics.rmse < 'a'",  # non-numeric value for a metric
    "params.model = lasso",  # unquoted string
    "metrics.rmse IS NULL",  # IS NULL on a metric
    "params.model = 'a' OR params.model = 'b'",
    "(params.model = 'a')",
    "params.model = 'a'; DROP TABLE runs",
    "experiment_id = '0'",
    "lifecycle_stage = 'deleted'",
    "attributes.status IN ('FINISHED')",  # IN only for run_id
    "foo.bar = 'x'",  # unknown entity type
    "attributes.nosuch = 'x'",
    "params.model = params.alpha",  # identifier on the right-hand side
    "metrics.rmse < 1 AND",
]
REJECTED_ORDERS = [["metrics.rmse UP"], ["nosuch"], ["datasets.name"], [""], ["metrics.rmse; --"]]


def test_rejected_filters_and_orders(local_client: Any) -> None:
    exp = local_client.create_experiment("rejected")
    local_client.create_run(exp)
    for filter_string in REJECTED_FILTERS:
        with pytest.raises(SearchFilterError):
            local_client.search_runs([exp], filter_string)
    for order_by in REJECTED_ORDERS:
        with pytest.raises(SearchFilterError):
            local_client.search_runs([exp], order_by=order_by)


# ------------------------------------------------------------------------- experiments and view types


def test_run_view_types_and_deleted_experiments(local_client: Any) -> None:
    client = local_client
    live = client.create_experiment("live")
    gone = client.create_experiment("gone")
    keep = [client.create_run(live, start_time=t).info.run_id for t in (1, 2, 3)]
    doomed = [client.create_run(gone, start_time=t).info.run_id for t in (4, 5)]
    client.delete_run(keep[1])
    client.delete_experiment(gone)

    def ids(exps: list[str], view: int) -> list[str]:
        return [r.info.run_id for r in client.search_runs(exps, run_view_type=view)]

    for state in ("tail", "compacted"):
        assert ids([live], ViewType.ACTIVE_ONLY) == [keep[2], keep[0]], state
        assert ids([live], ViewType.DELETED_ONLY) == [keep[1]], state
        assert ids([live], ViewType.ALL) == [keep[2], keep[1], keep[0]], state
        assert ids([gone], ViewType.ACTIVE_ONLY) == [], state  # runs of a deleted experiment
        assert ids([gone], ViewType.DELETED_ONLY) == [doomed[1], doomed[0]], state
        assert ids([live, gone], ViewType.ALL) == [doomed[1], doomed[0], keep[2], keep[1], keep[0]], state
        assert {r.info.lifecycle_stage for r in client.search_runs([gone], run_view_type=ViewType.ALL)} == {
            "deleted"
        }, state
        compact_now(client)
    client.restore_run(keep[1])
    client.restore_experiment(gone)
    assert ids([live, gone], ViewType.ACTIVE_ONLY) == [doomed[1], doomed[0], keep[2], keep[1], keep[0]]
    assert ids([live, gone], ViewType.DELETED_ONLY) == []
    with pytest.raises(InvalidParameterError):
        client.search_runs([live], run_view_type=7)


def test_multiple_experiments_names_and_all(local_client: Any) -> None:
    world = log_world(local_client)
    client = world.client
    other = client.create_experiment("other")
    extra = client.create_run(other, start_time=4500, tags={"case": "x0"}).info.run_id
    client.log_batch(extra, params=[Param("model", "lasso")])
    world.ids["x0"] = extra
    both = client.search_runs([world.exp, other], "params.model = 'lasso'")
    assert [world.cases[r.info.run_id] for r in both] == ["r7", "r5", "x0", "r0"]  # one order across both
    assert [world.cases[r.info.run_id] for r in client.search_runs(other)] == ["x0"]  # a single id
    assert client.search_runs([]) == []
    assert client.search_runs(["12345"]) == []  # unknown experiment: nothing

    by_name = evtrack.search_runs(
        experiment_names=["search", "other"], filter_string="params.model = 'lasso'", output_format="list"
    )
    assert [world.cases[r.info.run_id] for r in by_name] == ["r7", "r5", "x0", "r0"]
    assert evtrack.search_runs(experiment_names=["no such experiment"], output_format="list") == []
    everything = evtrack.search_runs(search_all_experiments=True, output_format="list")
    assert {world.cases[r.info.run_id] for r in everything} == set(ALL) | {"x0"}
    mixed = evtrack.search_runs(
        experiment_ids=[other], experiment_names=["search"], filter_string="metrics.rmse < 0.5", output_format="list"
    )
    assert [world.cases[r.info.run_id] for r in mixed] == ["r6", "r4", "r0"]
    capped = evtrack.search_runs([world.exp], max_results=3, output_format="list")
    assert [world.cases[r.info.run_id] for r in capped] == ALL[:3]
    evtrack.set_experiment("search")  # the active experiment is the default
    assert len(evtrack.search_runs(output_format="list")) == len(ALL)
    with pytest.raises(InvalidParameterError, match="output format"):
        evtrack.search_runs([world.exp], output_format="csv")


def test_pandas_output(local_client: Any) -> None:
    pd = pytest.importorskip("pandas")
    world = log_world(local_client)
    frame = evtrack.search_runs([world.exp], order_by=["metrics.rmse"])
    assert isinstance(frame, pd.DataFrame)
    cols = list(frame.columns)
    assert cols[:6] == ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    prefixes = [c.split(".")[0] for c in cols[6:]]
    assert prefixes == sorted(prefixes, key=["metrics", "params", "tags"].index)  # metrics, params, tags
    assert {
        "metrics.rmse",
        "metrics.r2",
        "params.model",
        "params.alpha",
        "tags.developer",
        "tags.env",
        "tags.case",
        "tags.mlflow.runName",
    } <= set(cols)
    assert [world.cases[r] for r in frame["run_id"]] == ["r4", "r6", "r0", "r1", "r7", "r3", "r2", "r5"]
    assert (frame["experiment_id"] == world.exp).all()
    row = frame.set_index("tags.case").loc["r2"]
    assert row["status"] == "FAILED" and row["params.model"] == "ridge" and math.isnan(row["metrics.rmse"])
    assert row["start_time"] == pd.Timestamp(3000, unit="ms", tz="UTC")
    assert row["end_time"] == pd.Timestamp(3500, unit="ms", tz="UTC")
    r5 = frame.set_index("tags.case").loc["r5"]
    assert pd.isna(r5["metrics.rmse"])  # missing
    assert pd.isna(frame.set_index("tags.case").loc["r3"]["end_time"])
    assert str(frame["start_time"].dtype).startswith("datetime64")
    empty = evtrack.search_runs([world.exp], filter_string="params.model = 'none'")
    assert isinstance(empty, pd.DataFrame) and len(empty) == 0


# ------------------------------------------------------------------------- freshness


def test_flushed_but_not_compacted_events_are_visible(client: Any, direct_writer: Any, monkeypatch: Any) -> None:
    """Events another writer put into the inbox (never compacted) show up in the next search
    (on S3 at once with the freshness window off; tests/test_read_freshness.py has the window)."""
    monkeypatch.setenv("EVTRACK_READ_FRESHNESS", "0")
    from evtrack.eventlog import events as ev

    exp = client.create_experiment("fresh")
    assert client.search_runs([exp]) == []
    other = direct_writer(client.store)
    rid = "f" * 32
    other.put(
        [
            other.event(
                ev.RunCreated,
                run_id=rid,
                experiment_id=exp,
                run_name="outside",
                user_id="u",
                start_time=42,
                artifact_uri=f"mem://{rid}",
                tags={"mlflow.runName": "outside"},
            ),
            other.event(ev.ParamLogged, run_id=rid, key="model", value="lasso"),
            other.event(ev.MetricLogged, run_id=rid, key="rmse", value=0.25, step=0, timestamp=1),
        ]
    )
    found = client.search_runs([exp], "params.model = 'lasso' and metrics.rmse < 0.5")
    assert [r.info.run_id for r in found] == [rid]
    assert found[0].data.metrics == {"rmse": 0.25} and found[0].info.run_name == "outside"
    # and this process's own buffered writes, without an explicit flush
    own = client.create_run(exp, start_time=43).info.run_id
    client.log_param(own, "model", "lasso")
    assert [r.info.run_id for r in client.search_runs([exp], "params.model = 'lasso'")] == [own, rid]


def test_tail_updates_override_compacted_rows(client: Any) -> None:
    exp = client.create_experiment("mixed")
    a = client.create_run(exp, start_time=1, tags={"case": "a"}).info.run_id
    b = client.create_run(exp, start_time=2, tags={"case": "b"}).info.run_id
    c = client.create_run(exp, start_time=3, tags={"case": "c"}).info.run_id  # untouched after compaction
    for rid, rmse in ((a, 0.9), (b, 0.1), (c, 0.5)):
        client.log_metric(rid, "rmse", rmse, step=5, timestamp=100)
        client.set_tag(rid, "stage", "old")
    v1 = compact_now(client).version
    assert v1 == 1

    # the tail: a finishes, gets a newer rmse, a new metric and a new tag value; b gets an *older*
    # point (lower step) that must not become its latest value; a run is created and deleted
    client.set_terminated(a, "FINISHED", end_time=77)
    client.log_metric(a, "rmse", 0.05, step=6, timestamp=50)
    client.log_metric(a, "acc", 0.99, step=0, timestamp=1)
    client.set_tag(a, "stage", "new")
    client.log_metric(b, "rmse", 7.0, step=1, timestamp=999)
    d = client.create_run(exp, start_time=4, tags={"case": "d"}).info.run_id
    client.delete_run(b)
    client.flush()

    def ids(*args: Any, **kw: Any) -> list[str]:
        names = {a: "a", b: "b", c: "c", d: "d"}
        return [names[r.info.run_id] for r in client.search_runs([exp], *args, **kw)]

    assert ids("attributes.status = 'FINISHED'") == ["a"]
    assert ids("attributes.status = 'RUNNING'") == ["d", "c"]
    assert ids("metrics.rmse < 0.2", order_by=["metrics.rmse"]) == ["a"]
    assert ids("metrics.rmse < 0.2", run_view_type=ViewType.ALL, order_by=["metrics.rmse"]) == ["a", "b"]
    assert ids("metrics.acc > 0.9") == ["a"]
    assert ids("tags.stage = 'new'") == ["a"]
    assert ids("tags.stage = 'old'") == ["c"]
    assert ids(run_view_type=ViewType.DELETED_ONLY) == ["b"]
    assert ids(order_by=["metrics.rmse DESC"], run_view_type=ViewType.ALL) == ["c", "b", "a", "d"]

    def sql(query: str, **kw: Any) -> dict:
        return dict(evtrack.sql(query, **kw).to_pylist()[0])

    q_status = f"SELECT status, end_time FROM runs WHERE run_id = '{a}'"
    q_rmse = f"SELECT value, step FROM latest_metrics WHERE run_id = '{a}' AND key = 'rmse'"
    q_b = f"SELECT value, step FROM latest_metrics WHERE run_id = '{b}' AND key = 'rmse'"
    q_count = f"SELECT count(*) AS n FROM runs WHERE experiment_id = '{exp}'"
    q_hist = f"SELECT count(*) AS n FROM metrics WHERE run_id = '{b}' AND key = 'rmse'"
    assert sql(q_status) == {"status": "FINISHED", "end_time": 77}
    assert sql(q_rmse) == {"value": 0.05, "step": 6}
    assert sql(q_b) == {"value": 0.1, "step": 5}
    assert sql(q_count) == {"n": 4}
    assert sql(q_hist) == {"n": 2}  # the tail point joins the compacted history
    assert sql(f"SELECT lifecycle_stage FROM runs WHERE run_id = '{b}'") == {"lifecycle_stage": "deleted"}
    # fresh=False: the compacted state only; version=1: pinned, also without the tail
    for kw in ({"fresh": False}, {"version": v1}):
        assert sql(q_status, **kw) == {"status": "RUNNING", "end_time": None}
        assert sql(q_rmse, **kw) == {"value": 0.9, "step": 5}
        assert sql(q_count, **kw) == {"n": 3}
        assert sql(q_hist, **kw) == {"n": 1}
        assert evtrack.sql(f"SELECT * FROM latest_metrics WHERE run_id = '{a}' AND key = 'acc'", **kw).num_rows == 0

    # the next compaction folds the tail; version 1 still shows the old state, version 2 the new
    assert compact_now(client).version == 2
    assert sql(q_status, version=2) == {"status": "FINISHED", "end_time": 77}
    assert sql(q_status, fresh=False) == {"status": "FINISHED", "end_time": 77}
    assert sql(q_status, version=1) == {"status": "RUNNING", "end_time": None}
    assert sql(q_rmse) == {"value": 0.05, "step": 6} and sql(q_b) == {"value": 0.1, "step": 5}
    assert ids("metrics.rmse < 0.2", run_view_type=ViewType.ALL, order_by=["metrics.rmse"]) == ["a", "b"]
    history = client.get_metric_history(b, "rmse")
    assert [(m.step, m.value) for m in history] == [(1, 7.0), (5, 0.1)]


def test_pinned_version_search(local_client: Any) -> None:
    """The engine's search_runs can be pinned to an older manifest (time travel)."""
    from evtrack.query.search import search_runs

    client = local_client
    exp = client.create_experiment("pinned")
    rid = client.create_run(exp, start_time=1).info.run_id
    client.log_param(rid, "model", "lasso")
    compact_now(client)
    client.set_terminated(rid, "KILLED")
    client.log_metric(rid, "rmse", 1.0)
    compact_now(client)
    backend = client._backend
    assert [r.info.status for r in search_runs(backend, [exp], version=1)] == ["RUNNING"]
    assert search_runs(backend, [exp], "metrics.rmse > 0", version=1) == []
    assert [r.info.status for r in search_runs(backend, [exp], "metrics.rmse > 0", version=2)] == ["KILLED"]
    assert [r.info.status for r in client.search_runs([exp])] == ["KILLED"]


# ------------------------------------------------------------------------- hostile strings

HOSTILE = [
    "' OR 1=1 --",
    "x' OR 'a'='a",
    "'; DROP TABLE runs; --",
    '"; DROP TABLE params; --',
    "/* comment */ lasso",
    "lasso' UNION SELECT run_id FROM runs --",
    "1; ATTACH '/tmp/evil.db' AS evil",
    "Robert'); DELETE FROM tags WHERE ('1'='1",
    "ünïcødé ✓ 🚀 中文",
    "back\\slash and `tick`",
    "percent % and _under",
    "nul\x00byte",
    "new\nline\ttab",
]


def quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def test_hostile_values_are_literals(local_client: Any) -> None:
    client = local_client
    exp = client.create_experiment("hostile")
    ids = {}
    for i, value in enumerate(HOSTILE):
        rid = client.create_run(exp, start_time=i).info.run_id
        client.log_batch(rid, params=[Param("v", value)], tags=[RunTag("v", value)])
        ids[value] = rid
    plain = client.create_run(exp, start_time=999).info.run_id
    client.log_batch(plain, params=[Param("v", "lasso")], tags=[RunTag("v", "lasso")])
    total = len(HOSTILE) + 1
    for state in ("tail", "compacted"):
        for i, value in enumerate(HOSTILE):
            checks = [("params", "="), ("tags", "=")]
            if state == "tail":
                wild = "%" in value or "_" in value  # wildcards would (rightly) match more
                checks += [] if wild else [("params", "LIKE"), ("tags", "ILIKE")]
                checks += [("params", "!=")] if i % 4 == 0 else []
            for entity, op in checks:
                found = client.search_runs([exp], f"{entity}.v {op} {quoted(value)}")
                got = [r.info.run_id for r in found]
                if op == "!=":
                    assert len(got) == total - 1 and ids[value] not in got, (state, value)
                    continue
                assert got == [ids[value]], (state, entity, op, value)
                assert found[0].data.params["v"] == value and found[0].data.tags["v"] == value
            if state == "tail" and '"' not in value:
                found = client.search_runs([exp], f'params.v = "{value}"')
                assert [r.info.run_id for r in found] == [ids[value]], (state, "double quotes", value)
        assert len(client.search_runs([exp])) == total
        assert evtrack.sql("SELECT count(*) AS n FROM params WHERE key = 'v'").to_pylist() == [{"n": total}]
        compact_now(client)


@pytest.mark.parametrize(
    "key", ["`a'; DROP TABLE runs; --`", '"x"" OR 1=1 --"', "`k/* */UNION SELECT 1`", "`ключ 🔑`", "`nul\x00key`"]
)
def test_hostile_keys_match_nothing(local_client: Any, key: str) -> None:
    world = log_world(local_client)
    for entity in ("params", "tags", "metrics"):
        value = "1" if entity == "metrics" else "'x'"
        try:
            found = world.client.search_runs(
                [world.exp], f"{entity}.{key} != {value}", order_by=[f"{entity}.{key} DESC"]
            )
        except SearchFilterError:
            continue
        assert found == []
    assert world.search() == ALL  # nothing was dropped or changed


@pytest.mark.parametrize("value", HOSTILE + ["needle-7f3a", "0.5)) OR ((1=1"])
def test_rendered_sql_never_contains_user_text(value: str) -> None:
    """Keys, values, experiment ids and numbers all travel as bound parameters."""
    for key in ("model", "mlflow.runName", "k'ey; DROP"):
        qkey = "`" + key.replace("`", "``") + "`"
        for f in (
            f"params.{qkey} = {quoted(value)}",
            f"tags.{qkey} ILIKE {quoted(value)}",
            f"attributes.run_name LIKE {quoted(value)}",
            f"run_id IN ({quoted(value)}, 'other')",
            f"params.{qkey} IS NULL and metrics.{qkey} > 0.123456",
        ):
            comparisons = grammar.parse_run_filter(f)
            orders = grammar.parse_order_by([f"tags.{qkey} DESC", f"metrics.{qkey}"])
            sql, params = render_search(comparisons, orders, ["0", value], ["active"], 10, 0)
            assert value not in sql, (f, sql)
            if key != "model":  # "model" is too common a word to look for
                assert key not in sql, (f, sql)
            assert "0.123456" not in sql and "'" not in sql  # not one SQL string literal
            assert sql.count("?") == len(params)
            assert value in params and "0" in params and "active" in params
            assert key in params or "run_" in f
