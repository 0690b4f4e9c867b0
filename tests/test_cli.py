"""The ``evtrack`` command line: every command through click's CliRunner, and the console script once."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import evtrack
from evtrack import Metric, Param, RunTag
from evtrack.cli import cli

T0 = 1_700_000_000_000
SWEEP = [  # run name, model, alpha, rmse
    ("run-0", "lasso", "0.1", 0.9),
    ("run-1", "lasso", "0.01", 0.4),
    ("run-2", "ridge", "1.0", 0.6),
]


@pytest.fixture(autouse=True)
def _isolated(fresh_evtrack: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVTRACK_CACHE_DIR", str(tmp_path / "table-cache"))


def invoke(*args: str, input: str | None = None) -> Result:
    """Run ``evtrack ARGS`` in-process."""
    return CliRunner().invoke(cli, list(args), input=input, prog_name="evtrack")


def ok(*args: str, input: str | None = None) -> str:
    """Run ``evtrack ARGS``, check that it succeeded and return its stdout."""
    result = invoke(*args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def fails(*args: str, code: int = 1) -> str:
    """Run ``evtrack ARGS``, check it failed with one ``Error:`` line and nothing on stdout; return it."""
    result = invoke(*args)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@dataclass
class Seed:
    uri: str
    experiment_id: str
    run_ids: dict[str, str]  # run name -> run id
    deleted_run_id: str


@pytest.fixture
def seeded(store_uri: str) -> Seed:
    """Experiment "sweep": three finished runs of SWEEP (run-2 also logs loss=NaN) and one deleted run."""
    client = evtrack.EvtrackClient(store_uri)
    exp = client.create_experiment("sweep")
    ids = {}
    for i, (name, model, alpha, rmse) in enumerate(SWEEP):
        run = client.create_run(exp, start_time=T0 + i * 1000, run_name=name)
        metrics = [Metric("rmse", rmse, T0, 0)] + ([Metric("loss", float("nan"), T0, 0)] if i == 2 else [])
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param("model", model), Param("alpha", alpha)],
            tags=[RunTag("team", "geo")],
        )
        client.set_terminated(run.info.run_id)
        ids[name] = run.info.run_id
    gone = client.create_run(exp, start_time=T0 + 9000, run_name="gone").info.run_id
    client.delete_run(gone)
    client.flush()
    return Seed(store_uri, exp, ids, gone)


def table_rows(text: str) -> list[list[str]]:
    """The cells of an aligned table (header and dashes dropped), split on runs of 2+ spaces."""
    lines = text.splitlines()
    assert set(lines[1]) <= {"-", " "}
    return [re.split(r" {2,}", line.strip()) for line in lines[2:]]


# -- experiments --------------------------------------------------------------------------------


def test_experiments_lifecycle(store_uri: str, tmp_path: Path) -> None:
    uri = ("--tracking-uri", store_uri)
    exp_id = ok("experiments", "create", "-n", "nyc-taxi", *uri).strip()
    assert exp_id.isdigit() and exp_id != "0"
    listed = ok("experiments", "list", *uri)
    assert listed.splitlines()[0].split() == ["experiment_id", "name", "lifecycle_stage", "artifact_location"]
    assert [r[:3] for r in table_rows(listed)] == [[exp_id, "nyc-taxi", "active"], ["0", "Default", "active"]]
    assert ok("experiments", "search", *uri) == listed

    got = json.loads(ok("experiments", "get", "-x", exp_id, *uri))
    assert (got["experiment_id"], got["name"], got["lifecycle_stage"]) == (exp_id, "nyc-taxi", "active")

    assert "renamed" in ok("experiments", "rename", "-x", exp_id, "--new-name", "nyc-2024", *uri)
    assert json.loads(ok("experiments", "get", "-x", exp_id, *uri))["name"] == "nyc-2024"

    assert "deleted" in ok("experiments", "delete", "-x", exp_id, *uri)
    assert "nyc-2024" not in ok("experiments", "list", *uri)
    deleted = json.loads(ok("experiments", "list", "--view", "deleted_only", "--format", "json", *uri))
    assert [(e["experiment_id"], e["name"], e["lifecycle_stage"]) for e in deleted] == [(exp_id, "nyc-2024", "deleted")]

    assert "restored" in ok("experiments", "restore", "-x", exp_id, *uri)
    assert "nyc-2024" in ok("experiments", "list", *uri)

    location = (tmp_path / "elsewhere").as_uri()
    other = ok("experiments", "create", "-n", "other", "-l", location, *uri).strip()
    assert json.loads(ok("experiments", "get", "-x", other, *uri))["artifact_location"] == location


def test_experiment_create_with_a_taken_name_fails(local_uri: str) -> None:
    ok("experiments", "create", "-n", "dup", "--tracking-uri", local_uri)
    assert (
        fails("experiments", "create", "-n", "dup", "--tracking-uri", local_uri)
        == "Error: Experiment(name=dup) already exists."
    )


@pytest.mark.parametrize(
    "command",
    [
        ["experiments", "get", "-x", "999"],
        ["experiments", "rename", "-x", "999", "--new-name", "x"],
        ["experiments", "delete", "-x", "999"],
        ["experiments", "restore", "-x", "999"],
        ["experiments", "csv", "-x", "999"],
        ["runs", "list", "--experiment-id", "999"],
        ["search", "--experiment-id", "999"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_unknown_experiment_id_is_one_error_line(local_uri: str, command: list[str]) -> None:
    assert fails(*command, "--tracking-uri", local_uri) == "Error: No Experiment with id=999 exists"


def _parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_experiments_csv(seeded: Seed, tmp_path: Path) -> None:
    uri = ("--tracking-uri", seeded.uri)
    text = ok("experiments", "csv", "-x", seeded.experiment_id, *uri)
    assert text.splitlines()[0].split(",") == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
        "metrics.loss",
        "metrics.rmse",
        "params.alpha",
        "params.model",
        "tags.mlflow.runName",
        "tags.team",
    ]
    rows = {r["tags.mlflow.runName"]: r for r in _parse_csv(text)}
    assert set(rows) == {name for name, *_ in SWEEP}  # the deleted run is left out
    for i, (name, model, alpha, rmse) in enumerate(SWEEP):
        row = rows[name]
        assert (row["run_id"], row["experiment_id"], row["status"]) == (
            seeded.run_ids[name],
            seeded.experiment_id,
            "FINISHED",
        )
        assert (float(row["metrics.rmse"]), row["params.model"], row["params.alpha"]) == (rmse, model, alpha)
        assert dt.datetime.fromisoformat(row["start_time"]).timestamp() * 1000 == T0 + i * 1000
    assert rows["run-2"]["metrics.loss"] == ""  # NaN, written as pandas writes it

    out = tmp_path / "runs.csv"
    assert ok("experiments", "csv", "-x", seeded.experiment_id, "-o", str(out), *uri) == ""
    assert out.read_text() == text


def test_experiments_csv_is_the_same_without_pandas(seeded: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pandas")
    args = ("experiments", "csv", "-x", seeded.experiment_id, "--tracking-uri", seeded.uri)
    with_pandas = _parse_csv(ok(*args))
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    without = _parse_csv(ok(*args))
    assert [list(r) for r in without] == [list(r) for r in with_pandas]
    for a, b in zip(with_pandas, without):
        for col in ("start_time", "end_time"):
            assert dt.datetime.fromisoformat(a.pop(col)) == dt.datetime.fromisoformat(b.pop(col))
        assert a == b


# -- runs ------------------------------------------------------------------------------------------


def test_runs_list_describe_delete_restore(seeded: Seed) -> None:
    uri = ("--tracking-uri", seeded.uri)
    listed = ok("runs", "list", "--experiment-id", seeded.experiment_id, *uri)
    assert listed.splitlines()[0].split() == ["run_id", "name", "status", "start_time"]
    assert [r[:3] for r in table_rows(listed)] == [  # newest first
        [seeded.run_ids[n], n, "FINISHED"] for n in ("run-2", "run-1", "run-0")
    ]
    everything = json.loads(
        ok("runs", "list", "--experiment-id", seeded.experiment_id, "--view", "all", "--format", "json", *uri)
    )
    assert [r["name"] for r in everything] == ["gone", "run-2", "run-1", "run-0"]
    assert everything[-1]["start_time"] == T0

    run_id = seeded.run_ids["run-1"]
    described = json.loads(ok("runs", "describe", "--run-id", run_id, *uri))
    assert described["info"]["run_id"] == run_id
    assert described["info"]["lifecycle_stage"] == "active"
    assert described["data"]["metrics"] == {"rmse": 0.4}
    assert described["data"]["params"] == {"model": "lasso", "alpha": "0.01"}
    assert described["data"]["tags"]["team"] == "geo"
    nan_run = json.loads(
        ok("runs", "describe", "--run-id", seeded.run_ids["run-2"], *uri),
        parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"),
    )
    assert nan_run["data"]["metrics"]["loss"] == "NaN"

    assert ok("runs", "delete", "--run-id", run_id, *uri) == f"Run with ID {run_id} has been deleted.\n"
    assert run_id not in ok("runs", "list", "--experiment-id", seeded.experiment_id, *uri)
    assert json.loads(ok("runs", "describe", "--run-id", run_id, *uri))["info"]["lifecycle_stage"] == "deleted"
    assert fails("runs", "delete", "--run-id", run_id, *uri) == f"Error: The run {run_id} is already deleted."
    ok("runs", "restore", "--run-id", run_id, *uri)
    assert run_id in ok("runs", "list", "--experiment-id", seeded.experiment_id, *uri)


def test_describe_unknown_run_fails(local_uri: str) -> None:
    assert (
        fails("runs", "describe", "--run-id", "nope", "--tracking-uri", local_uri)
        == "Error: Run with id=nope not found"
    )


# -- artifacts ----------------------------------------------------------------------------------------


def test_artifacts_log_list_download(seeded: Seed, tmp_path: Path) -> None:
    uri = ("--tracking-uri", seeded.uri)
    run_id = seeded.run_ids["run-0"]
    report = tmp_path / "report.txt"
    report.write_text("rmse 0.9\n")
    ok("artifacts", "log-artifact", "-l", str(report), "-r", run_id, "-a", "reports", *uri)
    ok("artifacts", "log-artifact", "-l", str(report), "-r", run_id, *uri)

    assert table_rows(ok("artifacts", "list", "-r", run_id, *uri)) == [
        ["report.txt", "false", "9"],
        ["reports", "true"],
    ]
    assert json.loads(ok("artifacts", "list", "-r", run_id, "-a", "reports", "--format", "json", *uri)) == [
        {"path": "reports/report.txt", "is_dir": False, "file_size": 9}
    ]

    one = ok("artifacts", "download", "-r", run_id, "-a", "reports/report.txt", "-d", str(tmp_path / "a"), *uri)
    assert Path(one.strip()) == tmp_path / "a" / "report.txt"
    assert Path(one.strip()).read_text() == "rmse 0.9\n"
    everything = Path(ok("artifacts", "download", "-r", run_id, "-d", str(tmp_path / "b"), *uri).strip())
    assert sorted(p.relative_to(everything).as_posix() for p in everything.rglob("*") if p.is_file()) == [
        "report.txt",
        "reports/report.txt",
    ]

    assert "is not a file" in fails("artifacts", "log-artifact", "-l", str(tmp_path / "missing"), "-r", run_id, *uri)
    assert "No artifact" in fails("artifacts", "download", "-r", run_id, "-a", "nothing/here", *uri)


# -- sql ------------------------------------------------------------------------------------------------

RMSE_BY_NAME = (
    "SELECT run_name, \"metrics.rmse\" AS rmse FROM runs_wide WHERE lifecycle_stage = 'active' ORDER BY run_name"
)


def test_sql_formats(seeded: Seed) -> None:
    uri = ("--tracking-uri", seeded.uri)
    assert ok("sql", RMSE_BY_NAME, "--format", "csv", *uri) == "run_name,rmse\nrun-0,0.9\nrun-1,0.4\nrun-2,0.6\n"
    table = ok("sql", RMSE_BY_NAME, *uri).splitlines()
    assert table == ["run_name  rmse", "--------  ----", "run-0      0.9", "run-1      0.4", "run-2      0.6"]
    assert json.loads(ok("sql", RMSE_BY_NAME, "--format", "json", *uri)) == [
        {"run_name": "run-0", "rmse": 0.9},
        {"run_name": "run-1", "rmse": 0.4},
        {"run_name": "run-2", "rmse": 0.6},
    ]


def test_sql_json_is_valid_with_nan_and_special_types(local_uri: str) -> None:
    query = (
        "SELECT 'nan'::DOUBLE AS n, 'inf'::DOUBLE AS i, -'inf'::DOUBLE AS m, 1.5 AS d, NULL AS z, "
        "[1, 2] AS l, DATE '2024-01-02' AS day"
    )
    text = ok("sql", query, "--format", "json", "--tracking-uri", local_uri)
    rows = json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert rows == [
        {"n": "NaN", "i": "Infinity", "m": "-Infinity", "d": 1.5, "z": None, "l": [1, 2], "day": "2024-01-02"}
    ]
    assert (
        ok("sql", query, "--format", "csv", "--tracking-uri", local_uri).splitlines()[1]
        == 'NaN,Infinity,-Infinity,1.5,,"[1, 2]",2024-01-02'
    )


def test_sql_reads_stdin_with_dash(local_uri: str) -> None:
    assert ok("sql", "-", "--format", "csv", "--tracking-uri", local_uri, input="SELECT 42 AS answer") == "answer\n42\n"


def test_sql_version_and_freshness(seeded: Seed) -> None:
    uri = ("--tracking-uri", seeded.uri)
    count = ("sql", "SELECT count(*) AS n FROM runs", "--format", "csv")
    ok("compact", *uri)
    version = _newest_version(seeded.uri)
    client = evtrack.EvtrackClient(seeded.uri)
    client.create_run(seeded.experiment_id, run_name="late")
    client.flush()
    assert ok(*count, *uri) == "n\n5\n"  # the flushed, not compacted run is seen
    assert ok(*count, "--no-fresh", *uri) == "n\n4\n"
    assert ok(*count, "--version", str(version), *uri) == "n\n4\n"
    assert "version 99" in fails(*count, "--version", "99", *uri)


def _newest_version(uri: str) -> int:
    from evtrack.state import manifest
    from evtrack.store import open_store

    return manifest.load(open_store(uri), None).version


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM runs",
        "DROP VIEW runs",
        "CREATE TABLE t AS SELECT 1",
        "ATTACH 'other.db'",
        "COPY (SELECT 1) TO 'out.csv'",
        "SELECT 1; SELECT 2",
    ],
)
def test_sql_refuses_anything_but_one_select(local_uri: str, query: str) -> None:
    line = fails("sql", query, "--tracking-uri", local_uri)
    assert "only SELECT" in line or "exactly one statement" in line


@pytest.mark.parametrize(
    "query, expected",
    [
        ("SELEC 1", 'Error: SQL syntax error: Parser Error: syntax error at or near "SELEC"'),
        ("SELECT nope FROM runs", "Error: SQL error: Binder Error: Referenced column"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Error: SQL error:"),
    ],
)
def test_sql_errors_are_one_line(local_uri: str, query: str, expected: str) -> None:
    assert fails("sql", query, "--tracking-uri", local_uri).startswith(expected)


# -- search ---------------------------------------------------------------------------------------------


def test_search(seeded: Seed) -> None:
    uri = ("--tracking-uri", seeded.uri)
    lasso = (
        "search",
        "--experiment",
        "sweep",
        "--filter",
        "params.model = 'lasso'",
        "--order-by",
        "metrics.rmse ASC",
        "--columns",
        "metrics.rmse,params.alpha",
    )
    r0, r1 = seeded.run_ids["run-0"], seeded.run_ids["run-1"]
    assert ok(*lasso, "--format", "csv", *uri) == (
        f"run_id,run_name,status,metrics.rmse,params.alpha\n{r1},run-1,FINISHED,0.4,0.01\n{r0},run-0,FINISHED,0.9,0.1\n"
    )
    assert table_rows(ok(*lasso, "--max-results", "1", *uri)) == [[r1, "run-1", "FINISHED", "0.4", "0.01"]]

    by_id = json.loads(
        ok(
            "search",
            "--experiment-id",
            seeded.experiment_id,
            "--order-by",
            "params.alpha DESC",
            "--format",
            "json",
            *uri,
        ),
        parse_constant=lambda c: pytest.fail(c),
    )
    assert [r["run_name"] for r in by_id] == ["run-2", "run-0", "run-1"]
    assert list(by_id[0]) == [
        "run_id",
        "run_name",
        "status",
        "metrics.loss",
        "metrics.rmse",
        "params.alpha",
        "params.model",
    ]  # default columns: every metric and param
    assert by_id[0]["metrics.loss"] == "NaN" and by_id[1]["metrics.loss"] is None

    everywhere = json.loads(ok("search", "--format", "json", "--columns", "experiment_id,start_time", *uri))
    assert {(r["run_id"], r["experiment_id"]) for r in everywhere} == {
        (rid, seeded.experiment_id) for rid in seeded.run_ids.values()
    }
    assert {r["start_time"] for r in everywhere} == {T0, T0 + 1000, T0 + 2000}
    deleted = json.loads(ok("search", "--experiment", "sweep", "--view", "deleted_only", "--format", "json", *uri))
    assert [r["run_id"] for r in deleted] == [seeded.deleted_run_id]


@pytest.mark.parametrize(
    "filter_string, position",
    [
        ("metrics.rmse < 1 OR metrics.rmse > 2", 17),
        ("params.model = lasso", 15),
        ("metrics.rmse < 'x'", 15),
        ("bogus.key = 'x'", 0),
    ],
)
def test_search_bad_filter_names_the_position(local_uri: str, filter_string: str, position: int) -> None:
    ok("experiments", "create", "-n", "e", "--tracking-uri", local_uri)
    line = fails("search", "--experiment", "e", "--filter", filter_string, "--tracking-uri", local_uri)
    assert line.endswith(f"(at position {position})")


def test_search_unknown_experiment_name_fails(local_uri: str) -> None:
    assert fails("search", "--experiment", "nope", "--tracking-uri", local_uri) == "Error: No experiment named 'nope'"


# -- usage errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, names",
    [
        (["experiments", "create"], "--experiment-name"),
        (["experiments", "list", "--view", "sideways"], "--view"),
        (["search", "--columns", "bogus.x"], "--columns"),
        (["search", "--max-results", "0"], "--max-results"),
        (["sql", "SELECT 1", "--format", "xml"], "--format"),
        (["runs", "describe"], "--run-id"),
        (["nosuch"], "nosuch"),
    ],
)
def test_usage_errors_are_one_line(local_uri: str, command: list[str], names: str) -> None:
    line = fails(*command, code=2)
    assert names in line and "--help" in line


def test_group_without_a_command_prints_its_help() -> None:
    result = invoke("runs")
    assert "Example" in result.output and "describe" in result.output


# -- the console script, as a user runs it ------------------------------------------------------------------


def test_console_script_create_then_search(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("evtrack")
    assert script.exists(), "the evtrack console script is not installed in this environment"
    store = str(tmp_path / "store")
    env = {**os.environ, "EVTRACK_SPOOL_DIR": str(tmp_path / "spool"), "EVTRACK_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("EVTRACK_TRACKING_URI", None)

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(script), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**env, **extra},
            cwd=tmp_path,
        )

    created = run("experiments", "create", "-n", "e2e", "--tracking-uri", store)
    assert created.returncode == 0, created.stderr
    exp_id = created.stdout.strip()

    client = evtrack.EvtrackClient(store)
    run_id = client.create_run(exp_id, run_name="fit").info.run_id
    client.log_batch(run_id, metrics=[Metric("rmse", 1.25, T0, 0)], params=[Param("alpha", "0.5")])
    client.flush()

    found = run("search", "--experiment", "e2e", "--format", "json", EVTRACK_TRACKING_URI=store)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == [
        {"run_id": run_id, "run_name": "fit", "status": "RUNNING", "metrics.rmse": 1.25, "params.alpha": "0.5"}
    ]

    refused = run("sql", "DROP VIEW runs", "--tracking-uri", store)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == ["Error: sql() is read-only: only SELECT queries are allowed (got DROP)"]
