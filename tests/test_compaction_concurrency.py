"""Compactors running at the same time as writers and as each other, on the S3 API (moto).

Invariants: every event is in the tables exactly once; one commit per manifest
version, versions contiguous, nothing lost or doubled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from typing import Any

import pytest

import compaction.compactor as compactor_module
from compaction import Compactor, compact
from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.store import ObjectStore, open_store

from delta_helpers import check_delta_agrees

WRITERS = 4
RUNS_PER_WRITER = 2
BATCHES = 6
POINTS = 10

WRITER = textwrap.dedent("""
    import json, sys, time
    import evtrack

    uri, writer = sys.argv[1], int(sys.argv[2])
    runs, batches, points = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    evtrack.set_tracking_uri(uri)
    client = evtrack.MlflowClient()
    ids = []
    for r in range(runs):
        run = client.create_run("0", run_name=f"w{writer}-r{r}")
        client.log_param(run.info.run_id, "writer", str(writer))
        ids.append(run.info.run_id)
    for b in range(batches):
        for run_id in ids:
            for p in range(points):
                step = b * points + p
                client.log_metric(run_id, "loss", float(step), step=step, timestamp=step)
            client.set_tag(run_id, "batch", str(b))
        assert client.flush()  # one segment per batch: many small segments, as from busy jobs
        time.sleep(0.1)
    for run_id in ids:
        client.set_terminated(run_id)
    assert client.flush()
    print(json.dumps({"runs": ids, "points": batches * points}))
""")

COMPACTOR = textwrap.dedent("""
    import json, os, sys, time
    from compaction import compact
    from evtrack.store import open_store

    uri, stop_file = sys.argv[1], sys.argv[2]
    store = open_store(uri)
    totals = {"passes": 0, "commits": 0, "retries": 0, "segments": 0, "events": 0}
    deadline = time.monotonic() + 90
    print("ready", flush=True)
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        report = compact(store, grace_seconds=0)
        totals["passes"] += 1
        for name in ("commits", "retries", "segments", "events"):
            totals[name] += getattr(report, name)
        time.sleep(0.1)
    print(json.dumps(totals))
""")


@pytest.fixture(autouse=True)
def _isolated(cache_dir: Any, spool_dir: Any) -> None:
    """Spool and table cache in tmp dirs (the child processes inherit them)."""


def rows(store: ObjectStore, table: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """A table's rows, read with pyarrow from exactly the files the newest manifest lists."""
    import pyarrow.parquet as pq

    from evtrack.state.table_files import local_path

    out: list[dict[str, Any]] = []
    for f in mf.load(store).files(table):
        out += pq.read_table(local_path(store, f["path"]), columns=columns).to_pylist()
    return out


def check_commit_log(store: ObjectStore) -> list[mf.Manifest]:
    """Versions 1..n all present, each the child of the one before."""
    versions = mf.list_versions(store)
    assert versions == list(range(1, len(versions) + 1))
    manifests = [mf.load(store, v) for v in versions]
    for m in manifests:
        assert m.parent == (m.version - 1 or None)
    return manifests


