"""Compaction benchmark: fold a large inbox into Parquet tables end to end.

Figures (issue 3, "Must show"):

  * 1,000,000 events in 1,000 segments folded by ``Compactor(store, grace_seconds=0).run()``
    on the local store and on moto's threaded S3 server (127.0.0.1): events/s, peak
    memory (PSS of the compacting process and its workers), files and bytes written;
  * the largest backlog (default 10,000,000 events in 10,000 segments): events/s and
    peak memory;
  * an incremental compaction of 10,000 new events on top of that compacted store;
  * an inbox of many short runs (default 10,000 runs, one segment each, 40 events: the
    run's creation, 20 params, 5 tags, 13 metric points and its end), where the
    non-metric events, decoded and folded one by one, dominate.

The inbox is generated directly (``evtrack.eventlog.events`` encoders + ``store.put``), which
is much faster than going through the client: ~200 runs spread over the segments,
each run a writer of its own (one process per run), starting with ``run_created``,
params and tags, then metric points, and ending with ``run_updated`` (FINISHED).

Each compaction runs in a fresh child process set up as ``evtrack compact``
sets up its own (pandas refused, the system allocator: ``compaction/process_setup.py``); its peak
memory is sampled from this process (``_common.TreeMemorySampler``); the CPU of its decoding worker
processes (``compaction/parallel.py``) is reported beside its own. Baselines
measured in the same run on the 1M-event inboxes: the "read floor" (listing,
fetching and JSON-decoding the same segments with orjson, without folding or
writing anything), the same compaction decoded in the compacting process alone
(``--processes 0``), and with the native decoder turned off
(``EVTRACK_COMPACT_NATIVE=0``: every event decoded in Python, in one process).
For the incremental figure the baseline is the same 10,000 events compacted on
an empty store. No timing is asserted; the script exits 0.

Usage::

    python benchmarks/bench_compaction.py [--quick] [--json out.json] [--large N] [--no-s3]
    python benchmarks/bench_compaction.py --profile    # cProfile of the 1M local compaction
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MotoS3, Report, have_moto, peak_rss_bytes, run_child  # noqa: E402

MiB = 1 << 20
BASE_MS = 1_700_000_000_000
METRIC_KEYS = ("loss", "accuracy", "learning_rate", "val_loss", "val_accuracy")


# -- generating an inbox --------------------------------------------------------------


def run_id_of(seed: int, i: int) -> str:
    return hashlib.md5(f"run-{seed}-{i}".encode()).hexdigest()


def writer_of(seed: int, i: int, gen: int) -> str:
    return hashlib.md5(f"writer-{seed}-{i}-{gen}".encode()).hexdigest()[:12]


def run_created_line(eid: str, ms: int, run_id: str, exp_id: str, name: str, artifact_uri: str) -> bytes:
    """The ``run_created`` line of a benchmark run, with the four tags MLflow's client sets."""
    from evtrack.eventlog import events as ev

    tags = {
        "mlflow.runName": name,
        "mlflow.user": "bench",
        "mlflow.source.name": "train.py",
        "mlflow.source.type": "LOCAL",
    }
    return ev.encode(
        ev.RunCreated(
            eid=eid,
            ts=ms,
            run_id=run_id,
            experiment_id=exp_id,
            run_name=name,
            user_id="bench",
            start_time=ms,
            artifact_uri=artifact_uri,
            tags=tags,
        )
    )


