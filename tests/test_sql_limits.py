"""Limits of free SQL (evtrack.sql, `evtrack sql`, the server's SQL page): a time limit that
interrupts the query, a memory limit, a row cap that fails rather than cuts, each one clear
message; a runaway query never holds up searches or other requests."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import evtrack
from evtrack.errors import InvalidParameterError
from evtrack.query.limits import QueryLimitError

RUNAWAY = "SELECT count(*) AS n FROM range(1000000000000) a"


@pytest.fixture
def store(tracking_uri: str) -> str:
    evtrack.set_tracking_uri(tracking_uri)
    for alpha in (0.1, 0.2, 0.3):
        with evtrack.start_run():
            evtrack.log_param("alpha", alpha)
            evtrack.log_metric("rmse", alpha * 2)
    return tracking_uri


def test_a_runaway_query_stops_at_its_time_limit_and_the_next_one_runs(store: str) -> None:
    started = time.monotonic()
    with pytest.raises(QueryLimitError, match=r"time limit of 0\.5 s") as caught:
        evtrack.sql(RUNAWAY, timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 2.0
    assert "EVTRACK_SQL_TIMEOUT" in str(caught.value)
    assert isinstance(caught.value, InvalidParameterError)  # one of evtrack's errors, not DuckDB's
    assert evtrack.sql("SELECT count(*) AS n FROM runs").to_pylist() == [{"n": 3}]


def test_the_time_limit_counts_from_the_call_and_covers_a_slow_snapshot(store: str) -> None:
    """A snapshot that is slow to build (a server under write load) spends the query's time."""
    from evtrack.query.limits import SqlLimits, run_limited
    from evtrack.query.search import engine_of
    from evtrack.tracking import fluent

    evtrack.flush()
    engine = engine_of(fluent._client()._backend)
    built = []

    def slow_snapshot():
        time.sleep(0.8)
        built.append(time.monotonic())
        return engine.snapshot()

    limits = SqlLimits(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(QueryLimitError, match=r"time limit of 0\.5 s"):
        run_limited(slow_snapshot, "SELECT count(*) AS n FROM runs", [], limits)
    assert time.monotonic() - started < 0.75  # answered at the limit, not when the snapshot came
    started = time.monotonic()
    with pytest.raises(QueryLimitError, match=r"time limit of 1 s"):
        run_limited(slow_snapshot, RUNAWAY, [], SqlLimits(timeout=1.0))  # 0.8 s of its 1 s building
    assert 0.9 < time.monotonic() - started < 1.4
    fine = run_limited(slow_snapshot, "SELECT count(*) AS n FROM runs", [], SqlLimits(timeout=5.0))
    assert fine.to_pylist() == [{"n": 3}]
    time.sleep(0.1)
    assert len(built) == 3  # the build given up on finished on its own thread


def test_the_environment_sets_the_time_limit_and_a_call_overrides_it(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVTRACK_SQL_TIMEOUT", "0.3")
    with pytest.raises(QueryLimitError, match=r"0\.3 s"):
        evtrack.sql(RUNAWAY)
    with pytest.raises(QueryLimitError, match=r"0\.6 s"):
        evtrack.sql(RUNAWAY, timeout=0.6)
    assert evtrack.sql("SELECT 1 AS one", timeout=0).to_pylist() == [{"one": 1}]


def test_searches_and_other_queries_answer_while_a_runaway_query_runs(store: str) -> None:
    outcome: dict[str, Any] = {}

    def runaway() -> None:
        try:
            evtrack.sql(RUNAWAY, timeout=4)
        except QueryLimitError as exc:
            outcome["error"] = str(exc)
        outcome["ended"] = time.monotonic()

    evtrack.search_runs(output_format="list")  # the snapshot exists before the race
    thread = threading.Thread(target=runaway)
    thread.start()
    time.sleep(0.3)
    runs = evtrack.search_runs(filter_string="metrics.rmse < 0.5", output_format="list")
    count = evtrack.sql("SELECT count(*) AS n FROM params").to_pylist()
    answered = time.monotonic()
    still_running = thread.is_alive()
    thread.join()
    assert sorted(r.data.params["alpha"] for r in runs) == ["0.1", "0.2"]
    assert count == [{"n": 3}]
    assert still_running and answered < outcome["ended"] - 1.0
    assert "time limit of 4 s" in outcome["error"]


def test_a_result_over_the_row_cap_fails_rather_than_being_cut(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueryLimitError, match=r"more than 10 rows"):
        evtrack.sql("SELECT * FROM range(11)", max_rows=10)
    assert evtrack.sql("SELECT * FROM range(10)", max_rows=10).num_rows == 10
    monkeypatch.setenv("EVTRACK_SQL_MAX_ROWS", "200000")
    with pytest.raises(QueryLimitError, match=r"more than 200,000 rows.*EVTRACK_SQL_MAX_ROWS"):
        evtrack.sql("SELECT * FROM range(300000)")
    assert evtrack.sql("SELECT * FROM range(200000)").num_rows == 200_000


def test_a_query_over_the_memory_limit_fails_with_the_limit_named(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVTRACK_SQL_MEMORY_LIMIT", "64MB")
    evtrack.set_tracking_uri(tracking_uri)  # a store opened after the setting: its database has the limit
    with evtrack.start_run():
        evtrack.log_param("alpha", 1)
    with pytest.raises(QueryLimitError, match=r"more memory than its limit of 64MB.*EVTRACK_SQL_MEMORY_LIMIT"):
        evtrack.sql("SELECT list(range) AS l FROM range(100000000)")
    assert evtrack.sql("SELECT count(*) AS n FROM runs").to_pylist() == [{"n": 1}]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EVTRACK_SQL_TIMEOUT", "soon", "EVTRACK_SQL_TIMEOUT='soon' is not a number of seconds"),
        ("EVTRACK_SQL_TIMEOUT", "-1", "EVTRACK_SQL_TIMEOUT must be 0"),
        ("EVTRACK_SQL_MAX_ROWS", "0", "EVTRACK_SQL_MAX_ROWS must be at least 1"),
        ("EVTRACK_SQL_MEMORY_LIMIT", "lots", "EVTRACK_SQL_MEMORY_LIMIT='lots' is not a memory size"),
    ],
)
def test_bad_limit_settings_are_named(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    evtrack.set_tracking_uri(tracking_uri)
    with pytest.raises(InvalidParameterError) as caught:
        evtrack.sql("SELECT 1")
    assert message in str(caught.value)


def test_bad_call_limits_are_named(store: str) -> None:
    with pytest.raises(InvalidParameterError, match="timeout must be a number of seconds"):
        evtrack.sql("SELECT 1", timeout="1s")
    with pytest.raises(InvalidParameterError, match="max_rows must be a whole number >= 1"):
        evtrack.sql("SELECT 1", max_rows=0)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``evtrack ARGS`` as its own process (the console script's entry point)."""
    code = "import sys; from evtrack.cli import main; sys.argv = ['evtrack', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_cli_takes_a_timeout_and_a_row_cap(store: str) -> None:
    evtrack.flush()
    stopped = _cli("sql", "--tracking-uri", store, "--timeout", "1s", RUNAWAY)
    capped = _cli("sql", "--tracking-uri", store, "--max-rows", "2", "SELECT run_id FROM runs")
    fine = _cli("sql", "--tracking-uri", store, "--max-rows", "3", "--format", "csv", "SELECT run_id FROM runs")
    assert stopped.returncode != 0 and "time limit of 1 s" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert capped.returncode != 0 and "more than 2 rows" in capped.stderr
    assert fine.returncode == 0 and len(fine.stdout.strip().splitlines()) == 4  # header + 3 runs


def test_the_server_sql_page_stops_a_runaway_query_while_the_api_keeps_answering(
    server_factory: Any, tmp_path: Path
) -> None:
    import httpx

    server = server_factory(sql_timeout=2.0)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        created = http.post("/api/2.0/mlflow/experiments/create", json={"name": "limits"})
        assert created.status_code == 200
        idle = []
        for _ in range(5):
            started = time.monotonic()
            http.post("/api/2.0/mlflow/runs/search", json={"experiment_ids": ["0"]})
            idle.append(time.monotonic() - started)
        page: dict[str, Any] = {}

        def runaway() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as other:
                started = time.monotonic()
                page["response"] = other.get("/sql", params={"q": RUNAWAY})
                page["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=runaway)
        thread.start()
        time.sleep(0.4)
        busy = []
        while thread.is_alive() and len(busy) < 10:
            started = time.monotonic()
            answer = http.post("/api/2.0/mlflow/runs/search", json={"experiment_ids": ["0"]})
            busy.append(time.monotonic() - started)
            assert answer.status_code == 200
        thread.join()
    response = page["response"]
    assert response.status_code == 400 and "time limit of 2 s" in response.text
    assert 1.5 < page["seconds"] < 4.0
    assert busy and max(busy) < 1.0  # searches were not held behind the query
