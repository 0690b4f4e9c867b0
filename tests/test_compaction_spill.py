"""A backlog whose new rows outgrow the fold's memory budget spills them to disk and folds the same tables.

The same inbox (a sweep of short runs: creations with tags, params, tags, deletes,
points, ends, a run deleted and restored) is compacted twice, once with the
default budget and once with a budget of one byte, so that every batch spills.
Every table must hold the same rows, the spill files must be gone afterwards,
and a spill file that cannot be written fails the pass before anything is committed.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from compaction import Compactor, spill
from evtrack.errors import EvtrackError
from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.state.table_files import read_files
from evtrack.store import open_store


def sweep(n_runs: int) -> list[tuple[str, bytes]]:
    segments = []
    for r in range(n_runs):
        run_id, writer, ms = f"run{r:04d}", f"w{r:04d}", 1_700_000_000_000 + r
        eids = (f"{writer}-{i}" for i in range(1, 1000))
        lines = [
            ev.RunCreated(
                eid=next(eids),
                ts=ms,
                run_id=run_id,
                experiment_id="0",
                run_name=f"lasso-{r}",
                user_id="u",
                start_time=ms,
                artifact_uri="file:///a",
                tags={"mlflow.user": "u"},
            )
        ]
        lines += [
            ev.ParamLogged(eid=next(eids), ts=ms + 1, run_id=run_id, key=f"p{p}", value=str(r % 7)) for p in range(4)
        ]
        lines += [
            ev.TagSet(eid=next(eids), ts=ms + 2, run_id=run_id, key="t", value="v"),
            ev.TagDeleted(eid=next(eids), ts=ms + 3, run_id=run_id, key="mlflow.user"),
        ]
        body = b"".join(ev.encode(e) for e in lines)
        body += b"".join(
            ev.encode_metric_line(next(eids), ms + 4, run_id, "rmse", 1 / (r + s + 1), s, ms) for s in range(3)
        )
        end = ev.RunUpdated(eid=next(eids), ts=ms + 5, run_id=run_id, status="FINISHED", end_time=ms + 5)
        body += ev.encode(end)
        if r % 10 == 0:
            body += ev.encode(ev.RunDeleted(eid=next(eids), ts=ms + 6, run_id=run_id))
        if r % 20 == 0:
            body += ev.encode(ev.RunRestored(eid=next(eids), ts=ms + 7, run_id=run_id))
        segments.append((f"events/{ms:013d}-{writer}-000001.jsonl", body))
    return segments


def compacted_rows(root: str, segments: list[tuple[str, bytes]]) -> dict[str, list[Any]]:
    store = open_store(root)
    for key, data in segments:
        store.put(key, data)
    report = Compactor(store, grace_seconds=0, batch_bytes=64 << 10, processes=0).run()
    assert report.segments == len(segments) and not report.errors
    m = mf.load(store)
    return {
        name: sorted(map(str, read_files(store, [f["path"] for f in m.files(name)], tables.schema(name)).to_pylist()))
        for name in tables.state_tables()
    }


def test_a_backlog_spilled_to_disk_folds_the_same_tables(tmp_path, monkeypatch) -> None:
    segments = sweep(300)
    in_memory = compacted_rows(str(tmp_path / "memory"), segments)
    spills = []
    real_spill = spill.PartitionRows._spill
    monkeypatch.setattr(spill, "SPILL_BYTES", 1)
    monkeypatch.setattr(spill.PartitionRows, "_spill", lambda self: (spills.append(1), real_spill(self)))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    os.mkdir(tmp_path / "tmp")
    spilled = compacted_rows(str(tmp_path / "spilled"), segments)
    assert len(spills) > 10  # every batch's rows went to disk
    assert spilled == in_memory
    assert len(in_memory["runs"]) == 300 and len(in_memory["params"]) == 1200
    assert not [n for n in os.listdir(tmp_path / "tmp") if n.startswith("evtrack-fold-")]


@pytest.mark.parametrize("where", ["spill", "temporary files"])
def test_temporary_files_that_cannot_be_written_fail_the_pass_clearly(tmp_path, monkeypatch, where: str) -> None:
    store = open_store(str(tmp_path / "store"))
    for key, data in sweep(50):
        store.put(key, data)
    monkeypatch.setattr(spill, "SPILL_BYTES", 1)
    if where == "spill":  # the disk fills up just as the rows would spill

        def full(*args: Any, **kwargs: Any) -> str:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(spill.tempfile, "mkdtemp", full)
        expected = "could not spill the rows it folds to .*No space left"
    else:
        monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "missing"))
        expected = "could not create its temporary (metrics|events) file in .*missing"
    with pytest.raises(EvtrackError, match=expected + ".*nothing was committed .*TMPDIR"):
        Compactor(store, grace_seconds=0, processes=0).run()
    assert mf.load(store).version == 0 and len(list(store.list("events/"))) == 50
