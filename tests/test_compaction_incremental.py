"""Incremental compaction rewrites only the state tables new events change: a pass of metric
points writes the partition's latest values and keeps its runs, params, tags, artifacts and
inputs files; each other kind of event rewrites its own table. Reads agree with a store
compacted in one pass from the same events."""

from __future__ import annotations

from typing import Any

import pytest

import evtrack
from compaction import compact
from evtrack.entities import Metric
from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.store import open_store


@pytest.fixture(autouse=True)
def _isolated(cache_dir: Any, fresh_evtrack: None) -> None:
    """Spool and table cache in tmp dirs; evtrack globals reset around each test."""


def _files(uri: str, run_id: str) -> dict[str, list[str]]:
    """The files of each run table in the partition of ``run_id``, in the newest manifest."""
    store = open_store(uri)
    manifest = mf.load(store, mf.latest_version(store))
    part = tables.partition_of(run_id)
    return {
        name: sorted(f["path"] for f in manifest.files(name) if f.get("partition") == part)
        for name in tables.RUN_TABLES
    }


def _view(uri: str, run_id: str) -> dict[str, Any]:
    from evtrack.read import backend

    backend._backends.pop(backend._normalize(uri), None)  # read as a new process would
    client = evtrack.MlflowClient(uri)
    run = client.get_run(run_id)
    return {
        "info": (run.info.status, run.info.run_name, run.info.end_time, run.info.lifecycle_stage),
        "params": run.data.params,
        "tags": {k: v for k, v in run.data.tags.items()},
        "metrics": run.data.metrics,
        "history": [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")],
        "artifacts": sorted(a.path for a in client.list_artifacts(run_id)),
    }


def test_each_pass_rewrites_only_the_tables_its_events_change(tmp_path: Any) -> None:
    uri = str(tmp_path / "store")
    client = evtrack.MlflowClient(uri)
    run_id = client.create_run("0", tags={"team": "a"}).info.run_id
    client.log_param(run_id, "alpha", "0.1")
    client.log_batch(run_id, metrics=[Metric("loss", 1.0, 1, 0)])
    note = tmp_path / "note.txt"
    note.write_text("hello")
    client.log_artifact(run_id, str(note))
    client.flush()
    compact(open_store(uri), grace_seconds=3600)
    first = _files(uri, run_id)
    assert all(first[name] for name in ("runs", "params", "tags", "latest_metrics", "artifacts"))

    client.log_batch(run_id, metrics=[Metric("loss", 0.5, 2, 1), Metric("loss", 0.25, 3, 2)])
    client.flush()
    report = compact(open_store(uri), grace_seconds=3600)
    second = _files(uri, run_id)
    assert second["latest_metrics"] != first["latest_metrics"]
    assert {k: v for k, v in second.items() if k != "latest_metrics"} == {
        k: v for k, v in first.items() if k != "latest_metrics"
    }
    assert report.files_written == 3  # events, metrics and this partition's latest values

    client.set_tag(run_id, "team", "b")
    client.set_terminated(run_id, "FINISHED")
    client.log_artifact(run_id, str(note), "more")
    client.flush()
    compact(open_store(uri), grace_seconds=3600)
    third = _files(uri, run_id)
    assert third["params"] == first["params"] and third["latest_metrics"] == second["latest_metrics"]
    assert third["tags"] != first["tags"] and third["runs"] != first["runs"]
    assert third["artifacts"] != first["artifacts"]
    view = _view(uri, run_id)
    assert view["params"] == {"alpha": "0.1"} and view["tags"]["team"] == "b"
    assert view["metrics"] == {"loss": 0.25} and view["history"] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert view["info"][0] == "FINISHED" and view["artifacts"] == ["more", "note.txt"]

    client.delete_tag(run_id, "team")  # a deletion rewrites the partition's tags
    client.flush()
    compact(open_store(uri), grace_seconds=3600)
    fourth = _files(uri, run_id)
    assert fourth["tags"] != third["tags"] and fourth["runs"] == third["runs"]
    assert "team" not in _view(uri, run_id)["tags"]

    # The same events compacted in one pass answer the same.
    once = str(tmp_path / "once")
    src, dst = open_store(uri), open_store(once)
    for info in src.list("events/"):
        dst.put(info.key, src.get(info.key))
    compact(dst, grace_seconds=3600)
    assert _view(once, run_id) == _view(uri, run_id)
