"""Write-path benchmark: evtrack against MLflow's sqlite store, in one run on one machine.

Workloads (issue 2, "Must show"):

  (a) a loop of 20,000 ``log_metric`` calls in one run (calls/s of the loop, and
      including the final flush to the store);
  (b) 20 batches of 1,000 metrics (``log_metrics``, MLflow's ``log_batch`` path);
  (c) 2,000 runs, each with 5 params, 3 metrics and 2 tags (seconds, including
      the final flush to the local store);
  (d) ``import evtrack`` in a fresh process (median of 5) against ``import mlflow``;
  and the S3 requests per 10,000 ``log_metric`` calls logged within one flush
      interval, against moto's threaded S3 server on 127.0.0.1.

Every workload runs in a fresh child process (same interpreter), so neither
library's state or imports leak into the other's figures. MLflow runs only when
``import mlflow`` works (full mlflow: the sqlite store needs SQLAlchemy/alembic);
otherwise its column is skipped with a note. No timing is asserted: the script
prints figures, ratios and targets, and exits 0.

Usage::

    python benchmarks/bench_logging.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MotoS3, Report, have_moto, run_child  # noqa: E402

FULL = {"a": 20_000, "b": 20, "c": 2_000, "imports": 5, "s3": 10_000, "mlflow_a": 2_000, "mlflow_c": 200}
QUICK = {"a": 5_000, "b": 5, "c": 200, "imports": 3, "s3": 10_000, "mlflow_a": 300, "mlflow_c": 30}
BATCH = 1_000
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GIT_PYTHON_REFRESH": "quiet",
    "PYTHONWARNINGS": "ignore",
}


# -- workers: each runs in its own process and prints one JSON line ----------------------


def _lib(system: str, workdir: str):
    """Import and point the library at a fresh store in ``workdir``; returns the module."""
    if system == "evtrack":
        os.environ["EVTRACK_SPOOL_DIR"] = os.path.join(workdir, "spool")
        os.environ["EVTRACK_CACHE_DIR"] = os.path.join(workdir, "cache")
        import evtrack as lib

        lib.set_tracking_uri(os.path.join(workdir, "store"))
    else:
        import logging

        import mlflow as lib

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)
        lib.set_tracking_uri(f"sqlite:///{os.path.join(workdir, 'mlflow.db')}")
    lib.set_experiment("bench")  # creates the store/db: not timed
    return lib


def _flush(system: str, lib) -> None:
    if system == "evtrack":
        result = lib.flush()
        assert result.durable, result


def work_metric_loop(system: str, workdir: str, n: int) -> dict:
    lib = _lib(system, workdir)
    run = lib.start_run()
    log_metric = lib.log_metric
    t0 = time.perf_counter()
    for i in range(n):
        log_metric("loss", 1.0 / (i + 1), step=i)
    t1 = time.perf_counter()
    _flush(system, lib)
    t2 = time.perf_counter()
    lib.end_run()
    _flush(system, lib)
    return {"calls": n, "loop_s": t1 - t0, "total_s": t2 - t0, "run_id": run.info.run_id}


def work_batches(system: str, workdir: str, n: int) -> dict:
    lib = _lib(system, workdir)
    lib.start_run()
    batches = [{f"m{j:04d}": float(i * BATCH + j) for j in range(BATCH)} for i in range(n)]
    t0 = time.perf_counter()
    for i, metrics in enumerate(batches):
        lib.log_metrics(metrics, step=i)
    t1 = time.perf_counter()
    _flush(system, lib)
    t2 = time.perf_counter()
    lib.end_run()
    return {"batches": n, "metrics": n * BATCH, "loop_s": t1 - t0, "total_s": t2 - t0}


def work_runs(system: str, workdir: str, n: int) -> dict:
    lib = _lib(system, workdir)
    params = {f"p{j}": f"value-{j}" for j in range(5)}
    t0 = time.perf_counter()
    for i in range(n):
        with lib.start_run(run_name=f"run-{i}"):
            lib.log_params(params)
            lib.log_metric("rmse", 7.1 + i, step=0)
            lib.log_metric("r2", 0.4, step=0)
            lib.log_metric("mae", 3.2, step=0)
            lib.set_tags({"developer": "bench", "model": f"lasso-{i % 7}"})
    t1 = time.perf_counter()
    _flush(system, lib)
    t2 = time.perf_counter()
    return {"runs": n, "loop_s": t1 - t0, "total_s": t2 - t0}


def work_s3_requests(workdir: str, n: int) -> dict:
    """Count the S3 requests evtrack sends for ``n`` metric calls logged within one flush interval."""
    from collections import Counter

    with MotoS3("bench-logging"):
        os.environ["EVTRACK_SPOOL_DIR"] = os.path.join(workdir, "spool")
        import evtrack
        from evtrack.read.backend import get_backend

        evtrack.set_tracking_uri("s3://bench-logging/tracking")
        evtrack.set_experiment("bench")
        run = evtrack.start_run()
        evtrack.log_metric("warmup", 0.0)
        assert evtrack.flush().durable
        client = get_backend().store._client  # the S3Store's boto3 client
        counts: Counter[str] = Counter()

        def count(request, **_kwargs) -> None:
            counts[request.method] += 1

        client.meta.events.register("before-send.s3", count)
        interval = get_backend().writer.flush_interval
        t0 = time.perf_counter()
        for i in range(n):
            evtrack.log_metric("loss", 1.0 / (i + 1), step=i)
        t1 = time.perf_counter()
        assert evtrack.flush().durable
        t2 = time.perf_counter()
        during = dict(counts)
        client.meta.events.unregister("before-send.s3", count)
        evtrack.end_run()
        evtrack.flush()
    return {
        "calls": n,
        "requests": during,
        "loop_s": t1 - t0,
        "total_s": t2 - t0,
        "flush_interval_s": interval,
        "run_id": run.info.run_id,
    }


def worker_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", required=True)
    p.add_argument("--system", default="evtrack")
    p.add_argument("--dir", required=True)
    p.add_argument("--n", type=int, required=True)
    a = p.parse_args(argv)
    if a.worker == "a":
        out = work_metric_loop(a.system, a.dir, a.n)
    elif a.worker == "b":
        out = work_batches(a.system, a.dir, a.n)
    elif a.worker == "c":
        out = work_runs(a.system, a.dir, a.n)
    elif a.worker == "s3":
        out = work_s3_requests(a.dir, a.n)
    else:
        raise SystemExit(f"unknown worker {a.worker}")
    sys.stdout.flush()
    print(json.dumps(out))


# -- driver ---------------------------------------------------------------------------


def child(worker: str, system: str, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-{worker}-") as d:
        return run_child(
            [os.path.abspath(__file__), "--worker", worker, "--system", system, "--dir", d, "--n", str(n)],
            env=QUIET_ENV,
        )


def import_seconds(module: str, repeats: int, pycache: str, compile_each_time: bool = False) -> float:
    """Median seconds of ``import module`` in fresh processes.

    Bytecode goes to ``pycache`` (``PYTHONPYCACHEPREFIX``), never into the work tree.
    By default one untimed import fills it first, as an installed package has its
    ``.pyc`` files; ``compile_each_time`` instead compiles every module on every run.
    """
    code = f"import time;t=time.perf_counter();import {module};print(time.perf_counter()-t)"
    env = {**os.environ, **QUIET_ENV, "PYTHONPYCACHEPREFIX": pycache}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if compile_each_time:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, check=True, env=env)
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def mlflow_available() -> str | None:
    """The installed MLflow version when its sqlite store can run here, else None."""
    code = "import mlflow, sqlalchemy, alembic; print(mlflow.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **QUIET_ENV})
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    p.add_argument("--no-mlflow", action="store_true", help="skip the MLflow baseline")
    p.add_argument("--no-s3", action="store_true", help="skip the S3 request count")
    args = p.parse_args()
    size = QUICK if args.quick else FULL
    report = Report("bench_logging: evtrack vs MLflow sqlite store" + (" (--quick)" if args.quick else ""))

    mlflow_version = None if args.no_mlflow else mlflow_available()
    if mlflow_version is None:
        report.note(
            "MLflow baseline skipped: `import mlflow` (with sqlalchemy+alembic for the sqlite "
            "store) failed in this interpreter"
            if not args.no_mlflow
            else "MLflow baseline skipped (--no-mlflow)"
        )
    else:
        report.note(f"baseline: mlflow {mlflow_version}, tracking URI sqlite:///<tmp>/mlflow.db")

    def both(worker: str, n: int, n_mlflow: int | None = None) -> tuple[dict, dict | None]:
        print(f"running ({worker}) evtrack n={n} ...", flush=True)
        ev = child(worker, "evtrack", n)
        ml = None
        if mlflow_version:
            print(f"running ({worker}) mlflow n={n_mlflow or n} ...", flush=True)
            ml = child(worker, "mlflow", n_mlflow or n)
        return ev, ml

    # (a) log_metric loop
    n = size["a"]
    ev, ml = both("a", n, size["mlflow_a"])
    scaled = ml is not None and ml["calls"] != n
    mnote = f"MLflow timed on {ml['calls']:,} calls (it is slow) and reported as a rate" if scaled else ""
    report.add(
        f"(a) {n:,} log_metric: loop",
        n / ev["loop_s"],
        "calls/s",
        ml and ml["calls"] / ml["loop_s"],
        "mlflow",
        target=">= 200000",
        note=mnote,
    )
    report.add(
        f"(a) {n:,} log_metric: incl. final flush",
        n / ev["total_s"],
        "calls/s",
        ml and ml["calls"] / ml["total_s"],
        "mlflow",
        target=">= 200000",
    )
    report.add(
        f"(a) {n:,} log_metric: seconds incl. flush",
        ev["total_s"],
        "s",
        ml and ml["total_s"] * n / ml["calls"],
        "mlflow",
        higher_is_better=False,
        note=f"MLflow seconds scaled x{n / ml['calls']:.0f} from {ml['calls']:,} calls" if scaled else "",
    )

    # (b) batches of 1,000 metrics
    nb = size["b"]
    ev, ml = both("b", nb)
    report.add(
        f"(b) {nb} batches x {BATCH:,} metrics, incl. flush",
        ev["metrics"] / ev["total_s"],
        "metrics/s",
        ml and ml["metrics"] / ml["total_s"],
        "mlflow",
    )
    report.add(
        f"(b) {nb} batches x {BATCH:,} metrics: seconds",
        ev["total_s"],
        "s",
        ml and ml["total_s"],
        "mlflow",
        higher_is_better=False,
    )

    # (c) many small runs
    nr = size["c"]
    ev, ml = both("c", nr, size["mlflow_c"])
    scaled = ml is not None and ml["runs"] != nr
    report.add(
        f"(c) {nr:,} runs x (5 params, 3 metrics, 2 tags), incl. flush",
        ev["total_s"],
        "s",
        ml and ml["total_s"] * nr / ml["runs"],
        "mlflow",
        higher_is_better=False,
        target="< 2",
        note=(
            f"MLflow timed on {ml['runs']:,} runs ({ml['total_s']:.1f} s) and scaled x{nr / ml['runs']:.0f}"
            if scaled
            else ""
        ),
    )
    report.add("(c) runs per second", nr / ev["total_s"], "runs/s", ml and ml["runs"] / ml["total_s"], "mlflow")

    # (d) import time in a fresh process
    reps = size["imports"]
    print(f"running (d) import timings x{reps} ...", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-pyc-") as warm,
        tempfile.TemporaryDirectory(prefix="bench-nopyc-") as cold,
    ):
        ev_import = import_seconds("evtrack", reps, warm)
        ml_import = import_seconds("mlflow", reps, warm) if mlflow_version else None
        ev_compile = import_seconds("evtrack", reps, cold, compile_each_time=True)
    report.add(
        f"(d) import time (median of {reps})",
        ev_import,
        "s",
        ml_import,
        "mlflow",
        higher_is_better=False,
        target="< 0.3",
        note="fresh `python -c` per timing, bytecode cache filled by one untimed import first (as after pip install)",
    )
    report.add(
        "(d) import evtrack, compiling every module",
        ev_compile,
        "s",
        higher_is_better=False,
        note="no bytecode cache (PYTHONDONTWRITEBYTECODE=1 and an empty PYTHONPYCACHEPREFIX): "
        "what a read-only or freshly edited tree costs",
    )

    # S3 requests per 10,000 metric calls
    if args.no_s3:
        report.note("S3 request count skipped (--no-s3)")
    elif not have_moto():
        report.note("S3 request count skipped: moto[server] is not installed (pip install 'moto[server]')")
    else:
        n3 = size["s3"]
        print(f"running S3 request count, {n3:,} calls against moto ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-s3-") as d:
            s3 = run_child([os.path.abspath(__file__), "--worker", "s3", "--dir", d, "--n", str(n3)], env=QUIET_ENV)
        reqs = s3["requests"]
        puts = reqs.get("PUT", 0)
        within = s3["loop_s"] < s3["flush_interval_s"]
        report.add(
            f"S3 PUTs per {n3:,} log_metric calls",
            puts * 10_000 / n3,
            "PUTs",
            target="<= 2",
            higher_is_better=False,
            note=(
                f"all requests while logging + flush: {dict(sorted(reqs.items()))}; "
                f"loop took {s3['loop_s'] * 1000:.0f} ms "
                f"({'within' if within else 'LONGER than'} one {s3['flush_interval_s']:g} s flush "
                "interval); moto ThreadedMotoServer on 127.0.0.1, counted with a boto3 "
                "before-send hook on the S3Store's client"
            ),
        )
        report.add(
            f"S3 requests (all methods) per {n3:,} calls",
            sum(reqs.values()) * 10_000 / n3,
            "requests",
            higher_is_better=False,
        )

    report.print()
    report.save(args.json)


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker_main(sys.argv[1:])
    else:
        main()
