"""Decoding a backlog in forked worker processes (``compaction.parallel``).

The parallel path must fold exactly what the in-process path folds (same tables,
reports and quarantine, on both backends); a worker that dies fails the pass
before anything is committed; workers die with a compactor killed by SIGKILL;
and ``process_count`` / ``evtrack compact --processes`` choose the workers.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from compaction import Compactor, compactor, parallel
from evtrack.eventlog import native_decode
from compaction.compactor import CRASH_ENV
from compaction.inbox import NATIVE_ENV
from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.cli import cli
from evtrack.errors import EvtrackError
from evtrack.store import ObjectStore, open_store

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not native_decode.available(),
    reason="worker processes need fork and the native decoder (msgspec)",
)
BATCH = 4096  # every metric segment below is larger: about one segment a batch
DIED = "a compaction worker process died"
MS = 1_700_000_000_000


@pytest.fixture(autouse=True)
def _isolated(cache_dir: Any, fresh_evtrack: None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Table cache, spool and the temporary directory (worker files) private to the test."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.delenv(CRASH_ENV, raising=False)
    monkeypatch.delenv(NATIVE_ENV, raising=False)
    return str(tmp)


# -- an inbox built in memory --------------------------------------------------------------


class Inbox:
    """Segments (key, bytes) and what folding them must give; ``put`` them into any number of stores."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix  # writer ids (and so eids and keys) unique to this inbox
        self.segments: list[tuple[str, bytes]] = []
        self.events = 0  # good events
        self.metrics: Counter = Counter()  # (run_id, key, step) of good metric events
        self.bad = 0
        self.eid = 0

    def next_eid(self, writer: str) -> str:
        self.eid += 1
        return f"{self.prefix}{writer}-{self.eid}"

    def point(
        self, writer: str, run: str, key: str, value: Any, step: int, raw: bool = False, spaced: bool = False
    ) -> bytes:
        """A metric line; ``raw``: the value as given (an int stays an int), ``spaced``: json.dumps spacing."""
        self.events += 1
        self.metrics[(run, key, step)] += 1
        eid = self.next_eid(writer)
        if not (raw or spaced):
            return ev.encode(
                ev.MetricLogged(eid=eid, ts=MS + step, run_id=run, key=key, value=value, step=step, timestamp=MS + step)
            )
        obj = {
            "v": 1,
            "eid": eid,
            "type": "metric",
            "ts": MS + step,
            "run_id": run,
            "key": key,
            "value": value,
            "step": step,
            "timestamp": MS + step,
        }
        return (json.dumps(obj).encode() if spaced else orjson.dumps(obj)) + b"\n"

    def other(self, writer: str, cls: type, ts: int | None = None, **fields: Any) -> bytes:
        self.events += 1
        eid = self.next_eid(writer)
        return ev.encode(cls(eid=eid, ts=MS + self.eid if ts is None else ts, **fields))

    def put(self, writer: str, seq: int, *lines: bytes, bad: int = 0) -> None:
        self.bad += bad
        self.segments.append((f"events/{MS:013d}-{self.prefix}{writer}-{seq:06d}.jsonl", b"".join(lines)))

    def write_to(self, store: ObjectStore) -> None:
        for key, data in self.segments:
            store.put(key, data)


RUNS = ("r0", "r1", "r2", "r3")


