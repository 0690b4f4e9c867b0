"""Short-runs benchmark: an inbox of a hyper-parameter sweep, compacted, against DuckDB's own JSON-to-Parquet.

A sweep of short runs (the seed's workflow) writes mostly params and tags, few
metric points. Each run here is one writer and one segment of 21 events: its
creation (4 ``mlflow.*`` tags), 8 params, 4 tags, 6 metric points, a tag removed,
and its end (FINISHED). ``--shape 40`` gives instead the 40-event runs of
``bench_compaction.py`` (20 params, 5 tags, 13 points).

Figures, each compaction in a fresh child process set up as ``evtrack compact``:

  * ``evtrack compact`` of N short runs (default 8,000) against DuckDB's
    ``COPY (SELECT * FROM read_json_auto(segments)) TO 'x.parquet'`` on the same
    files, measured in the same run (the issue's target: ≤ 1.2× DuckDB's time);
  * the same compaction against the read floor (list, get and JSON-decode the
    segments with orjson: no fold, no writes; target ≥ 0.8× its rate);
  * peak memory of the compaction: the proportional set size of the compacting
    process and its decoding workers together, sampled (target < 256 MiB);
  * ``--large N`` runs (default 100,000, about 2M events; 0 skips): seconds (target ≤ 8 s);
  * on moto's S3 server (127.0.0.1): the compaction against the S3 read floor.

Every inbox is generated twice when DuckDB needs it (the compaction deletes its
segments). The page cache is warmed by the read floor before anything is timed.
No timing is asserted; the script exits 0.

Usage::

    python benchmarks/bench_short_runs.py [--quick] [--runs N] [--large N] [--shape 21|40] [--no-s3] [--json out.json]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MotoS3, Report, have_moto, run_child  # noqa: E402
from bench_compaction import BASE_MS, build_segments, open_bench_store, run_created_line, run_id_of, writer_of  # noqa: E402

MiB = 1 << 20


def sweep_segments(n_runs: int, seed: int = 0):
    """Yield (key, bytes): one segment per run of 21 events (see the module's docstring)."""
    from evtrack.eventlog import events as ev

    enc, metric_line = ev.encode, ev.encode_metric_line
    yield (
        f"events/{BASE_MS:013d}-{writer_of(seed, -1, 0)}-000001.jsonl",
        enc(
            ev.ExperimentCreated(
                eid="sweep-1", ts=BASE_MS, experiment_id="1", name="sweep", artifact_location="file:///a/1", tags={}
            )
        ),
    )
    for r in range(n_runs):
        run_id, writer = run_id_of(seed, r), writer_of(seed, r, 0)
        ms = BASE_MS + 10 * r
        eids = (f"{writer}-{i}" for i in range(1, 1 << 30))
        lines = [run_created_line(next(eids), ms, run_id, "1", f"lasso-{r}", f"file:///a/1/{run_id}/artifacts")]
        for p in range(8):
            lines.append(
                enc(
                    ev.ParamLogged(
                        eid=next(eids), ts=ms + 1, run_id=run_id, key=f"param_{p}", value=f"{p * 0.1 + r % 97:.3f}"
                    )
                )
            )
        for t in range(4):
            lines.append(
                enc(ev.TagSet(eid=next(eids), ts=ms + 2, run_id=run_id, key=f"tag_{t}", value=f"value-{t}-{r % 7}"))
            )
        for m, key in enumerate(("rmse", "mae", "r2", "rmse", "mae", "r2")):
            lines.append(metric_line(next(eids), ms + 3, run_id, key, 1.0 / (r + m + 1), m // 3, ms + 3))
        lines.append(enc(ev.TagDeleted(eid=next(eids), ts=ms + 4, run_id=run_id, key="tag_3")))
        lines.append(enc(ev.RunUpdated(eid=next(eids), ts=ms + 5, run_id=run_id, status="FINISHED", end_time=ms + 5)))
        yield f"events/{ms:013d}-{writer}-000001.jsonl", b"".join(lines)


def generate(uri: str, n_runs: int, shape: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    store = open_bench_store(uri, fast=True)
    segments = sweep_segments(n_runs) if shape == 21 else build_segments(40 * n_runs, n_runs, n_runs)
    t0, nbytes = time.perf_counter(), 0
    with ThreadPoolExecutor(16) as pool:
        futures = []
        for key, data in segments:
            nbytes += len(data)
            futures.append(pool.submit(store.put, key, data))
        for f in futures:
            f.result()
    return {"seconds": time.perf_counter() - t0, "bytes": nbytes, "segments": len(futures)}


def child_duckdb(root: str) -> dict:
    """DuckDB's own JSON-to-Parquet of the inbox's segments (one COPY statement, all its threads)."""
    import duckdb

    files = sorted(glob.glob(os.path.join(root, "events", "*.jsonl")))
    out = os.path.join(root, "duckdb-copy.parquet")
    con = duckdb.connect()
    t0 = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_json_auto(?)) TO '{out}' (FORMAT parquet)", [files])
    seconds = time.perf_counter() - t0
    rows = con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]
    os.unlink(out)
    return {"seconds": seconds, "events": rows, "segments": len(files)}


def child(kind: str, uri: str, *extra: str) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "bench_short_runs.py" if kind == "duckdb" else "bench_compaction.py")
    return run_child([script, "--child", kind, "--uri", uri, *extra])


def child_main(argv: list[str]) -> None:
    import json

    p = argparse.ArgumentParser()
    p.add_argument("--child", required=True, choices=("duckdb",))
    p.add_argument("--uri", required=True)
    print(json.dumps(child_duckdb(p.parse_args(argv).uri)))


def compaction_figures(report: Report, label: str, c: dict, fl: dict, target_floor: bool) -> None:
    rate = c["events"] / c["seconds"]
    report.add(
        f"{label}: vs read floor",
        rate,
        "events/s",
        fl["events"] / fl["seconds"],
        "read floor",
        target=">= 0.8x" if target_floor else "",
        note=(
            f"{c['events']:,} events in {c['segments']:,} segments: {c['seconds']:.2f} s "
            f"(floor {fl['seconds']:.2f} s); {c['processes']} decoding processes; {c['quarantined']} quarantined"
        ),
    )
    report.add(
        f"{label}: peak memory",
        c["tree_pss_peak"] / MiB,
        "MiB",
        higher_is_better=False,
        target="< 256" if target_floor else "",
        note=(
            f"the most the compacting process and its {c['processes']} decoding workers held at once (PSS, "
            f"sampled every 20 ms); peak RSS of the compacting process {c['peak_rss'] / MiB:.0f} MiB "
            f"({c['rss_before'] / MiB:.0f} after imports), of the largest worker {c['worker_peak_rss'] / MiB:.0f} MiB "
            "(pages shared with the parent in both)"
        ),
    )


def local_case(report: Report, workdir: str, n_runs: int, shape: int, label: str, duckdb: bool) -> dict:
    uri = os.path.join(workdir, label.replace(" ", "-"))
    print(f"[{label}] generating {n_runs:,} short runs ...", flush=True)
    gen = generate(uri, n_runs, shape)
    print(
        f"[{label}]   {gen['segments']:,} segments, {gen['bytes'] / MiB:,.0f} MiB in {gen['seconds']:.1f} s", flush=True
    )
    fl = child("floor", uri)
    d = None
    if duckdb:
        print(f"[{label}] DuckDB COPY read_json_auto -> parquet ...", flush=True)
        d = child("duckdb", uri)
    print(f"[{label}] evtrack compact ...", flush=True)
    c = child("compact", uri)
    if d is not None:
        report.add(
            f"{label}: compact time vs DuckDB COPY",
            c["seconds"],
            "s",
            d["seconds"],
            "DuckDB COPY",
            higher_is_better=False,
            target=">= 0.83x",  # compact's time <= 1.2x DuckDB's
            note=f"target: compact <= 1.2x DuckDB's time; DuckDB converted {d['events']:,} rows of {d['segments']:,} files in {d['seconds']:.2f} s",
        )
    compaction_figures(report, label, c, fl, target_floor=duckdb)
    report.extra[label] = {"generate": gen, "floor": fl, "duckdb": d, "compact": c}
    return c


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke run (1,000 runs; no large case)")
    p.add_argument("--runs", type=int, default=None, help="short runs in the main inbox (default 8,000)")
    p.add_argument("--large", type=int, default=None, help="runs in the large inbox (default 100,000; 0 skips)")
    p.add_argument("--shape", type=int, choices=(21, 40), default=21, help="events per run (default 21)")
    p.add_argument("--no-s3", action="store_true", help="skip the moto S3 run")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    p.add_argument("--workdir", help="where to create stores (default: a temporary directory)")
    args = p.parse_args()
    n_runs = args.runs if args.runs is not None else (1_000 if args.quick else 8_000)
    n_large = args.large if args.large is not None else (0 if args.quick else 100_000)
    workdir = tempfile.mkdtemp(prefix="bench-short-runs-", dir=args.workdir)
    os.environ["EVTRACK_CACHE_DIR"] = os.path.join(workdir, "cache")
    os.environ["EVTRACK_SPOOL_DIR"] = os.path.join(workdir, "spool")
    report = Report("bench_short_runs" + (" (--quick)" if args.quick else ""))
    t_all = time.perf_counter()
    try:
        local_case(report, workdir, n_runs, args.shape, f"local {n_runs:,} runs x {args.shape} ev", duckdb=True)
        if n_large:
            c = local_case(
                report, workdir, n_large, args.shape, f"local {n_large:,} runs x {args.shape} ev", duckdb=False
            )
            report.add(f"local {n_large:,} runs: seconds", c["seconds"], "s", higher_is_better=False, target="<= 8")
        if args.no_s3 or not have_moto():
            report.note("moto S3 run skipped" + ("" if args.no_s3 else ": moto[server] is not installed"))
        else:
            with MotoS3("bench-short-runs"):
                uri = "s3://bench-short-runs/store"
                label = f"moto S3 {n_runs:,} runs x {args.shape} ev"
                print(f"[{label}] generating, read floor, compact ...", flush=True)
                generate(uri, n_runs, args.shape)
                fl = child("floor", uri)
                c = child("compact", uri)
                compaction_figures(report, label, c, fl, target_floor=False)
                report.extra[label] = {"floor": fl, "compact": c}
            report.note("moto S3: ThreadedMotoServer in the parent process (it shares the 2 cores with the child)")
        report.note(f"total wall time {time.perf_counter() - t_all:.0f} s")
        report.print()
        report.save(args.json)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if "--child" in sys.argv:
        child_main(sys.argv[1:])
    else:
        main()
