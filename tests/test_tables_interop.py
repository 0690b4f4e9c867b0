"""Other engines can read a version: the manifest JSON and ``pyarrow.dataset`` are enough.

``read_version`` below uses no evtrack code at all — only json and pyarrow — as
Spark, Trino or DuckDB would: take the newest manifest, read exactly the files it
lists. It must give the same rows as evtrack's own reads (client and SQL).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from typing import Any

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner

# -- an outside reader: json + pyarrow only ------------------------------------------------


def open_root(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, base path) of a store root: ``s3://bucket/prefix`` or a local directory."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)  # S3 honours AWS_ENDPOINT_URL, like boto3
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def newest_manifest(fs: pafs.FileSystem, base: str) -> dict[str, Any]:
    """The manifest document with the highest version number under ``_manifests/``."""
    infos = fs.get_file_info(pafs.FileSelector(f"{base}/_manifests"))
    names = [i.base_name for i in infos if i.base_name.endswith(".json") and i.base_name[:-5].isdigit()]
    newest = max(names, key=lambda n: int(n[:-5]))
    with fs.open_input_stream(f"{base}/_manifests/{newest}") as f:
        return json.loads(f.read())


def read_version(uri: str, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` in the newest version, from the manifest's live files alone."""
    fs, base = open_root(uri)
    doc = newest_manifest(fs, base)
    assert doc["format"] == "evtrack-manifest" and doc["format_version"] == 1
    paths = [f"{base}/{entry['path']}" for entry in doc["tables"].get(table, [])]
    if not paths:
        return []
    return ds.dataset(paths, filesystem=fs, format="parquet").to_table().to_pylist()


# -- the store -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated(cache_dir: Any, fresh_evtrack: None) -> None:
    """Spool and table cache in tmp dirs; evtrack globals reset around each test."""


def canon(value: Any) -> Any:
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


@pytest.fixture
def compacted(tracking_uri: str) -> dict[str, Any]:
    """A store with two experiments and four runs, compacted three times (several files per table)."""
    import evtrack
    from compaction import compact
    from evtrack.store import open_store

    store = open_store(tracking_uri)
    exp = evtrack.create_experiment("interop", tags={"owner": "data"})
    run_ids = []
    for i in range(4):
        with evtrack.start_run(experiment_id=exp if i % 2 else "0", run_name=f"run-{i}") as run:
            evtrack.log_params({"i": str(i), "kind": "even" if i % 2 == 0 else "odd"})
            evtrack.set_tag("tmp", "x")
            for step in range(6):
                evtrack.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            evtrack.log_metric("odd", float("nan") if i == 1 else math.inf, step=0)
            evtrack.delete_tag("tmp")
            if i == 2:
                evtrack.log_text("notes", "docs/notes.txt")
            run_ids.append(run.info.run_id)
        evtrack.flush()
        if i % 2:
            compact(store, grace_seconds=0)
    evtrack.delete_run(run_ids[0])
    evtrack.flush()
    compact(store, grace_seconds=0)
    assert list(store.list("events/")) == []  # every read below comes from the tables
    return {"uri": tracking_uri, "store": store, "run_ids": run_ids, "experiment": exp}


# -- tests ---------------------------------------------------------------------------------


