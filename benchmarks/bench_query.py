"""Query benchmark: search_runs and get_metric_history on evtrack vs MLflow's sqlite store.

Figures (issue 4, "Must show"), warm cache (each query run once, then the median of 5):

  * the four searches, on 2,000 and on 100,000 runs (5 params, 3 metrics, 2 tags each):
      1. ``metrics.rmse < 0.5`` ordered by ``metrics.rmse``
      2. ``params.model = 'lasso' and metrics.r2 > 0.3``
      3. ``tags.developer LIKE 'a%'``
      4. no filter, newest first (MLflow's default order), 1,000 results
    every search returns at most 1,000 runs (MLflow's default ``max_results``) with their
    params, latest metrics and tags, through each system's ``MlflowClient.search_runs``;
  * ``get_metric_history`` of one metric with 1,000,000 points.
  * search 2 right after each write (a tag set and flushed), as on a live store, on both systems.

Targets: every search on 100,000 runs under 50 ms; at 2,000 runs at least 10x faster than
MLflow's sqlite store; the history read under 200 ms.

The evtrack store is the embedded default (a local directory). Its events are generated
directly (``evtrack.eventlog.events`` encoders + ``store.put`` of inbox segments) and compacted with
``compaction.compact(store, grace_seconds=0)``; MLflow's runs are logged through its client
(``create_run`` + ``log_batch`` + ``set_terminated``, the metric history with ``log_batch`` of
1,000 points), which is slow (~0.1 s per run, ~1 s per 1,000 points here): by default MLflow
gets the runs up to ``--mlflow-max`` (2,000) and a history metric only when
``--mlflow-history POINTS`` is given. MLflow is skipped, with a note, when it is not importable
(``pip install mlflow-skinny sqlalchemy alembic``). No timing is asserted; the script exits 0.

``--profile`` prints a cProfile of the slowest evtrack search at the largest size; the script
always prints where that search spends its time (snapshot, id query, building the runs).

Usage::

    python benchmarks/bench_query.py [--quick] [--json out.json] [--profile]
                                     [--sizes 2000,100000] [--history-points 1000000]
                                     [--mlflow-max 2000] [--mlflow-history POINTS] [--dir DIR] [--keep]
                                     [--reuse] [--tail N]

``--tail N`` (default 5) tags N runs after the compaction, so every search also folds a small
inbox tail, as on a live store. The first search in a fresh interpreter is timed too, with the
version's search snapshot kept on disk (docs/storage.md) and with the index built in memory.

``--dir DIR --reuse`` reuses the stores a previous run left in DIR (``--dir`` keeps them): the
100,000-run store takes minutes to build, the searches on it take milliseconds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Report  # noqa: E402

BASE_MS = 1_700_000_000_000
MODELS = ("lasso", "ridge", "elasticnet", "svr", "forest")
DEVELOPERS = ("alice", "anna", "ahmad", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
TEAMS = ("vision", "nlp", "tabular")
SEGMENT_LINES = 50_000
HISTORY_KEY = "loss"

SEARCHES: list[tuple[str, str, list[str] | None]] = [
    ("rmse < 0.5 by rmse", "metrics.rmse < 0.5", ["metrics.rmse"]),
    ("lasso and r2 > 0.3", "params.model = 'lasso' and metrics.r2 > 0.3", None),
    ("developer LIKE 'a%'", "tags.developer LIKE 'a%'", None),
    ("newest 1,000", "", None),
]
MAX_RESULTS = 1000


# -- the runs --------------------------------------------------------------------------


@dataclass
class RunSpec:
    run_id: str
    name: str
    start: int
    end: int
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def run_specs(n: int, seed: int = 4) -> list[RunSpec]:
    """``n`` runs with 5 params, 3 metrics and 2 tags each (deterministic)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = BASE_MS + i * 1000 + rng.randrange(1000)
        out.append(
            RunSpec(
                run_id=f"{rng.getrandbits(128):032x}",
                name=f"run-{i}",
                start=start,
                end=start + 500 + rng.randrange(5000),
                params={
                    "model": rng.choice(MODELS),
                    "alpha": str(rng.choice((0.01, 0.1, 0.5, 1.0))),
                    "l1_ratio": str(round(rng.random(), 2)),
                    "max_iter": str(rng.choice((100, 500, 1000))),
                    "seed": str(rng.randrange(1000)),
                },
                metrics={"rmse": rng.uniform(0.2, 1.2), "r2": rng.uniform(-0.1, 0.9), "mae": rng.uniform(0.1, 1.0)},
                tags={"developer": rng.choice(DEVELOPERS), "team": rng.choice(TEAMS)},
            )
        )
    return out