def build_inbox(metric_segments: int = 8, points: int = 32, prefix: str = "") -> Inbox:
    inbox = Inbox(prefix)
    setup = []  # a0: runs, params, tags, then points (other events around a block of points)
    for run in RUNS:
        setup.append(
            inbox.other(
                "a0",
                ev.RunCreated,
                run_id=run,
                experiment_id="0",
                run_name=run,
                user_id="u",
                start_time=1,
                artifact_uri=f"file:///a/{run}",
                tags={"team": "ml"},
            )
        )
    setup.append(inbox.other("a0", ev.ParamLogged, ts=10, run_id="r0", key="lr", value="0.1"))
    setup.append(inbox.other("a0", ev.TagSet, run_id="r1", key="stage", value="dev"))
    setup += [inbox.point("a0", run, "warmup", float(s), s) for run in RUNS for s in range(3)]
    inbox.put("a0", 1, *setup)
    for r, run in enumerate(RUNS):  # m0..m3: all-metric segments, each a batch of its own
        step = 0  # loss = step / 10
        for seq in range(1, metric_segments + 1):
            inbox.put(f"m{r}", seq, *[inbox.point(f"m{r}", run, "loss", s / 10, s) for s in range(step, step + points)])
            step += points
    # n0: non-metric events only, larger than a batch: a batch without a metric
    tags = [inbox.other("n0", ev.TagSet, run_id="r3", key=f"t{i:03d}", value="v" * 60) for i in range(40)]
    inbox.put("n0", 1, *tags, inbox.other("n0", ev.RunUpdated, run_id="r3", status="FINISHED", end_time=9))
    # x0: other events among the points; non-finite and integer values; a spaced metric line
    inbox.put(
        "x0",
        1,
        inbox.point("x0", "r1", "mixed", 1.0, 0),
        inbox.other("x0", ev.TagSet, run_id="r1", key="k", value="v"),
        inbox.point("x0", "r1", "mixed", 2.0, 1),
        inbox.other("x0", ev.ParamLogged, run_id="r1", key="depth", value="3"),
        inbox.point("x0", "r1", "mixed", 3.0, 2),
    )
    inbox.put(
        "x0",
        2,
        *[inbox.point("x0", "r2", "odd", v, s) for s, v in enumerate([1.0, math.nan, math.inf, -math.inf])],
        *[inbox.point("x0", "r2", "ints", 7 + s, s, raw=True) for s in range(5)],
    )
    inbox.put(
        "x0",
        3,
        inbox.point("x0", "r3", "spaced", 0.5, 0),
        inbox.point("x0", "r3", "spaced", 1.5, 1, spaced=True),
        inbox.point("x0", "r3", "spaced", 2.5, 2),
    )
    inbox.put(
        "x0",
        4,
        inbox.point("x0", "r0", "q", 1.0, 0),
        b'{"v":1,"eid":"x0-bad","type":"metric","ts"\n',
        inbox.other("x0", ev.TagSet, run_id="r0", key="after", value="bad"),
        b'{"v":1,"eid":"x0-unknown","type":"no_such_event","ts":5}\n',
        inbox.point("x0", "r0", "q", 2.0, 1),
        bad=2,
    )
    # z0: a second writer logs another value of a param: a conflict, the earlier value kept
    inbox.put("z0", 1, inbox.other("z0", ev.ParamLogged, ts=20, run_id="r0", key="lr", value="0.2"))
    return inbox


# -- reading back ---------------------------------------------------------------------------


def canon(value: Any) -> Any:
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def all_tables(store: ObjectStore, table_rows: Any) -> dict[str, list[tuple]]:
    """Every table of the newest manifest, rows as sorted tuples (NaN comparable)."""
    out = {}
    for name in tables.all_tables():
        rows = [tuple((k, canon(v)) for k, v in sorted(row.items())) for row in table_rows(store, name)]
        out[name] = sorted(rows, key=repr)
    return out


def quarantine_docs(store: ObjectStore) -> dict[str, Any]:
    """Quarantine objects by key (conflict records by version: their keys name the committer)."""
    docs = {}
    for info in store.list("quarantine/"):
        key = info.key
        if key.startswith("quarantine/conflicts/"):
            key = key[: len("quarantine/conflicts/") + 20]
        docs[key] = orjson.loads(store.get(info.key))
    return docs


