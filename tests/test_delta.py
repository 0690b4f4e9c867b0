"""Every compacted table is a Delta Lake table that delta-rs and Polars read like evtrack does.

The readers here are delta-rs (``deltalake``) and Polars, never evtrack's own code; the
answers are compared with ``evtrack.sql`` over the same manifest version.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest
from click.testing import CliRunner

import evtrack
from compaction import compact, delta
from compaction import delta_log as dl
from compaction import delta_state as ds
from compaction.compactor import CRASH_ENV
from compaction.gc import gc
from evtrack.cli import cli
from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.store import open_store

from delta_helpers import canon, check_delta_agrees, delta_keys, delta_table, read_delta, storage_options, table_uri

HOUR_MS = 3_600_000
# tables a populated store must have rows in (the assertions below are not vacuous)
FILLED = (
    "events",
    "metrics",
    "runs",
    "params",
    "tags",
    "latest_metrics",
    "artifacts",
    "inputs",
    "experiments",
    "experiment_tags",
    "registered_models",
)


@pytest.fixture(autouse=True)
def _isolated(cache_dir: Any, fresh_evtrack: None) -> None:
    """Table cache and spool in tmp dirs; evtrack globals reset around each test."""


def sql_rows(table: str, version: int) -> list[tuple]:
    """``evtrack.sql``'s rows of a table's base at a manifest version (no tail)."""
    return canon(evtrack.sql(f"SELECT * FROM base_{table}", version=version, fresh=False).to_pylist())


def delta_rows(store_uri: str, table: str, version: int | None = None) -> list[tuple]:
    """delta-rs' rows of a table (at a Delta version)."""
    return canon(read_delta(store_uri, table, version).to_pylist())


@pytest.fixture
def populated(tracking_uri: str, tmp_path: Any) -> dict[str, Any]:
    """Three compactions: every kind of table filled, runs updated later (partitions rewritten)."""
    store = open_store(tracking_uri)
    exp = evtrack.create_experiment("delta", tags={"team": "ml"})
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    ids = []
    for i in range(3):
        with evtrack.start_run(experiment_id=exp, run_name=f"run-{i}") as run:
            evtrack.log_params({"lr": str(0.1 * (i + 1)), "i": str(i)})
            evtrack.set_tag("kind", "sweep")
            evtrack.log_metric("loss", [float("nan"), math.inf, 0.5][i], step=0)
            evtrack.log_metric("loss", -math.inf if i == 1 else 0.25, step=1)
            evtrack.log_text("hello", "notes.txt")
            evtrack.log_input(evtrack.data.from_path(str(tmp_path / "train.csv")), context="training")
            ids.append(run.info.run_id)
    evtrack.MlflowClient().create_registered_model("delta-model", tags={"stage": "dev"})
    evtrack.flush()
    first = compact(store, grace_seconds=0).version
    running = evtrack.start_run(experiment_id=exp, run_name="still-running")  # end_time stays null
    evtrack.log_metric("loss", 1.0)
    evtrack.flush()
    second = compact(store, grace_seconds=0).version
    client = evtrack.MlflowClient()
    client.set_tag(ids[0], "kind", "best")  # rewrites run 0's partition of the tags table
    client.delete_tag(ids[1], "kind")
    client.log_metric(ids[0], "loss", 0.125, step=2)
    evtrack.flush()
    third = compact(store, grace_seconds=0).version
    assert first < second < third
    return {
        "uri": tracking_uri,
        "store": store,
        "ids": ids,
        "running": running.info.run_id,
        "versions": (first, second, third),
    }


def test_the_newest_delta_version_of_every_table_equals_sql(populated: dict[str, Any]) -> None:
    uri, newest = populated["uri"], populated["versions"][-1]
    assert set(FILLED) <= set(tables.all_tables())
    for table in tables.all_tables():
        want = sql_rows(table, newest)
        assert delta_rows(uri, table) == want, table
        if table in FILLED:
            assert want, f"{table} has no rows: the comparison would prove nothing"
    check_delta_agrees(uri)


def test_an_older_delta_version_equals_the_older_manifest(populated: dict[str, Any]) -> None:
    uri, store = populated["uri"], populated["store"]
    first, _, newest = populated["versions"]
    old = delta.delta_version_of(store, "runs", first)
    assert old is not None and old < delta.delta_version_of(store, "runs", newest)
    changed = 0
    for table in tables.all_tables():
        version = delta.delta_version_of(store, table, first)
        assert delta_rows(uri, table, version) == sql_rows(table, first), table
        changed += sql_rows(table, first) != sql_rows(table, newest)
    assert changed >= 5  # time travel really went somewhere else


