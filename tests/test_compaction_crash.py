"""A compactor killed with SIGKILL at each step of the commit protocol, in turn.

After each kill the store must stay readable (manifest loads, reads return every
event logged), and the next normal compaction must converge: nothing lost,
nothing doubled, the inbox emptied.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

import evtrack
from compaction import compact
from compaction.compactor import CRASH_ENV
from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.state.fold import fold
from evtrack.store import ObjectStore, open_store

from delta_helpers import check_delta_agrees

STEPS = ("listed", "files_written", "before_commit", "committed", "deleted")
COMMITTED_BEFORE_DEATH = {
    "listed": False,
    "files_written": False,
    "before_commit": False,
    "committed": True,
    "deleted": True,
}
CHILD = (
    "import sys\n"
    "from compaction import compact\n"
    "from evtrack.store import open_store\n"
    "compact(open_store(sys.argv[1]), grace_seconds=0)\n"
    "print('survived')\n"
)


@pytest.fixture(autouse=True)
def _isolated(cache_dir: Any, fresh_evtrack: None) -> None:
    """Spool and table cache in tmp dirs (inherited by the child); evtrack globals reset."""


def log_generation(store: ObjectStore, direct_writer: Any, gen: int) -> list[ev.Event]:
    """Two writers, two runs, several segments: run lifecycle, params, tags and metrics; returns
    the events as decoded from the segments just put."""
    for w_no, run_id in enumerate(("r1", "r2")):
        w = direct_writer(store, f"w{w_no}g{gen}")
        first: list[ev.Event] = []
        if gen == 1:
            first.append(
                w.event(
                    ev.RunCreated,
                    run_id=run_id,
                    experiment_id="0",
                    run_name=run_id,
                    user_id="u",
                    start_time=1,
                    artifact_uri="file:///a",
                    tags={"gen": "1"},
                )
            )
        first += [
            w.event(ev.ParamLogged, run_id=run_id, key=f"p{gen}", value=str(gen)),
            w.event(ev.TagSet, run_id=run_id, key="gen", value=str(gen)),
        ]
        w.put(first)
        for seg in range(3):
            steps = range(gen * 100 + seg * 10, gen * 100 + seg * 10 + 10)
            w.put(
                [
                    w.event(ev.MetricLogged, run_id=run_id, key="loss", value=float(s), step=s, timestamp=s)
                    for s in steps
                ]
            )
        if gen == 2 and run_id == "r1":
            w.put([w.event(ev.RunUpdated, run_id=run_id, status="FINISHED", end_time=9)])
    events: list[ev.Event] = []
    for info in store.list("events/"):
        if f"g{gen}-" in info.key:
            events += ev.decode_segment(store.get(info.key))[0]
    return events


def metric_counts(store: ObjectStore, table_rows: Any) -> Counter:
    return Counter((m["run_id"], m["step"]) for m in table_rows(store, "metrics"))


def check_reads(uri: str, events: list[ev.Event]) -> None:
    """What a user reads equals the pure fold of every event logged (tables + tail)."""
    from evtrack.read import backend

    backend._backends.pop(backend._normalize(uri), None)  # a fresh process's view
    client = evtrack.MlflowClient(uri)
    want = fold(events)
    for run_id in ("r1", "r2"):
        run = client.get_run(run_id)
        assert run.info.status == want.runs[run_id].status
        assert run.data.params == want.live_params(run_id)
        assert run.data.tags == want.live_tags(run_id)
        assert run.data.metrics == want.latest_metrics(run_id)
        history = [m.step for m in client.get_metric_history(run_id, "loss")]
        assert history == [p[0] for p in want.metrics[run_id]["loss"].history()]


# Every step on the local store; on S3 (slower) the steps on either side of the commit.
CASES = [("local", step) for step in STEPS] + [("s3", "files_written"), ("s3", "committed")]


@pytest.mark.parametrize(("backend", "step"), CASES, ids=[f"{b}-{s}" for b, s in CASES])
def test_a_compactor_killed_at_any_step_leaves_a_store_that_converges(
    backend: str, step: str, request: pytest.FixtureRequest, direct_writer: Any, table_rows: Any
) -> None:
    store_uri = request.getfixturevalue(f"{backend}_uri")
    store = open_store(store_uri)
    events = log_generation(store, direct_writer, 1)
    assert compact(store, grace_seconds=0).version == 1
    events += log_generation(store, direct_writer, 2)
    pending = [i.key for i in store.list("events/")]
    assert len(pending) == 9

    child = subprocess.run(
        [sys.executable, "-c", CHILD, store_uri],
        env={**os.environ, CRASH_ENV: step},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "survived" not in child.stdout
    died_after_commit = COMMITTED_BEFORE_DEATH[step]
    assert mf.latest_version(store) == (2 if died_after_commit else 1)
    manifest = mf.load(store)  # still loads: the commit is all or nothing
    assert all(store.head(f["path"]) is not None for files in manifest.tables.values() for f in files)
    referenced = {
        f["path"] for v in mf.list_versions(store) for files in mf.load(store, v).tables.values() for f in files
    }
    orphans = {i.key for i in store.list("tables/") if "/_delta_log/" not in i.key} - referenced
    assert bool(orphans) == (step in ("files_written", "before_commit"))  # what a later gc removes
    left = [i.key for i in store.list("events/")]
    assert left == ([] if step == "deleted" else pending)
    check_reads(store_uri, events)  # readable, and nothing is missing even before recovery

    report = compact(store, grace_seconds=0)

    assert report.commits == (0 if died_after_commit else 1)
    assert report.segments == (0 if died_after_commit else 9)
    assert mf.list_versions(store) == [1, 2]
    assert list(store.list("events/")) == []
    expected = Counter((e.run_id, e.step) for e in events if isinstance(e, ev.MetricLogged))
    assert metric_counts(store, table_rows) == expected  # each point exactly once
    eids = Counter(r["eid"] for r in table_rows(store, "events"))
    assert eids == Counter(e.eid for e in events)
    params = {(p["run_id"], p["key"]): p["value"] for p in table_rows(store, "params")}
    assert params == {(r, f"p{g}"): str(g) for r in ("r1", "r2") for g in (1, 2)}
    check_reads(store_uri, events)
    check_delta_agrees(store_uri)  # the Delta logs caught up with the manifests too
    again = compact(store, grace_seconds=0)
    assert (again.commits, again.segments) == (0, 0)