# -- evtrack: events written straight into the inbox, then compacted ----------------------


def ingest_evtrack(root: str, specs: list[RunSpec], history_points: int) -> tuple[Any, str, str | None, float]:
    """(client, experiment id, id of the history run or None, seconds to generate + compact)."""
    from compaction import compact
    from evtrack.eventlog import events as ev
    from evtrack.client import EvtrackClient

    start = time.perf_counter()
    client = EvtrackClient(root)
    existing = client.get_experiment_by_name("bench") if os.path.isdir(os.path.join(root, "_manifests")) else None
    if existing is not None:  # --reuse: a store this script built before
        history = client.get_experiment_by_name("bench-history")
        print(f"  evtrack: reusing the store in {root}", flush=True)
        return client, existing.experiment_id, "f" * 32 if history is not None else None, 0.0
    exp = client.create_experiment("bench")
    client.flush()
    store = client.store
    writer = "bench" + os.urandom(4).hex()
    state = {"eid": 0, "seq": 0, "lines": []}

    def eid() -> str:
        state["eid"] += 1
        return f"{writer}-{state['eid']:010d}"

    def put(force: bool = False) -> None:
        lines = state["lines"]
        if lines and (force or len(lines) >= SEGMENT_LINES):
            state["seq"] += 1
            store.put(f"events/{BASE_MS:013d}-{writer}-{state['seq']:06d}.jsonl", b"".join(lines))
            state["lines"] = []

    art = f"{store.uri}/artifacts/{exp}"
    for s in specs:
        ts = s.start
        lines = state["lines"]
        lines.append(
            ev.encode(
                ev.RunCreated(
                    eid=eid(),
                    ts=ts,
                    run_id=s.run_id,
                    experiment_id=exp,
                    run_name=s.name,
                    user_id="bench",
                    start_time=s.start,
                    artifact_uri=f"{art}/{s.run_id}/artifacts",
                    tags={"mlflow.runName": s.name, "mlflow.user": "bench"},
                )
            )
        )
        for k, v in s.params.items():
            lines.append(ev.encode(ev.ParamLogged(eid=eid(), ts=ts, run_id=s.run_id, key=k, value=v)))
        for k, v in s.metrics.items():
            lines.append(ev.encode_metric_line(eid(), ts, s.run_id, k, v, 0, ts))
        for k, v in s.tags.items():
            lines.append(ev.encode(ev.TagSet(eid=eid(), ts=ts, run_id=s.run_id, key=k, value=v)))
        lines.append(ev.encode(ev.RunUpdated(eid=eid(), ts=s.end, run_id=s.run_id, status="FINISHED", end_time=s.end)))
        put()
    history_run = None
    if history_points:  # in an experiment of its own, so that it does not show in the searches
        history_exp = client.create_experiment("bench-history")
        client.flush()
        history_run = "f" * 32
        ts = BASE_MS
        state["lines"].append(
            ev.encode(
                ev.RunCreated(
                    eid=eid(),
                    ts=ts,
                    run_id=history_run,
                    experiment_id=history_exp,
                    run_name="history",
                    user_id="bench",
                    start_time=BASE_MS - 1,
                    artifact_uri=f"{art}/{history_run}/artifacts",
                    tags={"mlflow.runName": "history"},
                )
            )
        )
        for step in range(history_points):
            state["lines"].append(
                ev.encode_metric_line(eid(), ts, history_run, HISTORY_KEY, 1.0 / (step + 1), step, BASE_MS + step)
            )
            put()
    put(force=True)
    report = compact(store, grace_seconds=0)
    seconds = time.perf_counter() - start
    print(
        f"  evtrack: {len(specs):,} runs + {history_points:,} history points generated and compacted "
        f"in {seconds:.1f}s ({report.summary()})",
        flush=True,
    )
    return client, exp, history_run, seconds