def test_rewritten_partitions_show_only_the_new_files(populated: dict[str, Any]) -> None:
    uri, store = populated["uri"], populated["store"]
    _, second, third = populated["versions"]
    before = {f["path"] for f in mf.load(store, second).files("tags")}
    after = {f["path"] for f in mf.load(store, third).files("tags")}
    gone, new = before - after, after - before
    assert gone and new  # the partitions of runs 0 and 1 were rewritten
    newest, previous = delta_keys(uri, "tags"), delta_keys(uri, "tags", delta.delta_version_of(store, "tags", second))
    assert newest == after and previous == before
    last = dl.read_commit(store, "tags", delta_table(uri, "tags").version())
    removed = {dl.store_key("tags", a["remove"]["path"]) for a in last if "remove" in a}
    added = {dl.store_key("tags", a["add"]["path"]) for a in last if "add" in a}
    assert (removed, added) == (gone, new)
    assert all(a["remove"]["dataChange"] for a in last if "remove" in a)
    tag_rows = {(r["run_id"], r["key"]): r["value"] for r in read_delta(uri, "tags").to_pylist()}
    assert tag_rows[(populated["ids"][0], "kind")] == "best"


def test_nan_infinities_nulls_and_times_read_back_typed(populated: dict[str, Any]) -> None:
    import polars as pl
    import pyarrow as pa

    uri, ids = populated["uri"], populated["ids"]
    schema = delta_table(uri, "metrics").schema().to_arrow()
    assert pa.schema(schema).field("value").type == pa.float64()
    assert pa.schema(schema).field("timestamp").type == pa.int64()  # epoch ms, as MLflow's
    metrics = pl.read_delta(table_uri(uri, "metrics"), storage_options=storage_options(uri))
    assert metrics.schema["value"] == pl.Float64 and metrics.schema["step"] == pl.Int64
    first = metrics.filter((pl.col("key") == "loss") & (pl.col("step") == 0)).sort("run_id")
    by_run = {r["run_id"]: r["value"] for r in first.to_dicts()}
    assert math.isnan(by_run[ids[0]]) and by_run[ids[1]] == math.inf and by_run[ids[2]] == 0.5
    assert metrics.filter(pl.col("value") == -math.inf)["run_id"].to_list() == [ids[1]]

    runs = pl.read_delta(table_uri(uri, "runs"), storage_options=storage_options(uri))
    assert runs.schema["start_time"] == pl.Int64 and runs.schema["end_time"] == pl.Int64
    ended = {r["run_id"]: r["end_time"] for r in runs.to_dicts()}
    assert ended[populated["running"]] is None  # a running run: a null end time, not 0
    client = evtrack.MlflowClient()
    for run_id in ids:
        run = client.get_run(run_id)
        assert ended[run_id] == run.info.end_time and isinstance(ended[run_id], int)
    events = read_delta(uri, "events").to_pandas()
    assert str(events["v"].dtype) == "int16" and str(events["ts"].dtype) == "int64"  # pandas via Arrow
    tags = read_delta(uri, "tags").to_pylist()
    assert [t["value"] for t in tags if t["run_id"] == ids[1] and t["key"] == "kind"] == [None]  # deleted: null


def test_the_log_says_which_manifest_each_version_mirrors(populated: dict[str, Any]) -> None:
    uri, store = populated["uri"], populated["store"]
    versions = mf.list_versions(store)
    mapping = delta.version_map(store, "runs")
    assert [e.manifest_version for e in mapping] == versions
    assert [e.delta_version for e in mapping] == list(range(len(versions)))
    for e in mapping:
        assert delta_table(uri, "runs", e.delta_version).transaction_version("evtrack") == e.manifest_version
    result = CliRunner().invoke(
        cli, ["tables", "versions", "runs", "--tracking-uri", uri, "--manifest", str(versions[0])]
    )
    assert result.exit_code == 0 and result.output.strip() == "0"
    md = delta_table(uri, "runs").metadata()
    assert md.configuration["delta.logRetentionDuration"] == "interval 7 days"
    assert md.configuration["delta.deletedFileRetentionDuration"] == "interval 7 days"