def test_pyarrow_alone_reads_what_evtrack_reads(compacted: dict[str, Any]) -> None:
    import evtrack
    from evtrack.entities import ViewType

    uri = compacted["uri"]
    client = evtrack.MlflowClient()
    runs = {r["run_id"]: r for r in read_version(uri, "runs")}
    assert sorted(runs) == sorted(compacted["run_ids"])
    params, tags, latest = defaultdict(dict), defaultdict(dict), defaultdict(dict)
    for r in read_version(uri, "params"):
        params[r["run_id"]][r["key"]] = r["value"]
    for r in read_version(uri, "tags"):
        if r["value"] is not None:  # a null value is a deleted tag
            tags[r["run_id"]][r["key"]] = r["value"]
    for r in read_version(uri, "latest_metrics"):
        latest[r["run_id"]][r["key"]] = canon(r["value"])
    history = defaultdict(set)
    for r in read_version(uri, "metrics"):
        history[(r["run_id"], r["key"])].add((r["step"], r["timestamp"], canon(r["value"])))

    for run_id, row in runs.items():
        run = client.get_run(run_id)
        assert (
            run.info.status,
            run.info.lifecycle_stage,
            run.info.run_name,
            run.info.experiment_id,
            run.info.start_time,
            run.info.end_time,
            run.info.artifact_uri,
        ) == (
            row["status"],
            row["lifecycle_stage"],
            row["run_name"],
            row["experiment_id"],
            row["start_time"],
            row["end_time"],
            row["artifact_uri"],
        )
        assert run.data.params == params[run_id] and len(params[run_id]) == 2
        assert run.data.tags == tags[run_id] and "tmp" not in tags[run_id]
        assert {k: canon(v) for k, v in run.data.metrics.items()} == latest[run_id]
        for key in ("loss", "odd"):
            got = {(m.step, m.timestamp, canon(m.value)) for m in client.get_metric_history(run_id, key)}
            assert got == history[(run_id, key)]
    assert runs[compacted["run_ids"][0]]["lifecycle_stage"] == "deleted"

    experiments = {r["experiment_id"]: r for r in read_version(uri, "experiments")}
    exp_tags = {(r["experiment_id"], r["key"]): r["value"] for r in read_version(uri, "experiment_tags")}
    found = client.search_experiments(view_type=ViewType.ALL)
    assert {e.experiment_id: (e.name, e.lifecycle_stage, e.creation_time, e.tags) for e in found} == {
        x: (r["name"], r["lifecycle_stage"], r["creation_time"], {k: v for (xid, k), v in exp_tags.items() if xid == x})
        for x, r in experiments.items()
    }


VIEW_COLUMNS = {
    "runs": [
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
    ],
    "params": ["run_id", "key", "value"],
    "tags": ["run_id", "key", "value"],
    "metrics": ["run_id", "key", "value", "step", "timestamp"],
    "latest_metrics": ["run_id", "key", "value", "step", "timestamp"],
    "artifacts": ["run_id", "path", "size", "digest"],
    "experiments": [
        "experiment_id",
        "name",
        "artifact_location",
        "lifecycle_stage",
        "creation_time",
        "last_update_time",
    ],
    "experiment_tags": ["experiment_id", "key", "value"],
}


def test_pyarrow_alone_matches_evtrack_sql_and_tables_files(compacted: dict[str, Any]) -> None:
    import evtrack
    from evtrack.cli import cli

    uri = compacted["uri"]
    fs, base = open_root(uri)
    manifest = newest_manifest(fs, base)
    for table, columns in VIEW_COLUMNS.items():
        rows = read_version(uri, table)
        outside = Counter(
            tuple(canon(r[c]) for c in columns) for r in rows if not (table == "tags" and r["value"] is None)
        )  # null: a deleted tag
        ours = evtrack.sql(f"SELECT {', '.join(columns)} FROM {table}").to_pylist()
        assert Counter(tuple(canon(r[c]) for c in columns) for r in ours) == outside, table
        assert outside, table

        # `evtrack tables files TABLE` prints exactly the live files, as keys or as URIs
        live = [entry["path"] for entry in manifest["tables"][table]]
        keys = CliRunner().invoke(cli, ["tables", "files", table, "--tracking-uri", uri, "--key"])
        assert keys.exit_code == 0, keys.output
        assert keys.output.splitlines() == live
        uris = CliRunner().invoke(cli, ["tables", "files", table, "--tracking-uri", uri])
        assert uris.exit_code == 0, uris.output
        printed = uris.output.splitlines()
        assert len(printed) == len(live) and all(p.endswith("/" + k) for p, k in zip(printed, live))
        count = 0
        for file_uri in printed:  # each printed URI is all another engine needs to open the file
            file_fs, path = pafs.FileSystem.from_uri(file_uri)
            count += ds.dataset([path], filesystem=file_fs, format="parquet").count_rows()
        assert count == len(rows), table
    events = read_version(uri, "events")
    assert len({e["eid"] for e in events}) == len(events)
    assert sum(e["type"] == "metric" for e in events) == 4 * 7

    with fs.open_input_stream(f"{base}/_manifests/{1:020d}.json") as f:
        first = [entry["path"] for entry in json.loads(f.read())["tables"]["metrics"]]
    old = CliRunner().invoke(cli, ["tables", "files", "metrics", "--tracking-uri", uri, "--key", "--version", "1"])
    assert old.exit_code == 0 and old.output.splitlines() == first
    bad = CliRunner().invoke(cli, ["tables", "files", "nope", "--tracking-uri", uri])
    assert bad.exit_code == 1 and "unknown table 'nope'" in bad.output
