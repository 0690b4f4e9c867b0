"""Concurrent writers: threads and processes on one run, the set_experiment race, fork safety."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from typing import Any

import pytest

import evtrack
from evtrack.eventlog import events as ev
from evtrack.state.fold import fold

POINTS = 200


def _metric_counts(events: list[ev.Event], run_id: str) -> Counter:
    """How often each (key, step) of a run appears in the raw log."""
    return Counter((e.key, e.step) for e in events if isinstance(e, ev.MetricLogged) and e.run_id == run_id)


# -- threads -----------------------------------------------------------------------------------


def test_eight_threads_log_to_one_run(tracking_uri: str, inbox: Any) -> None:
    client = evtrack.EvtrackClient(tracking_uri)
    run = evtrack.start_run()
    run_id = run.info.run_id
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(POINTS):
                if i % 2:
                    evtrack.log_metric(f"t{worker}", float(i), step=i, run_id=run_id)
                else:
                    client.log_metric(run_id, f"t{worker}", float(i), step=i)
            client.log_param(run_id, f"worker{worker}", worker)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    evtrack.end_run()
    assert evtrack.flush().durable

    counts = _metric_counts(inbox(tracking_uri), run_id)
    assert counts == Counter({(f"t{w}", i): 1 for w in range(8) for i in range(POINTS)})
    got = client.get_run(run_id)
    assert got.data.metrics == {f"t{w}": float(POINTS - 1) for w in range(8)}
    assert got.data.params == {f"worker{w}": str(w) for w in range(8)}
    assert all(len(client.get_metric_history(run_id, f"t{w}")) == POINTS for w in range(8))
    assert evtrack.active_run() is None  # the run stack is per thread: workers never started runs


# -- processes ---------------------------------------------------------------------------------


def _process_worker(uri: str, run_id: str, worker: int, fluent: bool) -> None:
    """Log POINTS points of metric p<worker> to an existing run; no explicit flush (exit sends)."""
    import evtrack

    if fluent:
        evtrack.set_tracking_uri(uri)
        with evtrack.start_run(run_id=run_id):
            for i in range(POINTS):
                evtrack.log_metric(f"p{worker}", float(i), step=i)
    else:
        client = evtrack.EvtrackClient(uri)
        for i in range(POINTS):
            client.log_metric(run_id, f"p{worker}", float(i), step=i)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_four_processes_log_to_one_run(
    method: str, tracking_uri: str, inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVTRACK_READ_FRESHNESS", "0")  # on S3, read the children's points at once
    client = evtrack.EvtrackClient(tracking_uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "parent", 1.0)
    if method == "spawn":
        # A fresh interpreter knows the run only from the store. (A forked child needs no
        # flush: the parent ships its buffer before forking.)
        assert client.flush().durable
    ctx = multiprocessing.get_context(method)
    procs = [ctx.Process(target=_process_worker, args=(tracking_uri, run_id, w, w % 2 == 0)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert client.flush().durable

    counts = _metric_counts(inbox(tracking_uri), run_id)
    expected = {(f"p{w}", i): 1 for w in range(4) for i in range(POINTS)}
    assert counts == Counter({**expected, ("parent", 0): 1})  # all present, each exactly once
    assert client.get_run(run_id).data.metrics == {"parent": 1.0, **{f"p{w}": float(POINTS - 1) for w in range(4)}}


def _race_worker(uri: str, name: str, barrier: Any, results: Any) -> None:
    import evtrack

    evtrack.set_tracking_uri(uri)
    barrier.wait()
    results.put(evtrack.set_experiment(name).experiment_id)


def test_set_experiment_race_ends_with_one_experiment(tracking_uri: str) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(8)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(tracking_uri, "same-new-name", barrier, results)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 8
    ids = [results.get(timeout=5) for _ in procs]
    assert len(set(ids)) == 1
    matching = [e for e in evtrack.search_experiments(view_type=evtrack.ViewType.ALL) if e.name == "same-new-name"]
    assert [e.experiment_id for e in matching] == ids[:1]
    assert {e.name for e in evtrack.search_experiments(view_type=evtrack.ViewType.ALL)} == {"Default", "same-new-name"}
    assert evtrack.get_experiment_by_name("same-new-name").experiment_id == ids[0]


# -- fork safety -------------------------------------------------------------------------------

_FORK_SCRIPT = """
import json, os, sys
import evtrack
from evtrack.eventlog import events as ev
from evtrack.state.fold import fold
from evtrack.store import open_store

uri = sys.argv[1]
evtrack.set_tracking_uri(uri)
run = evtrack.start_run()
run_id = run.info.run_id
assert evtrack.flush().durable           # the run exists in the store
evtrack.log_metric("parent", 1.0, step=0)  # buffered (the child must never send it too)

pid = os.fork()
if pid == 0:
    for i in range(20):
        evtrack.log_metric("child", float(i), step=i)
    sys.exit(0)  # a normal interpreter exit in the child: exit hooks run

_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0

def raw_state():
    store = open_store(uri)
    events = []
    for info in store.list("events/"):
        events.extend(ev.decode_segment(store.get(info.key))[0])
    return fold(events)

st = raw_state()  # read behind this process's writer: only what the child sent
series = st.metrics.get(run_id, {})
seen = {
    "status_after_child": st.runs[run_id].status,
    "child_points": len(series["child"].points) if "child" in series else 0,
}
evtrack.log_metric("parent", 2.0, step=1)
evtrack.end_run()
print(json.dumps({"run_id": run_id, **seen}))
"""


def test_a_forked_child_logs_without_duplicating_or_ending_the_parents_run(tracking_uri: str, inbox: Any) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FORK_SCRIPT), tracking_uri],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "EVTRACK_FLUSH_INTERVAL": "60"},
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["status_after_child"] == "RUNNING"  # the child did not end the parent's run
    assert seen["child_points"] == 20  # the child's events arrived at its exit

    run_id = seen["run_id"]
    events = inbox(tracking_uri)
    counts = _metric_counts(events, run_id)
    assert counts == Counter({("parent", 0): 1, ("parent", 1): 1, **{("child", i): 1 for i in range(20)}})
    ends = [e for e in events if isinstance(e, ev.RunUpdated) and e.run_id == run_id and e.status]
    assert [e.status for e in ends] == ["FINISHED"]  # ended once, by the parent
    assert fold(events).runs[run_id].status == "FINISHED"