def test_checkpoints_every_ten_versions_and_publish_rebuilds_missing_versions(
    local_uri: str, direct_writer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(local_uri)
    w = direct_writer(store, "w1")
    monkeypatch.setenv(delta.ENV, "0")  # compactions do not publish: every version goes missing
    for i in range(23):
        w.put([w.event(ev.MetricLogged, run_id="r1", key="m", value=float(i), step=i, timestamp=i)])
        compact(store, grace_seconds=0)
    assert list(store.list(dl.log_prefix("metrics"))) == []
    monkeypatch.delenv(delta.ENV)

    result = subprocess.run(  # a real process, as a user runs it
        [
            sys.executable,
            "-c",
            "from evtrack.cli import main; main()",
            "tables",
            "publish",
            "--tracking-uri",
            local_uri,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
    n = len(tables.all_tables())
    assert f"published {23 * n} Delta versions" in result.stdout  # 23 manifests x every table

    check_delta_agrees(local_uri)
    listing = dl.list_log(store, "metrics")
    assert listing.checkpoints == [10, 20]
    assert dl.last_checkpoint(store, "metrics") == 20
    for table in ("metrics", "tags", "events"):  # checkpoint 20 = checkpoint 10 + commits 11..20, column-wise
        replayed = dl.Snapshot()
        for v in range(21):
            replayed.apply(dl.read_commit(store, table, v))
        stored = ds.read_checkpoint(store, table, 20)
        assert set(stored.adds) == set(replayed.adds) and set(stored.removes) == set(replayed.removes)
        assert stored.manifest_version == 21 and stored.metadata["id"] == replayed.metadata["id"]
    assert ds.read_checkpoint(store, "metrics", 20).removes  # tier merges left tombstones, kept 7 days
    for version in (5, 10, 15, 22):  # before, at and after checkpoints, read by delta-rs
        rows = read_delta(local_uri, "metrics", version)
        assert sorted(rows.column("step").to_pylist()) == list(range(version + 1))
    again = CliRunner().invoke(cli, ["tables", "publish", "--tracking-uri", local_uri])
    assert again.exit_code == 0 and "published 0 Delta versions" in again.output


@pytest.mark.parametrize("step", ["committed", "delta_committed"])
def test_a_compactor_killed_between_manifest_and_delta_commit_converges(
    step: str, local_uri: str, direct_writer: Any
) -> None:
    store = open_store(local_uri)
    w = direct_writer(store, "w1")
    w.put([w.event(ev.MetricLogged, run_id="r1", key="m", value=1.0, step=0, timestamp=0)])
    compact(store, grace_seconds=0)
    w.put([w.event(ev.MetricLogged, run_id="r1", key="m", value=2.0, step=1, timestamp=1)])
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from compaction import compact; from evtrack.store import open_store; "
            "compact(open_store(sys.argv[1]), grace_seconds=0)",
            local_uri,
        ],
        env={**os.environ, CRASH_ENV: step},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert mf.latest_version(store) == 2  # the manifest is committed ...
    behind = [t for t in tables.all_tables() if delta_table(local_uri, t).transaction_version("evtrack") == 1]
    assert behind  # ... and at least one table's Delta log is still at manifest 1
    assert sorted(read_delta(local_uri, "metrics").column("step").to_pylist()) == (
        [0] if "metrics" in behind else [0, 1]
    )  # a lagging log is an older consistent version, never a mix

    report = compact(store, grace_seconds=0)  # nothing new to fold; the Delta logs catch up

    assert report.commits == 0 and report.errors == []
    check_delta_agrees(local_uri)
    assert sorted(read_delta(local_uri, "metrics").column("step").to_pylist()) == [0, 1]


def test_publishers_racing_write_each_version_once(store_uri: str, direct_writer: Any, monkeypatch) -> None:
    store = open_store(store_uri)
    w = direct_writer(store, "w1")
    monkeypatch.setenv(delta.ENV, "0")
    for i in range(12):
        w.put([w.event(ev.TagSet, run_id=f"r{i % 3}", key="k", value=str(i))])
        compact(store, grace_seconds=0)
    start = threading.Barrier(4)
    reports: list[Any] = []

    def publisher() -> None:
        start.wait()
        reports.append(delta.publish(open_store(store_uri), table_names=["tags", "events", "runs"]))

    threads = [threading.Thread(target=publisher) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [r.errors for r in reports] == [[]] * 4
    assert sum(r.versions for r in reports) == 12 * 3  # every version written once, by one of them
    for table in ("tags", "events", "runs"):
        assert [e.manifest_version for e in delta.version_map(store, table)] == list(range(1, 13))
        assert delta_keys(store_uri, table) == {f["path"] for f in mf.load(store).files(table)}


def _backdate(store_root: str, prefix: str, hours: float) -> None:
    """Make every object under ``prefix`` of a local store look ``hours`` older (the store's clock)."""
    import time

    when = time.time() - hours * 3600
    for dirpath, _, names in os.walk(os.path.join(store_root, prefix)):
        for name in names:
            os.utime(os.path.join(dirpath, name), (when, when))


def test_gc_keeps_every_file_a_delta_version_inside_the_retention_references(
    local_uri: str, direct_writer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(local_uri)
    w = direct_writer(store, "w1")
    w.put([w.event(ev.TagSet, run_id="r1", key="k", value="1")])
    compact(store, grace_seconds=0)  # manifest 1, Delta version 0
    v0_files = delta_keys(local_uri, "tags")
    monkeypatch.setenv(delta.ENV, "0")  # the Delta logs fall behind for two manifests
    for value in ("2", "3"):
        w.put([w.event(ev.TagSet, run_id="r1", key="k", value=value)])
        compact(store, grace_seconds=0)
    _backdate(local_uri, "_manifests", 2)
    _backdate(local_uri, "tables", 2)

    lagging = gc(store, retention_s=3600, grace_seconds=0)  # still off: gc publishes nothing

    assert lagging.deleted_manifests == [1, 2]
    assert not v0_files & set(lagging.deleted_files)  # the newest Delta version still lists them
    assert all(store.head(k) is not None for k in v0_files)
    assert [r["value"] for r in read_delta(local_uri, "tags").to_pylist()] == ["1"]

    monkeypatch.delenv(delta.ENV)
    caught_up = gc(store, retention_s=3600, grace_seconds=0)  # publishes manifest 3 (2 is gone), then collects

    check_delta_agrees(local_uri)
    assert not v0_files & set(caught_up.deleted_files)  # tombstones younger than the retention
    assert all(store.head(k) is not None for k in v0_files)
    assert delta.delta_version_of(store, "tags", 1) == 0  # Delta version 0 can still be read
    assert [r["value"] for r in read_delta(local_uri, "tags", 0).to_pylist()] == ["1"]

    later = gc(store, retention_s=3600, now_ms=evtrack_now() + 2 * HOUR_MS)  # the tombstones expired

    assert v0_files <= set(later.deleted_files)
    assert delta_keys(local_uri, "tags") == {f["path"] for f in mf.load(store).files("tags")}
    assert all(store.head(k) is not None for k in delta_keys(local_uri, "tags"))


def evtrack_now() -> int:
    return ev.now_ms()


def test_gc_cleans_up_old_log_entries_behind_a_checkpoint(local_uri: str, direct_writer: Any) -> None:
    store = open_store(local_uri)
    w = direct_writer(store, "w1")
    for i in range(25):
        w.put([w.event(ev.MetricLogged, run_id="r1", key="m", value=float(i), step=i, timestamp=i)])
        compact(store, grace_seconds=0)
    _backdate(local_uri, "tables/metrics/_delta_log", 2)

    report = gc(store, retention_s=3600, grace_seconds=0)

    listing = dl.list_log(store, "metrics")
    assert listing.commits == list(range(20, 25)) and listing.checkpoints == [20]
    assert dl.commit_key("metrics", 0) in report.deleted_delta_log_entries
    assert sorted(read_delta(local_uri, "metrics").column("step").to_pylist()) == list(range(25))
    assert read_delta(local_uri, "metrics", 21).num_rows == 22
    with pytest.raises(Exception):
        delta_table(local_uri, "metrics", 5)  # cleaned up, as Delta's metadata cleanup does
    assert compact(store, grace_seconds=0).errors == []  # publishing goes on from the checkpoint
    w.put([w.event(ev.MetricLogged, run_id="r1", key="m", value=25.0, step=25, timestamp=25)])
    compact(store, grace_seconds=0)
    assert read_delta(local_uri, "metrics").num_rows == 26


def test_the_cli_names_unknown_tables_and_versions(local_uri: str, direct_writer: Any) -> None:
    store = open_store(local_uri)
    w = direct_writer(store, "w1")
    w.put([w.event(ev.TagSet, run_id="r1", key="k", value="1")])
    compact(store, grace_seconds=0)
    bad = CliRunner().invoke(cli, ["tables", "versions", "nope", "--tracking-uri", local_uri])
    assert bad.exit_code == 1 and "unknown table 'nope'" in bad.output
    missing = CliRunner().invoke(cli, ["tables", "versions", "runs", "--tracking-uri", local_uri, "--manifest", "7"])
    assert missing.exit_code == 1 and "no Delta version of runs mirrors manifest 7" in missing.output
    listed = CliRunner().invoke(cli, ["tables", "versions", "runs", "--tracking-uri", local_uri])
    assert listed.exit_code == 0 and listed.output.splitlines()[1].startswith("0\t1\t")
