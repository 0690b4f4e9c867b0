"""What publishing the Delta logs (compaction/delta.py) adds to a compaction pass.

Figures (issue 17, "Speed"):

  * a compaction pass of 1,000,000 events (1,000 segments, the inbox of
    ``bench_compaction.py``) with the Delta logs published, against the same inbox
    compacted with ``EVTRACK_DELTA_LOG=0`` (target: at most +10%);
  * incremental passes of 10,000 new events on a store with many commits (default:
    a store built here with ``--commits`` small commits, or ``--store PATH`` to reuse
    one), with and without publishing, on two copies of that store; the median and
    the slowest pass (a checkpoint pass) with publishing (target: < 1 s).

Each configuration runs in a fresh child process that times ``Compactor.run()``
(which publishes after the commit) pass by pass. No timing is asserted; exit 0.

Usage::

    python benchmarks/bench_delta.py [--events 1000000] [--commits 10000 | --store PATH] [--passes 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO_ROOT, Report  # noqa: E402
from bench_compaction import generate  # noqa: E402

CHILD = """
import json, os, sys, time
from compaction import Compactor
from evtrack.eventlog import events as ev
from evtrack.store import open_store

uri, passes, new_events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = open_store(uri)
times = []
for p in range(passes):
    if new_events:
        for s in range(10):
            w = f"bench{os.getpid()}x{p}x{s}"
            lines = [ev.encode(ev.MetricLogged(eid=f"{w}-{j}", ts=1_900_000_000_000 + j, run_id=f"run{(s * 7) % 200:04d}",
                     key="acc", value=float(j), step=j, timestamp=j)) for j in range(new_events // 10)]
            store.put(f"events/{1_900_000_000_000 + p:013d}-{w}-000001.jsonl", b"".join(lines))
    t0 = time.perf_counter()
    report = Compactor(store, grace_seconds=0).run()
    times.append(time.perf_counter() - t0)
    assert not report.errors, report.errors
print(json.dumps({"times": times, "version": report.version, "events": report.events}))
"""

BUILD = """
import os, sys
os.environ["EVTRACK_DELTA_LOG"] = "0"
from compaction import Compactor, delta
from evtrack.eventlog import events as ev
from evtrack.store import LocalStore

root, n = sys.argv[1], int(sys.argv[2])
store = LocalStore(root, fsync=False)
for i in range(n):
    w, run = f"w{i % 50:04d}", f"run{i % 200:04d}"
    lines = [ev.encode(ev.MetricLogged(eid=f"{w}-{i}-{j}", ts=1_700_000_000_000 + i, run_id=run, key="loss",
             value=float(j), step=i * 10 + j, timestamp=i)) for j in range(10)]
    lines.append(ev.encode(ev.TagSet(eid=f"{w}-{i}-t", ts=1_700_000_000_000 + i, run_id=run, key="k", value=str(i))))
    store.put(f"events/{1_700_000_000_000 + i:013d}-{w}-{i // 50 + 1:06d}.jsonl", b"".join(lines))
Compactor(store, grace_seconds=0, max_segments_per_commit=1, processes=0).run()  # one commit per segment
os.environ["EVTRACK_DELTA_LOG"] = "1"
print(delta.publish(store).summary())  # the same log as publishing after each commit
"""


def child(code: str, *args: str, delta_on: bool = True) -> dict:
    env = {**os.environ, "EVTRACK_DELTA_LOG": "1" if delta_on else "0", "PYTHONPATH": REPO_ROOT}
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_million(report: Report, workdir: str, n_events: int) -> None:
    print(f"[1M] generating {n_events:,} events twice ...", flush=True)
    on, off = os.path.join(workdir, "on"), os.path.join(workdir, "off")
    generate(on, n_events, max(1, n_events // 1000))
    shutil.copytree(on, off)
    t_off = child(CHILD, off, "1", "0", delta_on=False)["times"][0]
    t_on = child(CHILD, on, "1", "0", delta_on=True)["times"][0]
    report.add(
        f"{n_events:,}-event pass with Delta logs",
        t_on,
        "s",
        t_off,
        "same inbox, EVTRACK_DELTA_LOG=0",
        higher_is_better=False,
        target=">= 0.91x",  # baseline/value: at most +10%
        note=f"publishing added {100 * (t_on - t_off) / t_off:+.1f}% (15 tables, one Delta version each)",
    )
    shutil.rmtree(on)
    shutil.rmtree(off)


def incremental(report: Report, workdir: str, store: str | None, commits: int, passes: int) -> None:
    if store is None:
        store = os.path.join(workdir, "many")
        print(f"[incremental] building a store of {commits:,} commits (slow) ...", flush=True)
        subprocess.run(
            [sys.executable, "-c", BUILD, store, str(commits)], env={**os.environ, "PYTHONPATH": REPO_ROOT}, check=True
        )
    on, off = os.path.join(workdir, "inc-on"), os.path.join(workdir, "inc-off")
    shutil.copytree(store, on)
    shutil.copytree(store, off)
    print(f"[incremental] {passes} passes of 10,000 events on each copy ...", flush=True)
    r_off = child(CHILD, off, str(passes), "10000", delta_on=False)
    r_on = child(CHILD, on, str(passes), "10000", delta_on=True)
    warm_on, warm_off = r_on["times"][1:] or r_on["times"], r_off["times"][1:] or r_off["times"]
    base = r_on["version"] - passes
    report.add(
        f"incremental 10k-event pass on {base:,} commits, median",
        statistics.median(warm_on),
        "s",
        statistics.median(warm_off),
        "same passes, EVTRACK_DELTA_LOG=0",
        higher_is_better=False,
        target="< 1",
        note=f"passes 2..{passes} in one process; first (cold) pass {r_on['times'][0]:.2f}s vs {r_off['times'][0]:.2f}s",
    )
    report.add(
        f"incremental 10k-event pass on {base:,} commits, slowest (a checkpoint pass)",
        max(warm_on),
        "s",
        max(warm_off),
        "slowest pass without Delta logs",
        higher_is_better=False,
        target="< 1",
        note="every 10th Delta version writes a checkpoint of each of the 15 tables",
    )
    report.extra["incremental"] = {"on": r_on, "off": r_off}
    shutil.rmtree(on)
    shutil.rmtree(off)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--store", default=None, help="reuse a local store with many commits (copied, not changed)")
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--skip-1m", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    report = Report("Delta log publishing (issue 17)")
    with tempfile.TemporaryDirectory(prefix="bench-delta-") as workdir:
        t0 = time.perf_counter()
        if not args.skip_1m:
            one_million(report, workdir, args.events)
        incremental(report, workdir, args.store, args.commits, args.passes)
        report.extra["seconds"] = time.perf_counter() - t0
    report.print()
    if args.json:
        report.save(args.json)


if __name__ == "__main__":
    main()
