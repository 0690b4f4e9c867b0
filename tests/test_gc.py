"""``gc``: old manifests, unreferenced table files, and permanent deletion of deleted runs/experiments."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from compaction import compact
from compaction.gc import gc
from compaction.rebuild import rebuild
from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.cli import cli
from evtrack.entities import LifecycleStage
from evtrack.errors import EvtrackError, InvalidParameterError, InvalidStateError, ResourceNotFoundError
from evtrack.eventlog.events import now_ms
from evtrack.store import open_store
from evtrack.state.table_files import local_path
from evtrack.client import EvtrackClient

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


@pytest.fixture
def client(store_uri: str) -> EvtrackClient:
    return EvtrackClient(store_uri)


@pytest.fixture
def store(client: EvtrackClient):
    return open_store(client.tracking_uri)


def _run_with_data(client: EvtrackClient, experiment_id: str, name: str) -> str:
    run_id = client.create_run(experiment_id, run_name=name).info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.set_tag(run_id, "team", "vision")
    for step in range(3):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    client.log_text(run_id, f"notes of {name}", "notes/readme.txt")
    return run_id


def _table_ids(store) -> dict[str, set[str]]:
    """Every run_id / experiment_id value in every table of the newest manifest, read with pyarrow alone."""
    m = mf.load(store)
    found: dict[str, set[str]] = {"run_id": set(), "experiment_id": set()}
    for name in tables.all_tables():
        for f in m.files(name):
            data = pq.read_table(local_path(store, f["path"]))
            for column, values in found.items():
                if column in data.column_names:
                    values.update(v for v in data.column(column).to_pylist() if v is not None)
    return found


def _snapshot(store) -> set[tuple[str, int]]:
    return {(i.key, i.size) for i in store.list("")}


def _artifact_keys(store, run_uri: str) -> list[str]:
    prefix = run_uri[len(store.uri) + 1 :] + "/"
    return [i.key for i in store.list(prefix)]


# -- old manifests and unreferenced files -----------------------------------------------


def test_old_manifests_are_removed_but_the_newest_is_kept(client, store):
    run_id = client.create_run("0").info.run_id
    for i in range(3):
        client.set_tag(run_id, "round", str(i))
        client.flush()
        compact(store)
    assert mf.list_versions(store) == [1, 2, 3]

    young = gc(store)  # nothing was superseded longer ago than 7 days
    assert young.deleted_manifests == [] and mf.list_versions(store) == [1, 2, 3]

    report = gc(store, now_ms=now_ms() + 8 * DAY_MS)
    assert report.deleted_manifests == [1, 2]
    assert mf.list_versions(store) == [3]
    with pytest.raises(EvtrackError, match="garbage-collected"):
        mf.load(store, 1)
    assert client.get_run(run_id).data.tags["round"] == "2"


def test_unreferenced_files_go_after_retention_referenced_ones_stay(client, store):
    run_id = client.create_run("0").info.run_id
    client.set_tag(run_id, "a", "1")
    client.flush()
    compact(store)
    client.set_tag(run_id, "a", "2")  # the run's partition is rewritten: version 1's files are superseded
    client.flush()
    compact(store)
    v1 = {f["path"] for files in mf.load(store, 1).tables.values() for f in files}
    v2 = {f["path"] for files in mf.load(store, 2).tables.values() for f in files}
    superseded = v1 - v2
    assert superseded
    store.put("tables/tags/00000009-orphan.parquet", b"left by a compactor that lost its commit")

    kept = gc(store, retention_s=3600)
    assert kept.deleted_files == [] and kept.deleted_manifests == []
    assert store.head("tables/tags/00000009-orphan.parquet") is not None
    assert all(store.head(k) is not None for k in superseded)  # version 1 is still readable

    report = gc(store, retention_s=3600, now_ms=now_ms() + 2 * HOUR_MS)
    assert report.deleted_manifests == [1]
    assert set(report.deleted_files) == superseded | {"tables/tags/00000009-orphan.parquet"}
    assert report.bytes_freed > 0
    assert all(store.head(k) is None for k in report.deleted_files)
    assert all(store.head(k) is not None for k in v2)
    assert client.get_run(run_id).data.tags["a"] == "2"


# -- permanent deletion -------------------------------------------------------------------


def test_deleted_run_is_purged_everywhere_and_other_runs_stay(client, store):
    exp = client.create_experiment("purge-me-not")
    gone = _run_with_data(client, exp, "gone")
    kept = _run_with_data(client, exp, "kept")
    gone_uri = client.get_artifact_uri(gone)
    client.flush()
    compact(store)  # part of the run is compacted, part still in the inbox
    client.log_metric(gone, "late", 1.0)
    client.delete_run(gone)
    client.flush()

    report = gc(store)

    assert report.purged_runs == [gone] and report.purged_experiments == []
    assert report.artifacts_deleted == 1 and report.version == mf.latest_version(store)
    with pytest.raises(ResourceNotFoundError):
        client.get_run(gone)
    ids = _table_ids(store)
    assert gone not in ids["run_id"] and kept in ids["run_id"]
    assert _artifact_keys(store, gone_uri) == []
    run = client.get_run(kept)
    assert run.data.params == {"lr": "0.1"} and run.data.tags["team"] == "vision"
    assert [m.value for m in client.get_metric_history(kept, "loss")] == [1.0, 0.5, 1.0 / 3]
    assert [f.path for f in client.list_artifacts(kept, "notes")] == ["notes/readme.txt"]
    # The events table stays the log of record: a rebuild from it agrees with the purge.
    rebuild(store)
    assert _table_ids(store) == ids


def test_older_than_spares_recent_deletions(client, store):
    run_id = client.create_run("0").info.run_id
    client.delete_run(run_id)
    client.flush()

    assert gc(store, older_than_s=3600).purged_runs == []
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED
    with pytest.raises(InvalidParameterError, match=f"{run_id}.*not older than"):
        gc(store, older_than_s=3600, run_ids=[run_id])

    later = gc(store, older_than_s=3600, now_ms=now_ms() + 2 * HOUR_MS)
    assert later.purged_runs == [run_id]
    with pytest.raises(ResourceNotFoundError):
        client.get_run(run_id)


def test_deleted_experiment_is_purged_with_its_runs_and_its_name_is_free(client, store):
    exp = client.create_experiment("doomed")
    runs = [_run_with_data(client, exp, f"r{i}") for i in range(2)]
    uris = [client.get_artifact_uri(r) for r in runs]
    other = _run_with_data(client, "0", "survivor")
    client.delete_experiment(exp)
    client.flush()

    report = gc(store, experiment_ids=[exp])

    assert report.purged_experiments == [exp] and sorted(report.purged_runs) == sorted(runs)
    with pytest.raises(ResourceNotFoundError):
        client.get_experiment(exp)
    for r in runs:
        with pytest.raises(ResourceNotFoundError):
            client.get_run(r)
    assert all(_artifact_keys(store, uri) == [] for uri in uris)
    ids = _table_ids(store)
    assert exp not in ids["experiment_id"] and not set(runs) & ids["run_id"] and other in ids["run_id"]
    assert client.get_experiment_by_name("doomed") is None
    again = client.create_experiment("doomed")
    assert again != exp and client.get_experiment_by_name("doomed").experiment_id == again


@pytest.mark.parametrize("option", ["run_ids", "experiment_ids"])
def test_ids_must_name_deleted_entities(local_uri, option):
    client = EvtrackClient(local_uri)
    store = open_store(local_uri)
    exp = client.create_experiment("alive")
    run_id = client.create_run(exp).info.run_id
    client.flush()
    target = run_id if option == "run_ids" else exp
    before = _snapshot(store)
    with pytest.raises(InvalidStateError, match=target):
        gc(store, **{option: [target]})
    with pytest.raises(ResourceNotFoundError, match="nope"):
        gc(store, **{option: ["nope"]})
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE
    # Only the compaction that gc runs first wrote anything; no run data was touched.
    assert {k for k, _ in before} <= {k for k, _ in _snapshot(store)}


def test_dry_run_deletes_nothing(client, store):
    exp = client.create_experiment("dry")
    run_id = _run_with_data(client, exp, "dry")
    client.flush()
    compact(store)
    client.set_tag(run_id, "x", "y")
    client.delete_experiment(exp)
    client.flush()
    compact(store)
    store.put("tables/events/00000009-orphan.parquet", b"junk")
    before = _snapshot(store)

    report = gc(store, dry_run=True, now_ms=now_ms() + 8 * DAY_MS)

    assert report.dry_run and report.compaction is None
    assert report.purged_runs == [run_id] and report.purged_experiments == [exp]
    assert report.deleted_manifests == [1] and "tables/events/00000009-orphan.parquet" in report.deleted_files
    assert report.artifacts_deleted == 1 and report.bytes_freed > 0
    assert _snapshot(store) == before
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED


def test_a_purge_that_loses_the_commit_race_is_redone_on_the_winner(local_uri, monkeypatch):
    import compaction.gc as gc_module

    client = EvtrackClient(local_uri)
    store = open_store(local_uri)
    gone = _run_with_data(client, "0", "gone")
    keep = _run_with_data(client, "0", "keep")
    client.delete_run(gone)
    client.flush()
    real = gc_module.rewrite_without
    versions: list[int] = []

    def racing(store_, base, targets, version):
        versions.append(version)
        if len(versions) == 1:  # a compactor commits this version first
            client.set_tag(keep, "late", "yes")
            client.flush()
            compact(store_)
        return real(store_, base, targets, version)

    monkeypatch.setattr(gc_module, "rewrite_without", racing)
    report = gc(store)

    assert report.retries == 1 and versions == [2, 3] and report.version == 3
    assert gone not in _table_ids(store)["run_id"]
    assert client.get_run(keep).data.tags["late"] == "yes"
    assert mf.load(store).is_folded(max(i.key for i in store.list("events/")))


# -- the command line ---------------------------------------------------------------------


def test_cli_gc(client, store, store_uri):
    keep = client.create_run("0").info.run_id
    gone = client.create_run("0").info.run_id
    client.delete_run(gone)
    client.flush()
    runner = CliRunner()

    dry = runner.invoke(cli, ["gc", "--tracking-uri", store_uri, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"run {gone} would be permanently deleted" in dry.output
    assert "gc (dry run):" in dry.output
    assert client.get_run(gone).info.lifecycle_stage == LifecycleStage.DELETED

    young = runner.invoke(cli, ["gc", "--tracking-uri", store_uri, "--older-than", "1h"])
    assert young.exit_code == 0, young.output
    assert "0 runs and 0 experiments purged" in young.output

    bad = runner.invoke(cli, ["gc", "--tracking-uri", store_uri, "--run-ids", keep])
    assert bad.exit_code == 1
    assert "Error:" in bad.output and keep in bad.output and "Traceback" not in bad.output

    done = runner.invoke(cli, ["gc", "--tracking-uri", store_uri, "--run-ids", f"{gone},"])
    assert done.exit_code == 0, done.output
    assert f"run {gone} was permanently deleted" in done.output
    assert "1 runs and 0 experiments purged" in done.output
    with pytest.raises(ResourceNotFoundError):
        client.get_run(gone)


def test_cli_gc_rejects_a_bad_duration(local_uri):
    result = CliRunner().invoke(cli, ["gc", "--tracking-uri", local_uri, "--older-than", "soon"])
    assert result.exit_code == 2 and "duration" in result.output


def test_cli_gc_as_a_subprocess(local_uri):
    client = EvtrackClient(local_uri)
    exp = client.create_experiment("sub")
    client.create_run(exp)
    client.delete_experiment(exp)
    client.flush()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from evtrack.cli import main; main()",
            "gc",
            "--tracking-uri",
            local_uri,
            "--experiment-ids",
            exp,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert f"experiment {exp} was permanently deleted" in out.stdout
    assert client.get_experiment_by_name("sub") is None


def test_an_artifact_uri_that_does_not_name_the_run_is_left_alone(local_uri, tmp_path):
    from evtrack.eventlog import events as ev

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("not a run's artifact")
    client = EvtrackClient(local_uri)
    client.create_experiment("forged")  # makes the default experiment too
    run_id = "f" * 32
    client._emit(
        ev.RunCreated(
            eid=client._eid(),
            ts=now_ms(),
            run_id=run_id,
            experiment_id="0",
            run_name="forged",
            user_id="x",
            start_time=now_ms(),
            artifact_uri=precious.as_uri(),
            parent_run_id=None,
            tags={},
        )
    )
    client.flush()
    client.delete_run(run_id)
    client.flush()

    report = gc(open_store(local_uri))

    assert report.purged_runs == [run_id] and report.artifacts_deleted == 0
    assert any("does not name the run" in w for w in report.warnings)
    assert (precious / "keep.txt").exists()