def test_four_writers_and_two_compactors_at_once(s3_uri: str, tmp_path: Any) -> None:
    stop = tmp_path / "stop"
    env = {**os.environ, "EVTRACK_FLUSH_INTERVAL": "30"}  # segments are cut by flush() only
    compactors = [
        subprocess.Popen(
            [sys.executable, "-c", COMPACTOR, s3_uri, str(stop)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in compactors:  # started and importing: the writers begin only once both are looping
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, s3_uri, str(w), str(RUNS_PER_WRITER), str(BATCHES), str(POINTS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    try:
        logged = []
        for p in writers:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            logged.append(json.loads(out))
        time.sleep(0.5)  # the compactors get one more go at what the writers sent last
        stop.touch()
        reports = []
        for p in compactors:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        stop.touch()
        for p in writers + compactors:
            if p.poll() is None:
                p.kill()

    store = open_store(s3_uri)
    final = compact(store, grace_seconds=0)
    assert list(store.list("events/")) == []
    manifests = check_commit_log(store)
    assert sum(r["commits"] for r in reports) >= 1, reports  # they folded while the writers wrote
    assert sum(r["commits"] for r in reports) + final.commits == len(manifests)  # one commit per version
    assert sum(r["events"] for r in reports) + final.events == manifests[-1].stats["events"]

    expected = Counter()
    for entry in logged:
        for run_id in entry["runs"]:
            for step in range(entry["points"]):
                expected[(run_id, "loss", step)] += 1
    assert len(expected) == WRITERS * RUNS_PER_WRITER * BATCHES * POINTS
    metrics = Counter((r["run_id"], r["key"], r["step"]) for r in rows(store, "metrics", ["run_id", "key", "step"]))
    assert metrics == expected  # every point exactly once: none lost, none doubled

    events = rows(store, "events", ["eid", "type"])
    eids = Counter(e["eid"] for e in events)
    assert eids.most_common(1)[0][1] == 1 and len(eids) == manifests[-1].stats["events"]
    assert sum(e["type"] == "metric" for e in events) == len(expected)

    runs = {r["run_id"]: r for r in rows(store, "runs")}
    all_runs = [run_id for entry in logged for run_id in entry["runs"]]
    assert sorted(runs) == sorted(all_runs)
    assert {r["status"] for r in runs.values()} == {"FINISHED"}
    latest = {(r["run_id"], r["key"]): r["step"] for r in rows(store, "latest_metrics")}
    assert latest == {(run_id, "loss"): BATCHES * POINTS - 1 for run_id in all_runs}
    tags = {(t["run_id"], t["key"]): t["value"] for t in rows(store, "tags")}
    assert all(tags[(run_id, "batch")] == str(BATCHES - 1) for run_id in all_runs)
    check_delta_agrees(s3_uri)  # both compactors published: one Delta version per manifest, in order


def test_two_compactors_racing_on_one_commit(store_uri: str, direct_writer, monkeypatch, cache_dir) -> None:
    """A lists {s1}; B lists {s1, s2}; both build version 1; A commits first. B must lose, re-read
    version 1 and commit only s2 as version 2 on top of it."""
    store = open_store(store_uri)
    w = direct_writer(store, "aaaa")

    def segment(steps: range) -> None:
        w.put([w.event(ev.MetricLogged, run_id="r1", key="m", value=float(s), step=s, timestamp=s) for s in steps])

    segment(range(0, 5))
    a_listed, b_ready, a_committed, b_done = (threading.Event() for _ in range(4))
    original = compactor_module.checkpoint

    def checkpoint(step: str) -> None:
        name = threading.current_thread().name
        if name == "A" and step == "listed" and not a_listed.is_set():
            a_listed.set()
            assert b_ready.wait(30)  # B has listed both and built its version 1
        elif name == "B" and step == "before_commit" and not b_ready.is_set():
            b_ready.set()
            assert a_committed.wait(30)  # ...and commits only after A's version 1 exists
        elif name == "A" and step == "committed" and not a_committed.is_set():
            a_committed.set()
            assert b_done.wait(30)  # A looks for more work only after B is done
        original(step)

    monkeypatch.setattr(compactor_module, "checkpoint", checkpoint)
    reports: dict[str, Any] = {}

    def run(name: str) -> None:
        try:
            reports[name] = Compactor(open_store(store_uri), grace_seconds=0).run()
        except BaseException as exc:  # noqa: BLE001 - reported by the asserts below
            reports[name] = exc
        finally:
            if name == "B":
                b_done.set()

    a = threading.Thread(target=run, args=("A",), name="A")
    a.start()
    assert a_listed.wait(30)
    segment(range(5, 10))  # lands after A listed the inbox, before B does
    b = threading.Thread(target=run, args=("B",), name="B")
    b.start()
    a.join(60)
    b.join(60)

    ra, rb = reports["A"], reports["B"]
    assert (ra.commits, ra.segments, ra.retries) == (1, 1, 0)
    assert (rb.commits, rb.segments, rb.retries) == (1, 1, 1)  # lost version 1, committed version 2
    m1, m2 = check_commit_log(store)
    assert m1.committer != m2.committer and m2.parent == 1
    assert m1.stats["events"] == 5 and m2.stats["events"] == 10
    steps = sorted(r["step"] for r in rows(store, "metrics"))
    assert steps == list(range(10))
    assert list(store.list("events/")) == []
    live = {f["path"] for files in m2.tables.values() for f in files}
    written = {i.key for i in store.list("tables/") if "/_delta_log/" not in i.key}
    assert live < written  # B's losing attempt left files no manifest lists (gc removes them)
    check_delta_agrees(store_uri)


def test_a_losing_compactor_does_not_overwrite_the_winners_quarantine(
    local_uri: str, direct_writer, monkeypatch, cache_dir
) -> None:
    """B folds {s1}, A folds {s1, s2}; A commits version 1, then B (about to lose) writes its own
    conflict record. Every conflict of the committed version must stay on record."""
    import orjson

    store_uri = local_uri  # the commit race itself runs on S3 in the test above
    store = open_store(store_uri)

    def conflicting_segment(run_id: str) -> None:
        w = direct_writer(store)
        w.put(
            [
                w.event(ev.ParamLogged, ts=10, run_id=run_id, key="lr", value="0.1"),
                w.event(ev.ParamLogged, ts=20, run_id=run_id, key="lr", value="0.2"),
            ]
        )

    conflicting_segment("r1")
    b_written, a_committed = threading.Event(), threading.Event()
    original = compactor_module.checkpoint

    def checkpoint(step: str) -> None:
        name = threading.current_thread().name
        if name == "B" and step == "files_written" and not b_written.is_set():
            b_written.set()
            assert a_committed.wait(30)
        elif name == "A" and step == "committed":
            a_committed.set()
        original(step)

    monkeypatch.setattr(compactor_module, "checkpoint", checkpoint)
    reports: dict[str, Any] = {}

    def run(name: str) -> None:
        try:
            reports[name] = Compactor(open_store(store_uri), grace_seconds=0).run()
        except BaseException as exc:  # noqa: BLE001 - reported by the asserts below
            reports[name] = exc
            a_committed.set()

    b = threading.Thread(target=run, args=("B",), name="B")
    b.start()
    assert b_written.wait(30)
    conflicting_segment("r2")
    a = threading.Thread(target=run, args=("A",), name="A")
    a.start()
    a.join(60)
    b.join(60)

    assert (reports["A"].commits, reports["A"].conflicts) == (1, 2)
    assert (reports["B"].commits, reports["B"].retries, reports["B"].conflicts) == (0, 1, 0)
    assert mf.list_versions(store) == [1]
    recorded = [c for info in store.list("quarantine/conflicts/") for c in orjson.loads(store.get(info.key))]
    assert sorted((c["run_id"], c["kept"], c["rejected"]) for c in recorded) == [
        ("r1", "0.1", "0.2"),
        ("r2", "0.1", "0.2"),
    ]


def test_a_pass_under_a_steady_inflow_folds_what_was_pending_and_ends(local_uri: str, direct_writer) -> None:
    """Segments that land while a pass folds wait for the next pass: a pass that chased them
    would not end while writers write, and each of its commits would move every reader."""
    store = open_store(local_uri)
    w = direct_writer(store)

    def put(step: int) -> None:
        w.put([w.event(ev.MetricLogged, run_id="r1", key="m", value=float(step), step=step, timestamp=step)])

    for step in range(3):
        put(step)
    landed = []

    def writer_meanwhile(*_progress: int) -> None:  # a writer putting a segment after every batch
        if len(landed) < 20:
            landed.append(len(landed))
            put(100 + len(landed))

    report = Compactor(store, grace_seconds=0, batch_bytes=1, progress=writer_meanwhile).run()
    assert (report.segments, report.commits) == (3, 1)
    assert len(landed) == 3 and len(list(store.list("events/"))) == 3  # they wait, unfolded
    assert compact(store, grace_seconds=0).segments == 3  # the next pass takes them