# -- MLflow: logged through its client into its sqlite store ------------------------------


def ingest_mlflow(root: str, specs: list[RunSpec], history_points: int) -> tuple[Any, str, str | None, float]:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    start = time.perf_counter()
    reuse = os.path.exists(os.path.join(root, "mlflow.db"))
    os.makedirs(root, exist_ok=True)
    client = MlflowClient(tracking_uri=f"sqlite:///{os.path.join(root, 'mlflow.db')}")
    if reuse:  # --reuse: a store this script built before
        found = client.get_experiment_by_name("bench")
        if found is not None and len(client.search_runs([found.experiment_id], max_results=1)) == 1:
            history = client.get_experiment_by_name("bench-history")
            runs = client.search_runs([history.experiment_id]) if history is not None else []
            print(f"  mlflow: reusing the store in {root}", flush=True)
            return client, found.experiment_id, runs[0].info.run_id if runs else None, 0.0
    exp = client.create_experiment("bench", artifact_location=os.path.join(root, "artifacts"))
    for i, s in enumerate(specs):
        run = client.create_run(exp, start_time=s.start, tags=dict(s.tags), run_name=s.name)
        rid = run.info.run_id
        client.log_batch(
            rid,
            metrics=[Metric(k, v, s.start, 0) for k, v in s.metrics.items()],
            params=[Param(k, v) for k, v in s.params.items()],
        )
        client.set_terminated(rid, "FINISHED", end_time=s.end)
        if (i + 1) % 1000 == 0:
            print(f"  mlflow: {i + 1:,} runs logged ({time.perf_counter() - start:.0f}s)", flush=True)
    history_run = None
    if history_points:
        history_exp = client.create_experiment("bench-history")
        history_run = client.create_run(history_exp, start_time=BASE_MS - 1, run_name="history").info.run_id
        for lo in range(0, history_points, 1000):
            client.log_batch(
                history_run,
                metrics=[
                    Metric(HISTORY_KEY, 1.0 / (step + 1), BASE_MS + step, step)
                    for step in range(lo, min(lo + 1000, history_points))
                ],
            )
    seconds = time.perf_counter() - start
    print(f"  mlflow: {len(specs):,} runs + {history_points:,} history points logged in {seconds:.1f}s", flush=True)
    return client, exp, history_run, seconds


# -- timing --------------------------------------------------------------------------------