def processes_where(test: Any) -> list[int]:
    """Live processes for which ``test(stat fields after the name, cmdline)`` holds (zombies excluded)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                fields, argv = stat.read().rsplit(")", 1)[1].split(), cmdline.read()
        except OSError:
            continue  # gone
        if fields[0] != "Z" and test(fields, argv):
            out.append(int(pid))
    return out


def children(pid: int) -> list[int]:
    return processes_where(lambda fields, argv: int(fields[1]) == pid)


def marked(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker``."""
    return processes_where(lambda fields, argv: marker.encode() in argv)


def spy_on_workers(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Count calls of ``decode_in_processes`` (in this, the parent, process) and what they yield."""
    calls: list[dict[str, Any]] = []
    original = parallel.decode_in_processes

    def spy(store: ObjectStore, chunks: Any, processes: int) -> Any:
        call = {"processes": processes, "chunks": len(chunks), "children": 0, "rows": []}
        calls.append(call)
        for batch in original(store, chunks, processes):
            call["children"] = max(call["children"], len(children(os.getpid())))
            call["rows"].append(batch.metrics.num_rows)
            yield batch

    monkeypatch.setattr(parallel, "decode_in_processes", spy)
    return calls


def wait_until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def metric_counts(store: ObjectStore, table_rows: Any) -> Counter:
    return Counter((m["run_id"], m["key"], m["step"]) for m in table_rows(store, "metrics"))


def report_tuple(report: Any) -> tuple:
    return (
        report.version,
        report.commits,
        report.segments,
        report.events,
        report.quarantined_lines,
        report.quarantined_segments,
        report.conflicts,
        report.deleted_segments,
    )


# -- 1. the same tables either way ------------------------------------------------------------


def test_workers_fold_exactly_what_the_in_process_decoder_folds(
    store_uri: str, table_rows: Any, monkeypatch: pytest.MonkeyPatch, _isolated: str
) -> None:
    inbox = build_inbox()
    par, seq = open_store(f"{store_uri}/parallel"), open_store(f"{store_uri}/sequential")
    inbox.write_to(par)
    inbox.write_to(seq)
    calls = spy_on_workers(monkeypatch)

    got = Compactor(par, grace_seconds=0, batch_bytes=BATCH, processes=2).run()
    [call] = calls
    assert call["processes"] == 2 and call["chunks"] >= 10
    assert parallel.process_count(2, call["chunks"]) == 2
    assert call["children"] >= 2  # the workers were live processes of this one
    assert 0 in call["rows"] and max(call["rows"]) > 0  # batches with and without metrics
    assert children(os.getpid()) == [] and os.listdir(_isolated) == []  # workers reaped, files removed

    want = Compactor(seq, grace_seconds=0, batch_bytes=BATCH, processes=0).run()
    assert len(calls) == 1  # the in-process path took no worker

    assert report_tuple(got) == report_tuple(want)
    assert (got.segments, got.events, got.quarantined_lines, got.conflicts) == (
        len(inbox.segments),
        inbox.events,
        inbox.bad,
        1,
    )
    got_tables, want_tables = all_tables(par, table_rows), all_tables(seq, table_rows)
    for name in tables.all_tables():
        assert got_tables[name] == want_tables[name], name
    assert quarantine_docs(par) == quarantine_docs(seq)

    # known answers, so that both paths cannot be wrong alike
    metrics = table_rows(par, "metrics")
    assert metric_counts(par, table_rows) == inbox.metrics
    assert len(table_rows(par, "events")) == inbox.events
    latest = {(m["run_id"], m["key"]): canon(m["value"]) for m in table_rows(par, "latest_metrics")}
    last_loss = (8 * 32 - 1) / 10
    assert latest == {
        **{(r, "loss"): last_loss for r in RUNS},
        **{(r, "warmup"): 2.0 for r in RUNS},
        ("r1", "mixed"): 3.0,
        ("r2", "odd"): -math.inf,
        ("r2", "ints"): 11.0,
        ("r3", "spaced"): 2.5,
        ("r0", "q"): 2.0,
    }
    assert sorted(m["value"] for m in metrics if m["key"] == "ints") == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert [canon(m["value"]) for m in sorted(metrics, key=lambda m: m["step"]) if m["key"] == "odd"] == [
        1.0,
        "NaN",
        math.inf,
        -math.inf,
    ]
    assert {(p["run_id"], p["key"]): p["value"] for p in table_rows(par, "params")} == {
        ("r0", "lr"): "0.1",
        ("r1", "depth"): "3",
    }
    assert {("r1", "stage"), ("r1", "k"), ("r0", "after"), ("r3", "t039")} <= {
        (t["run_id"], t["key"]) for t in table_rows(par, "tags")
    }
    assert {r["run_id"]: r["status"] for r in table_rows(par, "runs")}["r3"] == "FINISHED"
    docs = quarantine_docs(par)
    [lines] = [d for k, d in docs.items() if k.startswith("quarantine/lines/")]
    assert [(line["line"], "no_such_event" in line["raw"]) for line in lines["lines"]] == [(2, False), (4, True)]
    [conflicts] = [d for k, d in docs.items() if k.startswith("quarantine/conflicts/")]
    assert [(c["kept"], c["rejected"]) for c in conflicts] == [("0.1", "0.2")]
    assert list(par.list("events/")) == [] and list(seq.list("events/")) == []


# -- 2. a worker that dies --------------------------------------------------------------------


def test_a_dead_worker_fails_the_pass_and_commits_nothing(
    local_uri: str, table_rows: Any, monkeypatch: pytest.MonkeyPatch, _isolated: str
) -> None:
    store = open_store(local_uri)
    first = build_inbox(metric_segments=1, points=5)
    first.write_to(store)
    assert Compactor(store, grace_seconds=0, processes=0).run().version == 1
    later = build_inbox(metric_segments=4, prefix="later")
    later.write_to(store)
    inbox_before = sorted(i.key for i in store.list("events/"))
    tables_before = sorted(i.key for i in store.list("tables/"))
    monkeypatch.setenv(CRASH_ENV, "worker_decoding")

    with pytest.raises(EvtrackError) as err:
        Compactor(store, grace_seconds=0, batch_bytes=BATCH, processes=2).run()

    assert str(err.value).startswith(DIED)
    assert mf.latest_version(store) == 1
    assert sorted(i.key for i in store.list("events/")) == inbox_before
    assert sorted(i.key for i in store.list("tables/")) == tables_before  # not even an orphan file
    assert len(table_rows(store, "metrics")) == sum(first.metrics.values())
    assert children(os.getpid()) == [] and os.listdir(_isolated) == []

    monkeypatch.delenv(CRASH_ENV)
    report = Compactor(store, grace_seconds=0, batch_bytes=BATCH, processes=2).run()
    assert (report.version, report.segments, report.events) == (2, len(later.segments), later.events)
    assert metric_counts(store, table_rows) == first.metrics + later.metrics
    assert len(table_rows(store, "events")) == first.events + later.events
    assert list(store.list("events/")) == []


# -- 3. the compactor killed: its workers die with it -----------------------------------------

SLOW_CHILD = """
import sys, time
from compaction import Compactor, parallel
from evtrack.store import open_store
decode = parallel._decode_batch
def slow(*args):
    time.sleep(0.3)
    return decode(*args)
parallel._decode_batch = slow  # the workers decode slowly: time to find them
Compactor(open_store(sys.argv[1]), grace_seconds=0, batch_bytes=4096, processes=2).run()
print("finished")
"""


def test_workers_die_with_a_killed_compactor(local_uri: str, table_rows: Any) -> None:
    store = open_store(local_uri)
    inbox = build_inbox(metric_segments=6)
    inbox.write_to(store)
    marker = f"evtrack-parallel-test-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHILD, local_uri, marker], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_until(lambda: len(marked(marker)) >= 3 or proc.poll() is not None, 30)
        assert proc.poll() is None, proc.communicate()
        assert len(marked(marker)) >= 3  # the compactor and its two workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wait_until(lambda: not marked(marker), 5)
    left = marked(marker)
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == [], "worker processes outlived the compactor"
    assert b"finished" not in proc.stdout.read()

    assert mf.latest_version(store) == 0  # killed while decoding: nothing committed
    report = Compactor(store, grace_seconds=0, batch_bytes=BATCH, processes=2).run()
    assert (report.version, report.segments, report.events) == (1, len(inbox.segments), inbox.events)
    assert metric_counts(store, table_rows) == inbox.metrics
    assert len(table_rows(store, "events")) == inbox.events


# -- 4. how many workers ----------------------------------------------------------------------

AUTO_CHILD = """
import os, threading
from compaction import Compactor, parallel
from evtrack.store import open_store
print(parallel.process_count(None, 1), parallel.process_count(None, 4), parallel.process_count(None, 100))
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
print(parallel.process_count(None, 4))
stop.set()
other.join()  # gone before the compactor counts threads
calls, original = [], parallel.decode_in_processes
parallel.decode_in_processes = lambda store, chunks, n: calls.append(n) or original(store, chunks, n)
report = Compactor(open_store(os.environ["STORE"]), grace_seconds=0, batch_bytes=4096).run()
print(calls, report.segments, report.events)
"""


def test_the_automatic_process_count(local_uri: str) -> None:
    inbox = build_inbox(metric_segments=2)
    inbox.write_to(open_store(local_uri))
    # a fresh process: one thread (pytest's may run others, the moto server's)
    out = subprocess.run(
        [sys.executable, "-c", AUTO_CHILD],
        env={**os.environ, "STORE": local_uri},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    cores = len(os.sched_getaffinity(0))
    auto = lambda n: min(cores, parallel.MAX_AUTO_PROCESSES, n) if cores >= 2 else 0
    lines = out.stdout.splitlines()
    assert lines[0] == f"0 {auto(4)} {auto(100)}"
    assert lines[1] == "0"  # another thread runs: never fork
    assert lines[2] == f"{[auto(100)] if cores >= 2 else []} {len(inbox.segments)} {inbox.events}"


def test_process_count_rules(local_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parallel.process_count(None, 1) == 0
    assert [parallel.process_count(n, 4) for n in (0, 1, 2, 3)] == [0, 0, 2, 3]
    assert parallel.process_count(2, 1) == 0  # one batch: nothing to share
    assert parallel.process_count(16, 3) == 3  # no more workers than batches
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert threading.active_count() > 1
        assert parallel.process_count(None, 4) == 0
        assert parallel.process_count(2, 4) == 2  # explicit: the caller answers for its threads
    finally:
        stop.set()
        t.join()
    if threading.active_count() > 1:  # e.g. the moto server of an S3 test
        assert parallel.process_count(None, 4) == 0
    monkeypatch.setenv(NATIVE_ENV, "0")
    assert parallel.process_count(None, 4) == 0
    with pytest.raises(EvtrackError, match="processes must be 0 or more"):
        parallel.process_count(-1, 4)
    store = open_store(local_uri)
    build_inbox(metric_segments=1).write_to(store)
    with pytest.raises(EvtrackError, match="processes must be 0 or more"):
        Compactor(store, grace_seconds=0, batch_bytes=BATCH, processes=-1).run()
    assert mf.latest_version(store) == 0


# -- 5. evtrack compact --processes -------------------------------------------------------------


def test_cli_processes(local_uri: str, table_rows: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(local_uri)
    inbox = build_inbox(metric_segments=3)
    inbox.write_to(store)
    calls = spy_on_workers(monkeypatch)
    fetch = compactor.fetch_batches
    monkeypatch.setattr(
        compactor,
        "fetch_batches",  # small batches: the CLI has no option for them
        lambda store, infos, batch_bytes, **kw: fetch(store, infos, BATCH, **kw),
    )

    result = CliRunner().invoke(cli, ["compact", "--tracking-uri", local_uri, "--grace", "0", "--processes", "2"])

    assert result.exit_code == 0, result.output
    assert f"version 1: {len(inbox.segments)} segments, {inbox.events} events," in result.output
    assert f"{1 + inbox.bad} quarantined, {len(inbox.segments)} inbox segments deleted" in result.output
    assert [c["processes"] for c in calls] == [2]
    assert metric_counts(store, table_rows) == inbox.metrics

    bad = CliRunner().invoke(cli, ["compact", "--tracking-uri", local_uri, "--processes", "-1"])
    assert bad.exit_code == 2
    assert "Invalid value for '--processes'" in bad.output


STOPPED_CHILD = """
import sys, time
from compaction import compactor, parallel
from evtrack.cli import main
decode, fetch = parallel._decode_batch, compactor.fetch_batches
def slow(*args):
    time.sleep(0.3)
    return decode(*args)
parallel._decode_batch = slow  # the workers decode slowly: time to stop the command mid-pass
compactor.fetch_batches = lambda store, infos, batch_bytes, **kw: fetch(store, infos, 4096, **kw)
sys.argv = ["evtrack", "compact", "--tracking-uri", sys.argv[1], "--grace", "0", "--every", "60s",
            "--processes", "2"]  # the marker (argv[2]) stays on the process's command line only
main()
"""


def test_a_stop_sent_to_the_process_group_ends_the_pass_cleanly(local_uri: str, table_rows: Any) -> None:
    """systemd and ``kill -TERM -PGID`` signal the workers too: they leave stopping to the compactor."""
    store = open_store(local_uri)
    inbox = build_inbox(metric_segments=6)
    inbox.write_to(store)
    marker = f"evtrack-parallel-test-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [sys.executable, "-c", STOPPED_CHILD, local_uri, marker],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(marked(marker)) >= 3 or proc.poll() is not None, 30)
        assert len(marked(marker)) >= 3, proc.communicate()  # the command and its two workers
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert f"version 1: {len(inbox.segments)} segments, {inbox.events} events," in out
    assert "decoded by 2 worker processes" in out and out.rstrip().endswith("stopped")
    assert metric_counts(store, table_rows) == inbox.metrics


PANDAS_CHILD = """
import sys
from click.testing import CliRunner
from evtrack.cli import cli, main
store, how = sys.argv[1], sys.argv[2]
if how == "in-process":
    result = CliRunner().invoke(cli, ["compact", "--tracking-uri", store, "--grace", "0"])
    print(result.output, end="")
    import pandas  # a program that runs the command in-process keeps its pandas
    print("pandas", pandas.__version__ != "")
else:
    import atexit
    atexit.register(lambda: print("pandas loaded", "pandas" in sys.modules))
    sys.argv = ["evtrack", "compact", "--tracking-uri", store, "--grace", "0"]
    main()
"""


def test_the_compact_command_spares_the_pandas_import(tmp_path: Any) -> None:
    """pyarrow would import pandas (~0.5 s) on its first list conversion; `evtrack compact` never needs it."""
    pytest.importorskip("pandas")
    for how in ("console", "in-process"):
        uri = str(tmp_path / how)
        inbox = build_inbox(metric_segments=2)
        inbox.write_to(open_store(uri))
        out = subprocess.run(
            [sys.executable, "-c", PANDAS_CHILD, uri, how], capture_output=True, text=True, timeout=120, check=False
        )
        assert out.returncode == 0, out.stderr
        assert f"version 1: {len(inbox.segments)} segments, {inbox.events} events," in out.stdout
        assert out.stdout.splitlines()[-1] == ("pandas loaded False" if how == "console" else "pandas True")