def build_segments(n_events: int, n_segments: int, n_runs: int, seed: int = 0, gen: int = 0, new_runs: bool = True):
    """Yield (key, bytes) of ``n_segments`` segments holding ``n_events`` events in total.

    ``gen`` > 0 makes a later generation: new writers continuing existing runs
    (``new_runs=False``: no run_created, metrics after the earlier steps).
    """
    from evtrack.eventlog import events as ev

    n_runs = min(n_runs, n_segments)
    per_seg = n_events // n_segments
    extra = n_events - per_seg * n_segments
    segs_of_run = [n_segments // n_runs + (1 if r < n_segments % n_runs else 0) for r in range(n_runs)]
    enc, metric_line = ev.encode, ev.encode_metric_line
    ms = BASE_MS + gen * 10_000_000
    seg_no = 0
    for r in range(n_runs):
        run_id, writer = run_id_of(seed, r), writer_of(seed, r, gen)
        eids = iter(range(1, 1 << 62))
        exp_id = str(1 + r % 4)
        step = gen * 1_000_000
        for s in range(segs_of_run[r]):
            n = per_seg + (1 if seg_no < extra else 0)
            lines: list[bytes] = []
            ms += 7
            if s == 0 and new_runs:
                if r == 0:
                    for e in range(1, 5):
                        lines.append(
                            enc(
                                ev.ExperimentCreated(
                                    eid=f"{writer}-{next(eids)}",
                                    ts=ms,
                                    experiment_id=str(e),
                                    name=f"experiment-{e}",
                                    artifact_location=f"file:///artifacts/{e}",
                                    tags={"team": "bench"},
                                )
                            )
                        )
                lines.append(
                    run_created_line(f"{writer}-{next(eids)}", ms, run_id, exp_id, f"run-{r}", f"file:///a/{run_id}")
                )
                for p in range(20):
                    lines.append(
                        enc(
                            ev.ParamLogged(
                                eid=f"{writer}-{next(eids)}",
                                ts=ms,
                                run_id=run_id,
                                key=f"param_{p}",
                                value=f"value-{p}-{r}",
                            )
                        )
                    )
                for t in range(5):
                    lines.append(
                        enc(
                            ev.TagSet(
                                eid=f"{writer}-{next(eids)}",
                                ts=ms,
                                run_id=run_id,
                                key=f"tag_{t}",
                                value=f"tag-value-{t}",
                            )
                        )
                    )
            last = s == segs_of_run[r] - 1
            n_metrics = max(0, n - len(lines) - (1 if last else 0))
            for i in range(n_metrics):
                key = METRIC_KEYS[i % len(METRIC_KEYS)]
                if i % len(METRIC_KEYS) == 0:
                    step += 1
                lines.append(metric_line(f"{writer}-{next(eids)}", ms, run_id, key, 1.0 / (step + i % 5 + 1), step, ms))
            if last:
                lines.append(
                    enc(
                        ev.RunUpdated(
                            eid=f"{writer}-{next(eids)}", ts=ms, run_id=run_id, status="FINISHED", end_time=ms
                        )
                    )
                )
            yield f"events/{ms:013d}-{writer}-{s + 1:06d}.jsonl", b"".join(lines)
            seg_no += 1


def open_bench_store(uri: str, fast: bool = False):
    """The store of ``uri``; ``fast`` turns off fsync for generating the inbox."""
    from evtrack.store import LocalStore, open_store

    store = open_store(uri)
    if fast and isinstance(store, LocalStore):
        store = LocalStore(store.root, fsync=False)
    return store


def generate(uri: str, n_events: int, n_segments: int, n_runs: int = 200, gen: int = 0, new_runs: bool = True) -> dict:
    """Write a generated inbox into the store; returns counts and timing."""
    store = open_bench_store(uri, fast=True)
    t0 = time.perf_counter()
    nbytes = segments = 0
    with ThreadPoolExecutor(8) as pool:
        pending = []
        for key, data in build_segments(n_events, n_segments, n_runs, gen=gen, new_runs=new_runs):
            pending.append(pool.submit(store.put, key, data))
            nbytes += len(data)
            segments += 1
            if len(pending) >= 64:
                for f in pending:
                    f.result()
                pending = []
        for f in pending:
            f.result()
    return {"segments": segments, "bytes": nbytes, "seconds": time.perf_counter() - t0}


# -- children: one fresh process per measurement ---------------------------------------


def child_compact(uri: str, profile: str | None, warm: bool = False, processes: int | None = None) -> dict:
    from compaction.process_setup import setup_compaction_process

    setup_compaction_process()  # as `evtrack compact` does: no pandas, the system allocator (before pyarrow loads)
    from compaction import Compactor
    from evtrack.store import open_store

    if warm:  # pay pyarrow's other lazy imports before timing, as a long-running `--every` job has
        import pyarrow as pa

        pa.array([0])
    store = open_store(uri)
    rss_before = peak_rss_bytes()
    compactor = Compactor(store, grace_seconds=0, processes=processes)
    t0 = time.perf_counter()
    if profile:
        import cProfile

        prof = cProfile.Profile()
        report = prof.runcall(compactor.run)
        prof.dump_stats(profile)
    else:
        report = compactor.run()
    seconds = time.perf_counter() - t0
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "events": report.events,
        "segments": report.segments,
        "files_written": report.files_written,
        "bytes_written": report.bytes_written,
        "commits": report.commits,
        "version": report.version,
        "quarantined": report.quarantined,
        "deleted_segments": report.deleted_segments,
        "peak_rss": peak_rss_bytes(),
        "rss_before": rss_before,
        "processes": report.processes,
        "children_cpu_s": _children_cpu(),
        "worker_peak_rss": _children_peak_rss(),
    }


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _children_peak_rss() -> int:
    """The largest peak RSS of the decoding workers (forked, never exec'd: ``ru_maxrss`` is theirs)."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def child_floor(uri: str) -> dict:
    """The read floor: list, get and JSON-decode every inbox segment; no fold, no writes."""
    import orjson

    from evtrack.store import open_store

    store = open_store(uri)
    t0 = time.perf_counter()
    infos = [i for i in store.list("events/") if i.key.endswith(".jsonl")]
    events = 0
    with ThreadPoolExecutor(8) as pool:
        for data in pool.map(lambda i: store.get(i.key), infos):
            events += len(orjson.loads(b"[" + b",".join(data.splitlines()) + b"]"))
    return {"seconds": time.perf_counter() - t0, "events": events, "segments": len(infos)}


def child_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", required=True, choices=("compact", "floor"))
    p.add_argument("--uri", required=True)
    p.add_argument("--profile")
    p.add_argument("--warm", action="store_true")
    p.add_argument("--processes", type=int, default=None)
    a = p.parse_args(argv)
    out = child_compact(a.uri, a.profile, a.warm, a.processes) if a.child == "compact" else child_floor(a.uri)
    print(json.dumps(out))


def child(kind: str, uri: str, *extra: str, env: dict[str, str] | None = None) -> dict:
    return run_child([os.path.abspath(__file__), "--child", kind, "--uri", uri, *extra], env=env)


def decoder_note() -> str:
    from evtrack.eventlog import native_decode

    return (
        "native decoder: msgspec"
        if native_decode.available()
        else "native decoder unavailable (msgspec not installed): every event decoded in Python"
    )


# -- scenarios -----------------------------------------------------------------------


def table_objects(uri: str) -> tuple[int, int]:
    """(files, bytes) now live under ``tables/`` of the store."""
    store = open_bench_store(uri)
    files = nbytes = 0
    for info in store.list("tables/"):
        files += 1
        nbytes += info.size
    return files, nbytes


def backlog(
    report: Report,
    label: str,
    uri: str,
    n_events: int,
    n_segments: int,
    target_rate: bool,
    target_mem: bool,
    floor: bool = True,
    python_uri: str | None = None,
    n_runs: int = 200,
    one_process_uri: str | None = None,
) -> dict:
    print(f"[{label}] generating {n_events:,} events in {n_segments:,} segments ...", flush=True)
    gen = generate(uri, n_events, n_segments, n_runs=n_runs)
    print(f"[{label}]   {gen['bytes'] / MiB:,.0f} MiB of JSON lines in {gen['seconds']:.1f} s", flush=True)
    fl = None
    if floor:
        print(f"[{label}] read floor (list + get + JSON-decode) ...", flush=True)
        fl = child("floor", uri)
    print(f"[{label}] compacting ...", flush=True)
    c = child("compact", uri)
    files, nbytes = table_objects(uri)
    rate = c["events"] / c["seconds"]
    report.add(
        f"{label}: end-to-end",
        rate,
        "events/s",
        fl and fl["events"] / fl["seconds"],
        "read floor",
        target=">= 500000" if target_rate else "",
        note=(
            f"{c['events']:,} events, {c['segments']:,} segments in {c['seconds']:.2f} s, "
            f"child CPU {c['cpu_s']:.1f} s (incl. imports) + {c['children_cpu_s']:.1f} s in "
            f"{c['processes']} decoding processes, {c['commits']} commit(s), {c['quarantined']} "
            f"quarantined; inbox {gen['bytes'] / MiB:,.0f} MiB"
        ),
    )
    if one_process_uri:
        print(f"[{label}] compacting the same inbox decoded in one process ...", flush=True)
        generate(one_process_uri, n_events, n_segments, n_runs=n_runs)
        one = child("compact", one_process_uri, "--processes", "0")
        report.add(
            f"{label}: vs one process",
            rate,
            "events/s",
            one["events"] / one["seconds"],
            "--processes 0",
            note=f"decoded in the compacting process: {one['seconds']:.2f} s, child CPU {one['cpu_s']:.1f} s",
        )
        report.extra[label + " (one process)"] = one
    if python_uri:
        print(f"[{label}] compacting the same inbox with the Python decoder ...", flush=True)
        generate(python_uri, n_events, n_segments, n_runs=n_runs)
        py = child("compact", python_uri, env={"EVTRACK_COMPACT_NATIVE": "0"})
        report.add(
            f"{label}: vs Python decoder",
            rate,
            "events/s",
            py["events"] / py["seconds"],
            "EVTRACK_COMPACT_NATIVE=0",
            note=f"Python decoder: {py['seconds']:.2f} s, child CPU {py['cpu_s']:.1f} s",
        )
        report.extra[label + " (Python decoder)"] = py
    report.add(
        f"{label}: peak memory",
        c["tree_pss_peak"] / MiB,
        "MiB",
        higher_is_better=False,
        target="< 1024" if target_mem else "",
        note=(
            "the most the compacting process and its decoding workers held at once (PSS, sampled every "
            f"20 ms); peak RSS of the compacting process {c['peak_rss'] / MiB:.0f} MiB ({c['rss_before'] / MiB:.0f} "
            f"MiB after imports, before the run), of the largest of {c['processes']} decoding workers "
            f"{c['worker_peak_rss'] / MiB:.0f} MiB (pages shared with the parent in both)"
        ),
    )
    report.add(
        f"{label}: files written",
        c["files_written"],
        "files",
        higher_is_better=False,
        note=f"{files} files ({nbytes / MiB:,.1f} MiB) live under tables/ afterwards",
    )
    report.add(f"{label}: bytes written", c["bytes_written"] / MiB, "MiB", higher_is_better=False)
    report.extra[label] = {"generate": gen, "floor": fl, "compact": c, "tables_live": [files, nbytes]}
    return c


def incremental(report: Report, label: str, uri: str, empty_uri: str, n_new: int) -> None:
    print(f"[{label}] {n_new:,} new events on top of the compacted store ...", flush=True)
    segs = max(1, n_new // 1000)
    for u in (uri, empty_uri):
        generate(u, n_new, segs, n_runs=10, gen=1, new_runs=False)
    cold = child("compact", uri)
    base = child("compact", empty_uri)
    generate(uri, n_new, segs, n_runs=10, gen=2, new_runs=False)
    warm = child("compact", uri, "--warm")
    for name, c, note in (
        ("fresh process", cold, "as a cron `evtrack compact`: includes lazy imports during the run"),
        ("warm process", warm, "lazy imports done before timing, as in a long-running `--every` job"),
    ):
        report.add(
            f"{label}, {name}",
            c["seconds"],
            "s",
            base["seconds"],
            "same events, empty store",
            higher_is_better=False,
            target="< 2",
            note=(
                f"{note}; {c['events']:,} events, {c['segments']} segments, {c['files_written']} "
                f"files ({c['bytes_written'] / MiB:.1f} MiB) written, peak RSS "
                f"{c['peak_rss'] / MiB:.0f} MiB"
            ),
        )
    report.extra[label] = {"fresh": cold, "warm": warm, "baseline_empty_store": base}


def profile_1m(workdir: str, n_events: int) -> None:
    import pstats

    uri = os.path.join(workdir, "profile-store")
    print(f"generating {n_events:,} events for the profile ...", flush=True)
    generate(uri, n_events, max(1, n_events // 1000))
    out = os.path.join(workdir, "compact.prof")
    c = child("compact", uri, "--profile", out)
    print(f"compacted {c['events']:,} events in {c['seconds']:.2f} s under cProfile")
    stats = pstats.Stats(out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke run (100,000 events)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    p.add_argument(
        "--large",
        type=int,
        default=None,
        help="events in the largest backlog (default 10,000,000; --quick: 200,000; 0 skips)",
    )
    p.add_argument("--no-s3", action="store_true", help="skip the moto S3 server runs")
    p.add_argument("--profile", action="store_true", help="cProfile the compaction of 1M events and exit")
    p.add_argument("--workdir", help="where to create stores (default: a temporary directory)")
    p.add_argument(
        "--runs",
        type=int,
        default=None,
        help="short runs in the many-runs inbox (default 10,000; --quick: 2,000; 0 skips)",
    )
    args = p.parse_args()
    n_main = 100_000 if args.quick else 1_000_000
    n_large = args.large if args.large is not None else (200_000 if args.quick else 10_000_000)
    workdir = tempfile.mkdtemp(prefix="bench-compaction-", dir=args.workdir)
    os.environ["EVTRACK_CACHE_DIR"] = os.path.join(workdir, "cache")
    os.environ["EVTRACK_SPOOL_DIR"] = os.path.join(workdir, "spool")
    try:
        if args.profile:
            profile_1m(workdir, n_main)
            return
        title = "bench_compaction" + (" (--quick)" if args.quick else "")
        report = Report(title)
        t_all = time.perf_counter()
        segs = n_main // 1000
        backlog(
            report,
            f"local {n_main:,} ev / {segs:,} seg",
            os.path.join(workdir, "local-1"),
            n_main,
            segs,
            target_rate=True,
            target_mem=False,
            python_uri=os.path.join(workdir, "local-1-py"),
            one_process_uri=os.path.join(workdir, "local-1-one"),
        )
        report.note(decoder_note())
        n_runs = args.runs if args.runs is not None else (2_000 if args.quick else 10_000)
        if n_runs:  # a sweep of short runs: run creation, 20 params and 5 tags outweigh the metric points
            backlog(
                report,
                f"local {n_runs:,} short runs ({40 * n_runs:,} ev)",
                os.path.join(workdir, "runs"),
                40 * n_runs,
                n_runs,
                target_rate=False,
                target_mem=False,
                python_uri=os.path.join(workdir, "runs-py"),
                n_runs=n_runs,
            )
        if args.no_s3:
            report.note("moto S3 runs skipped (--no-s3)")
        elif not have_moto():
            report.note("moto S3 runs skipped: moto[server] is not installed (pip install 'moto[server]')")
        else:
            with MotoS3("bench-compaction") as moto:
                backlog(
                    report,
                    f"moto S3 {n_main:,} ev / {segs:,} seg",
                    "s3://bench-compaction/store",
                    n_main,
                    segs,
                    target_rate=False,
                    target_mem=False,
                    python_uri="s3://bench-compaction/store-py",
                )
            report.note(
                f"moto S3: ThreadedMotoServer on {moto.url}, in the parent process (it shares "
                "the 2 cores with the compacting child)"
            )
        if n_large:
            large_uri = os.path.join(workdir, "local-large")
            lsegs = max(1, n_large // 1000)
            backlog(
                report,
                f"local backlog {n_large:,} ev / {lsegs:,} seg",
                large_uri,
                n_large,
                lsegs,
                target_rate=False,
                target_mem=True,
                floor=False,
            )
            if n_large < 10_000_000:
                report.note(f"largest backlog measured: {n_large:,} events (the targets are stated for 10,000,000)")
            incremental(
                report,
                f"incremental 10,000 ev on the {n_large:,}-event store",
                large_uri,
                os.path.join(workdir, "local-empty"),
                10_000,
            )
        report.note(f"total wall time {time.perf_counter() - t_all:.0f} s; stores under {workdir} (removed)")
        report.print()
        report.save(args.json)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if "--child" in sys.argv:
        child_main(sys.argv[1:])
    else:
        main()