def warm_median_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Run ``fn`` once (warm-up), then ``repeats`` times; (median ms, last result)."""
    result = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def after_write_ms(client: Any, exp: str, repeats: int) -> float:
    """Median ms of the second search when each comes right after a write (a tag set, flushed):
    a live store, where no search finds the snapshot of the one before."""
    _, filter_string, order_by = SEARCHES[1]
    run_ids = [r.info.run_id for r in client.search_runs([exp], "", max_results=20)]
    times = []
    for i in range(repeats + 1):
        client.set_tag(run_ids[i % len(run_ids)], "bench.live", str(i))
        if hasattr(client, "flush"):
            client.flush()
        t = time.perf_counter()
        client.search_runs([exp], filter_string, max_results=MAX_RESULTS, order_by=order_by)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times[1:])


def search_fn(client: Any, exp: str, filter_string: str, order_by: list[str] | None) -> Callable[[], list]:
    return lambda: client.search_runs([exp], filter_string, max_results=MAX_RESULTS, order_by=order_by)


@dataclass
class Measured:
    n: int
    evtrack: dict[str, float] = field(default_factory=dict)
    mlflow: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    after_write: dict[str, float] = field(default_factory=dict)  # system -> ms


def breakdown(client: Any, exp: str, filter_string: str, order_by: list[str] | None, repeats: int) -> dict:
    """Where one evtrack search spends its time: refresh + snapshot, the id query, building the runs."""
    from evtrack.entities import ViewType
    from evtrack.query import search_grammar as grammar
    from evtrack.query.search import _runs, engine_of, search_rids

    backend = client._backend
    engine = engine_of(backend)
    parts: dict[str, list[float]] = {
        "snapshot (flush + list inbox + manifest)": [],
        "parse": [],
        "id query": [],
        "building the Runs": [],
    }
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        snap = engine.snapshot()
        t1 = time.perf_counter()
        filters = grammar.parse_run_filter(filter_string)
        orders = grammar.parse_order_by(order_by)
        t2 = time.perf_counter()
        rids, index, tail = search_rids(
            snap, filters, orders, [exp], ViewType.stages(ViewType.ACTIVE_ONLY), MAX_RESULTS + 1, 0
        )
        t3 = time.perf_counter()
        _runs(snap, index, tail, rids[:MAX_RESULTS])
        t4 = time.perf_counter()
        for key, (a, b) in zip(parts, ((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
            parts[key].append((b - a) * 1000)
    return {k: statistics.median(v[1:]) for k, v in parts.items()}


def first_search_in_new_process(root: str, exp: str, **env: str) -> float:
    """Milliseconds of the first ``search_runs`` of a fresh interpreter on the store (imports and
    client creation excluded): what a notebook or a server worker pays once after it starts."""
    import subprocess

    code = (
        "import sys, time, evtrack\n"
        "c = evtrack.EvtrackClient(sys.argv[1])\n"
        "t = time.perf_counter(); c.search_runs([sys.argv[2]], '', max_results=1)\n"
        "print((time.perf_counter() - t) * 1000)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, root, exp],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=os.path.dirname(os.path.abspath(__file__)),  # not a checkout's root: PYTHONPATH picks the evtrack
    )
    return float(done.stdout.strip().splitlines()[-1])


def profile(fn: Callable[[], Any], repeats: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeats):
        fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(12)
    return out.getvalue()


def have_mlflow() -> str | None:
    """None when MLflow's sqlite store is usable here, else why not."""
    try:
        import alembic  # noqa: F401
        import mlflow.tracking  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        return f"MLflow's sqlite store is not importable ({exc}); pip install mlflow-skinny sqlalchemy alembic"
    return None


# -- main -------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small smoke run (300 and 3,000 runs, 20,000 points)")
    ap.add_argument("--sizes", default=None, help="comma-separated run counts (default 2000,100000)")
    ap.add_argument("--history-points", type=int, default=None, help="points of the history metric (1,000,000)")
    ap.add_argument("--mlflow-max", type=int, default=2000, help="largest run count logged to MLflow (2,000)")
    ap.add_argument(
        "--mlflow-history",
        type=int,
        default=0,
        metavar="POINTS",
        help="also log a history metric of POINTS points to MLflow (slow: ~1 s per 1,000 points)",
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--tail", type=int, default=5, help="runs tagged after compaction, so searches fold a small tail (5)"
    )
    ap.add_argument("--profile", action="store_true", help="cProfile of the slowest search at the largest size")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --dir: reuse the stores a previous run left there (same sizes and points)",
    )
    args = ap.parse_args()

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([300, 3000] if args.quick else [2000, 100_000])
    points = args.history_points if args.history_points is not None else (20_000 if args.quick else 1_000_000)
    small = min(sizes)
    if args.reuse and not args.dir:
        ap.error("--reuse needs --dir")
    work = args.dir or tempfile.mkdtemp(prefix="bench-query-")
    os.environ.setdefault("EVTRACK_SPOOL_DIR", os.path.join(work, "spool"))
    os.environ.setdefault("EVTRACK_CACHE_DIR", os.path.join(work, "cache"))
    report = Report("bench_query: search_runs and get_metric_history, evtrack vs MLflow's sqlite store")
    why_no_mlflow = have_mlflow()
    if why_no_mlflow:
        report.note(f"MLflow skipped: {why_no_mlflow}")
    report.note(
        f"work directory {work}; sizes {sizes}; history {points:,} points; warm cache, median of "
        f"{args.repeats} after one warm-up run; max_results={MAX_RESULTS}"
    )
    largest = max(sizes)
    results: list[Measured] = []
    slowest: tuple[float, Any] | None = None
    history: dict[str, float] = {}
    try:
        for n in sizes:
            print(f"\n-- {n:,} runs", flush=True)
            specs = run_specs(n)
            with_history = points if n == largest else 0
            ev_root = os.path.join(work, f"evtrack-{n}")
            if not args.reuse and os.path.exists(ev_root):
                shutil.rmtree(ev_root)
            ev_client, ev_exp, ev_hist, ev_ingest = ingest_evtrack(ev_root, specs, with_history)
            m = Measured(n)
            report.extra[f"evtrack_ingest_compact_s_{n}"] = ev_ingest
            if args.tail:  # a few events after the compaction: searches then fold a tail too
                page = ev_client.search_runs([ev_exp], "", max_results=args.tail)
                for run in page:
                    ev_client.set_tag(run.info.run_id, "bench.tail", "1")
                ev_client.flush()
            t = time.perf_counter()
            ev_client.search_runs([ev_exp], "", max_results=1)
            report.note(
                f"{n:,} runs: evtrack's first query (builds the snapshot) took "
                f"{(time.perf_counter() - t) * 1000:,.0f} ms"
            )
            cold = first_search_in_new_process(ev_root, ev_exp)
            in_memory = first_search_in_new_process(ev_root, ev_exp, EVTRACK_SNAPSHOT_MIN_RUNS=str(10**12))
            report.extra[f"evtrack_first_search_new_process_ms_{n}"] = cold
            report.extra[f"evtrack_first_search_new_process_in_memory_ms_{n}"] = in_memory
            print(f"  evtrack first search in a new process {cold:8.1f} ms", flush=True)
            print(
                f"  ... with the index built in memory   {in_memory:8.1f} ms "
                f"(no snapshot file kept: {in_memory / cold:.1f}x slower)",
                flush=True,
            )
            for label, f, order in SEARCHES:
                ms, runs = warm_median_ms(search_fn(ev_client, ev_exp, f, order), args.repeats)
                m.evtrack[label] = ms
                m.counts[label] = len(runs)
                print(f"  evtrack {label:<22} {ms:8.1f} ms  ({len(runs)} runs)", flush=True)
                if n == largest and (slowest is None or ms > slowest[0]):
                    slowest = (ms, (ev_client, ev_exp, f, order, label))
            m.after_write["evtrack"] = after_write_ms(ev_client, ev_exp, max(args.repeats, 10))
            print(f"  evtrack {SEARCHES[1][0]:<22} {m.after_write['evtrack']:8.1f} ms  after each write", flush=True)
            if ev_hist:
                ms, hist = warm_median_ms(lambda: ev_client.get_metric_history(ev_hist, HISTORY_KEY), args.repeats)
                assert len(hist) == points, len(hist)
                history["evtrack"] = ms
                print(f"  evtrack get_metric_history {points:,} points {ms:8.1f} ms", flush=True)
            mlflow_history_points = args.mlflow_history if n == small else 0
            if not why_no_mlflow and n <= args.mlflow_max:
                ml_root = os.path.join(work, f"mlflow-{n}")
                if not args.reuse and os.path.exists(ml_root):
                    shutil.rmtree(ml_root)
                ml_client, ml_exp, ml_hist, ml_ingest = ingest_mlflow(ml_root, specs, mlflow_history_points)
                report.extra[f"mlflow_ingest_s_{n}"] = ml_ingest
                for label, f, order in SEARCHES:
                    ms, runs = warm_median_ms(search_fn(ml_client, ml_exp, f, order), args.repeats)
                    m.mlflow[label] = ms
                    if len(runs) != m.counts[label]:
                        report.note(f"{n:,} runs, {label}: MLflow returned {len(runs)} runs, evtrack {m.counts[label]}")
                    print(f"  mlflow  {label:<22} {ms:8.1f} ms  ({len(runs)} runs)", flush=True)
                m.after_write["mlflow"] = after_write_ms(ml_client, ml_exp, max(args.repeats, 10))
                print(f"  mlflow  {SEARCHES[1][0]:<22} {m.after_write['mlflow']:8.1f} ms  after each write", flush=True)
                if ml_hist:
                    ms, hist = warm_median_ms(lambda: ml_client.get_metric_history(ml_hist, HISTORY_KEY), args.repeats)
                    history["mlflow"] = ms
                    print(f"  mlflow  get_metric_history {mlflow_history_points:,} points {ms:8.1f} ms", flush=True)
            elif not why_no_mlflow:
                report.note(
                    f"MLflow not run at {n:,} runs: logging them through its client takes too long "
                    f"(--mlflow-max {args.mlflow_max})"
                )
            results.append(m)
            if n == largest and slowest is not None:
                _, (c, e, f, order, label) = slowest
                parts = breakdown(c, e, f, order, args.repeats)
                report.extra["slowest_search_breakdown_ms"] = {"search": label, "runs": n, **parts}
                print(
                    f"  breakdown of the slowest search ({label}): "
                    + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items()),
                    flush=True,
                )
                if args.profile:
                    print(f"\n-- cProfile of '{label}' on {n:,} runs ({args.repeats} calls)")
                    print(profile(search_fn(c, e, f, order), args.repeats))
    finally:
        from evtrack.read import backend

        for key in [k for k in backend._backends if k.startswith(os.path.abspath(work))]:
            backend._backends.pop(key).writer.close()
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)

    for m in results:
        big = m.n >= 100_000
        for label, _, _ in SEARCHES:
            base = m.mlflow.get(label)
            report.add(
                f"search '{label}' @ {m.n:,} runs",
                m.evtrack[label],
                "ms",
                baseline=base,
                baseline_name="MLflow sqlite" if base is not None else "",
                higher_is_better=False,
                target="< 50" if big else "",
            )
        if "evtrack" in m.after_write:
            base = m.after_write.get("mlflow")
            report.add(
                f"search '{SEARCHES[1][0]}' right after a write @ {m.n:,} runs",
                m.after_write["evtrack"],
                "ms",
                baseline=base,
                baseline_name="MLflow sqlite" if base is not None else "",
                higher_is_better=False,
                note="each search follows a tag set and flushed: a new snapshot every time",
            )
        if m.mlflow and not big:
            for label, _, _ in SEARCHES:
                report.add(
                    f"speed-up vs MLflow, '{label}' @ {m.n:,} runs",
                    m.mlflow[label] / m.evtrack[label],
                    "x",
                    target=">= 10",
                )
    if "evtrack" in history:
        same = history.get("mlflow") is not None and args.mlflow_history == points
        report.add(
            f"get_metric_history, {points:,} points",
            history["evtrack"],
            "ms",
            baseline=history["mlflow"] if same else None,
            baseline_name="MLflow sqlite" if same else "",
            higher_is_better=False,
            target="< 200",
            note="" if same else "MLflow baseline on the same points not measured (--mlflow-history N)",
        )
    if "mlflow" in history and args.mlflow_history != points:
        report.add(
            f"MLflow get_metric_history, {args.mlflow_history:,} points",
            history["mlflow"],
            "ms",
            higher_is_better=False,
            note="MLflow's own figure on fewer points (logging 1,000,000 "
            "points through its client takes too long); for scale only",
        )
    if args.quick:
        report.note(
            "--quick: a smoke run on small sizes; the targets are for 2,000 / 100,000 runs and 1,000,000 points"
        )
    report.print()
    report.save(args.json)


if __name__ == "__main__":
    main()
