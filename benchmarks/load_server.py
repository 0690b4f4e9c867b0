"""Load test of ``evtrack server``: K concurrent MLflow clients, a searcher and a deleter, for a
fixed time, then an exact account of every acknowledged metric point.

Each client is its own process with MLflow's own ``MlflowClient`` over HTTP. It creates runs
(5 params and 3 tags in one ``log_batch``), logs ``--batches`` batches of 100 metric points
(4 keys x 25 steps, values a function of run, key and step) and ends each run. A reader process
searches runs all the while; a deleter deletes and restores finished runs. The server compacts
every few seconds (``--compact-every``). With ``--kill``, one worker of a 2-worker server is
SIGKILLed half-way (uvicorn starts a new one) and the account must still hold.

After the clients stop, the store is compacted and read back with ``evtrack.sql``:

* lost      acknowledged points (the request answered 200) missing from the ``metrics`` view;
* doubled   (run, key, step) holding more than one point in the view;
* stored without ack   points of requests that failed but were stored (allowed: a worker can
            store a batch and die before it answers);
* raw retries   events beyond one per point (MLflow's client retries a request whose answer it
            lost); exact duplicates fold to one point, so they never show in the views.

The same clients against ``mlflow server`` on sqlite (``--mlflow``, same workers) give the
baseline of metrics/s. Everything runs on 127.0.0.1; the duration and client count bound it.

Usage::

    python benchmarks/load_server.py [--clients 16] [--duration 60] [--workers 1,2] [--kill]
                                     [--mlflow] [--json out.json] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import REPO_ROOT, Report, free_port  # noqa: E402
from bench_server import MLFLOW_CANDIDATES, ServerProcess  # noqa: E402

KEYS, STEPS = 4, 25  # one batch: 100 points
SQL_TIMEOUT = 3.0  # evtrack server's --sql-timeout in the --sql phase


def value_of(run_id: str, key: int, step: int) -> float:
    return (int(run_id[:6], 16) % 997) + key * 1000 + step / 100


# -- the client processes ---------------------------------------------------------------------


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def _kind(exc: BaseException) -> str:
    text = str(exc)
    for code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "REQUEST_LIMIT_EXCEEDED", "INVALID_STATE"):
        if code in text:
            return code
    return type(exc).__name__


def _wait_until(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


def client_main(
    url: str, experiment_id: str, idx: int, start_at: float, stop_at: float, batches: int, out: str
) -> None:
    _quiet_mlflow()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    _wait_until(start_at)
    acked: list[list[Any]] = []  # [run_id, batch]
    failed: list[list[Any]] = []
    latencies: list[float] = []
    errors: Counter = Counter()
    requests = 0
    n = 0
    while time.time() < stop_at:
        try:
            run = client.create_run(experiment_id, run_name=f"c{idx}-{n}")
            requests += 1
        except Exception as exc:  # noqa: BLE001 - counted by kind
            errors[_kind(exc)] += 1
            continue
        run_id = run.info.run_id
        n += 1
        try:
            client.log_batch(
                run_id,
                params=[Param(f"p{j}", str(idx * 100 + j)) for j in range(5)],
                tags=[RunTag(f"t{j}", f"c{idx}") for j in range(3)],
            )
            requests += 1
        except Exception as exc:  # noqa: BLE001
            errors[_kind(exc)] += 1
        for b in range(batches):
            if time.time() >= stop_at:
                break
            ts = int(time.time() * 1000)
            points = [
                Metric(f"m{k}", value_of(run_id, k, b * STEPS + s), ts, b * STEPS + s)
                for k in range(KEYS)
                for s in range(STEPS)
            ]
            started = time.perf_counter()
            try:
                client.log_batch(run_id, metrics=points)
                latencies.append((time.perf_counter() - started) * 1000)
                acked.append([run_id, b])
            except Exception as exc:  # noqa: BLE001
                errors[_kind(exc)] += 1
                failed.append([run_id, b])
            requests += 1
        try:
            client.set_terminated(run_id)
            requests += 1
        except Exception as exc:  # noqa: BLE001
            errors[_kind(exc)] += 1
    with open(out, "w") as fh:
        json.dump(
            {"acked": acked, "failed": failed, "latencies": latencies, "errors": errors, "requests": requests}, fh
        )


def reader_main(url: str, experiment_id: str, start_at: float, stop_at: float, out: str) -> None:
    _quiet_mlflow()
    from mlflow.tracking import MlflowClient

    client, latencies, errors = MlflowClient(tracking_uri=url), [], Counter()
    _wait_until(start_at)
    while time.time() < stop_at:
        started = time.perf_counter()
        try:
            client.search_runs([experiment_id], "metrics.m0 >= 0", max_results=100, order_by=["metrics.m1 DESC"])
            latencies.append((time.perf_counter() - started) * 1000)
        except Exception as exc:  # noqa: BLE001
            errors[_kind(exc)] += 1
        time.sleep(0.2)
    with open(out, "w") as fh:
        json.dump({"latencies": latencies, "errors": errors}, fh)


def deleter_main(url: str, experiment_id: str, start_at: float, stop_at: float, out: str) -> None:
    _quiet_mlflow()
    from mlflow.tracking import MlflowClient

    client, done, errors = MlflowClient(tracking_uri=url), 0, Counter()
    _wait_until(start_at)
    while time.time() < stop_at:
        time.sleep(1.0)
        try:
            finished = client.search_runs([experiment_id], "attributes.status = 'FINISHED'", max_results=5)
            for run in finished[:1]:
                client.delete_run(run.info.run_id)
                time.sleep(0.2)
                client.restore_run(run.info.run_id)
                done += 1
        except Exception as exc:  # noqa: BLE001
            errors[_kind(exc)] += 1
    with open(out, "w") as fh:
        json.dump({"delete_restore": done, "errors": errors}, fh)


RUNAWAY_SQL = "SELECT count(*) FROM range(1000000000000) a"


def sql_main(url: str, start_at: float, stop_at: float, out: str) -> None:
    """Runaway queries on the SQL page, one after the other: how long each took to be stopped."""
    import httpx

    _wait_until(start_at)
    stopped, statuses = [], Counter()
    with httpx.Client(base_url=url, timeout=120) as http:
        while time.time() < stop_at:
            started = time.perf_counter()
            response = http.get("/sql", params={"q": RUNAWAY_SQL})
            stopped.append(time.perf_counter() - started)
            statuses[str(response.status_code) + (" time limit" if "time limit" in response.text else "")] += 1
    with open(out, "w") as fh:
        json.dump({"seconds": stopped, "statuses": statuses}, fh)


# -- one load phase ---------------------------------------------------------------------------


def _server(kind: str, work: str, workers: int, compact_every: str) -> ServerProcess:
    """The server of one phase (evtrack's stops SQL-page queries at SQL_TIMEOUT)."""
    port = free_port()
    env = {
        "EVTRACK_SPOOL_DIR": os.path.join(work, "spool"),
        "EVTRACK_CACHE_DIR": os.path.join(work, "cache"),
        "EVTRACK_CAPTURE_ENV": "0",
        "PYTHONPATH": REPO_ROOT,
        "MLFLOW_TRACKING_URI": "",
    }
    if kind == "evtrack":
        store = os.path.join(work, "store")
        argv = [sys.executable, "-c", "from evtrack.cli import main; main()", "server", "--backend-store-uri", store]
        argv += ["--port", str(port), "--workers", str(workers), "--compact-every", compact_every]
        argv += ["--sql-timeout", f"{SQL_TIMEOUT:g}s"]
    else:
        exe = os.environ.get("MLFLOW_SERVER_BIN") or next(
            (c for c in MLFLOW_CANDIDATES if os.access(c, os.X_OK)), "mlflow"
        )
        argv = [exe, "server", "--backend-store-uri", f"sqlite:///{os.path.join(work, 'mlflow.db')}"]
        argv += ["--default-artifact-root", os.path.join(work, "mlflow-artifacts"), "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", str(workers)]
    return ServerProcess(f"{kind} server", argv, port, os.path.join(work, f"{kind}-{port}.log"), env)


def _kill_one_worker(server: ServerProcess) -> int | None:
    import psutil

    children = psutil.Process(server.proc.pid).children(recursive=False)
    workers = [c for c in children if "multiprocessing" in " ".join(c.cmdline()) or c.name().startswith("python")]
    if not workers:
        return None
    victim = workers[0].pid
    os.kill(victim, signal.SIGKILL)
    return victim


def run_phase(
    kind: str,
    work: str,
    clients: int,
    duration: float,
    workers: int,
    batches: int,
    kill: bool,
    warmup: float,
    sql: bool = False,
    compact_every: str = "5s",
) -> dict:
    """Load one server for ``duration`` seconds; the clients' results, merged."""
    os.makedirs(work, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    with _server(kind, work, workers, compact_every) as server:
        import httpx

        created = httpx.post(
            server.url + "/api/2.0/mlflow/experiments/create", json={"name": f"load-{kind}"}, timeout=30
        )
        experiment_id = created.json()["experiment_id"]
        start_at = time.time() + warmup  # time for every process to import MLflow first
        stop_at = start_at + duration
        procs, outs = [], []
        for i in range(clients):
            out = os.path.join(work, f"client-{i}.json")
            outs.append(out)
            procs.append(
                ctx.Process(target=client_main, args=(server.url, experiment_id, i, start_at, stop_at, batches, out))
            )
        reader_out, deleter_out = os.path.join(work, "reader.json"), os.path.join(work, "deleter.json")
        procs.append(ctx.Process(target=reader_main, args=(server.url, experiment_id, start_at, stop_at, reader_out)))
        procs.append(ctx.Process(target=deleter_main, args=(server.url, experiment_id, start_at, stop_at, deleter_out)))
        sql_out = os.path.join(work, "sql.json")
        if sql:
            procs.append(ctx.Process(target=sql_main, args=(server.url, start_at, stop_at, sql_out)))
        for p in procs:
            p.start()
        killed = None
        if kill:
            time.sleep(max(0.0, start_at + duration / 2 - time.time()))
            killed = _kill_one_worker(server)
            print(f"  SIGKILL worker {killed} at {duration / 2:.0f} s", flush=True)
        _progress(procs, start_at, stop_at)
        for p in procs:
            p.join(timeout=duration + 120)
        results = [json.load(open(o)) for o in outs if os.path.exists(o)]
        reader = json.load(open(reader_out)) if os.path.exists(reader_out) else {"latencies": [], "errors": {}}
        deleter = json.load(open(deleter_out)) if os.path.exists(deleter_out) else {}
        sql_result = json.load(open(sql_out)) if sql and os.path.exists(sql_out) else None
        elapsed = duration
    merged: dict[str, Any] = {"acked": [], "failed": [], "latencies": [], "errors": Counter(), "requests": 0}
    for r in results:
        merged["acked"] += r["acked"]
        merged["failed"] += r["failed"]
        merged["latencies"] += r["latencies"]
        merged["errors"].update(r["errors"])
        merged["requests"] += r["requests"]
    merged.update(
        reader=reader, deleter=deleter, sql=sql_result, seconds=elapsed, killed=killed, clients_reported=len(results)
    )
    return merged


def _progress(procs: list, start_at: float, stop_at: float) -> None:
    while any(p.is_alive() for p in procs) and time.time() < stop_at + 60:
        now = time.time()
        if now >= start_at:
            done = min(1.0, (now - start_at) / (stop_at - start_at))
            bar = "#" * int(done * 30)
            print(
                f"\r  [{bar:<30}] {done * 100:5.1f}%  {sum(p.is_alive() for p in procs)} processes", end="", flush=True
            )
        time.sleep(1)
    print(flush=True)


def account(store: str, phase: dict) -> dict[str, int]:
    """Compact the store, then compare what the clients were told with what it holds."""
    import evtrack
    from compaction import compact
    from evtrack.store import open_store

    compact(open_store(store))
    evtrack.set_tracking_uri(store)
    # per batch of 100 points (steps b*STEPS .. b*STEPS+STEPS-1, keys m0..m{KEYS-1}): the rows stored
    # and the distinct points among them; one row per batch, not per point (a minute is ~1M points)
    rows = evtrack.sql(
        f"SELECT run_id, step // {STEPS} AS batch, count(*) AS n, count(DISTINCT (key, step)) AS points "
        "FROM metrics GROUP BY ALL"
    ).to_pylist()
    stored = {(r["run_id"], r["batch"]): (r["n"], r["points"]) for r in rows}
    raw = evtrack.sql("SELECT count(*) AS n FROM all_metrics").to_pylist()[0]["n"]
    per_batch = KEYS * STEPS
    acked = {(run, b) for run, b in phase["acked"]}
    failed = {(run, b) for run, b in phase["failed"]}
    return {
        "acknowledged points": len(acked) * per_batch,
        "lost": sum(per_batch - stored.get(batch, (0, 0))[1] for batch in acked),
        "doubled": sum(n - points for n, points in stored.values()),
        "stored without ack": sum(stored[batch][1] for batch in failed if batch in stored),
        "raw retries": raw - sum(points for _, points in stored.values()),
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts of evtrack's server")
    parser.add_argument("--batches", type=int, default=20, help="metric batches of 100 points per run")
    parser.add_argument("--kill", action="store_true", help="also a 2-worker phase with one worker SIGKILLed")
    parser.add_argument("--mlflow", action="store_true", help="the same load on mlflow server (sqlite)")
    parser.add_argument("--sql", action="store_true", help="also a 1-worker phase with runaway SQL-page queries")
    parser.add_argument("--warmup", type=float, default=None, help="seconds for the clients to start (10 + clients)")
    parser.add_argument("--compact-every", default="5s", help="evtrack server's --compact-every (0: no compaction)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args(argv)
    work = args.dir or tempfile.mkdtemp(prefix="evtrack-load-")
    warmup = args.warmup if args.warmup is not None else 10 + args.clients
    report = Report(f"evtrack server under load: {args.clients} MLflow clients for {args.duration:g} s")
    phases = [("evtrack", int(w), False, False) for w in args.workers.split(",") if w]
    if args.kill:
        phases.append(("evtrack", 2, True, False))
    if args.sql:
        phases.append(("evtrack", 1, False, True))
    if args.mlflow:
        phases.append(("mlflow", max([int(w) for w in args.workers.split(",") if w] or [1]), False, False))
    accounts: dict[str, Any] = {}
    mps: dict[str, float] = {}
    for kind, workers, kill, sql in phases:
        label = f"{kind} {workers}w" + (" +kill" if kill else "") + (" +sql" if sql else "")
        print(f"-- {label}", flush=True)
        phase_dir = os.path.join(work, label.replace(" ", "-").replace("+", ""))
        report.extra.setdefault("phases", {})
        phase = run_phase(
            kind, phase_dir, args.clients, args.duration, workers, args.batches, kill, warmup, sql, args.compact_every
        )
        points = len(phase["acked"]) * KEYS * STEPS
        mps[label] = points / phase["seconds"]
        report.add(f"{label}: requests/s", phase["requests"] / phase["seconds"], "req/s")
        report.add(f"{label}: metric points/s", mps[label], "points/s")
        report.add(f"{label}: log-batch p50", percentile(phase["latencies"], 0.5), "ms", higher_is_better=False)
        report.add(
            f"{label}: log-batch p99",
            percentile(phase["latencies"], 0.99),
            "ms",
            higher_is_better=False,
            target="<= 100" if kind == "evtrack" else "",
        )
        report.add(f"{label}: search p99", percentile(phase["reader"]["latencies"], 0.99), "ms", higher_is_better=False)
        errors = dict(phase["errors"]) | {f"search {k}": v for k, v in phase["reader"]["errors"].items()}
        report.note(
            f"{label}: errors by kind {errors or 'none'}; delete/restore cycles {phase['deleter'].get('delete_restore', 0)}"
        )
        if phase["sql"] and phase["sql"]["seconds"]:
            late = max(phase["sql"]["seconds"]) - SQL_TIMEOUT
            report.add(
                f"{label}: runaway SQL stopped after its limit", late, "s", higher_is_better=False, target="<= 1"
            )
            report.note(f"{label}: SQL page answers {dict(phase['sql']['statuses'])}, limit {SQL_TIMEOUT:g} s")
            idle = next((f for f in report.figures if f.name == "evtrack 1w: log-batch p99"), None)
            p99 = next(f for f in report.figures if f.name == f"{label}: log-batch p99")
            if idle is not None and idle.value:
                p99.baseline, p99.baseline_name, p99.target = idle.value, "1w without SQL", ">= 0.5x"
        if kind == "evtrack":
            accounts[label] = account(os.path.join(phase_dir, "store"), phase)
            report.extra["phases"][label] = {"killed": phase["killed"], "errors": errors}
            report.note(f"{label}: account {accounts[label]}")
    for label in mps:  # ratios once the baseline is known
        kind, workers = label.split()[0], label.split()[1]
        base = mps.get(f"mlflow {workers}")
        if kind == "evtrack" and base:
            for fig in report.figures:
                if fig.name == f"{label}: metric points/s":
                    fig.baseline, fig.baseline_name, fig.target = base, f"mlflow {workers}", ">= 30x"
    report.extra["accounts"] = accounts
    report.print()
    report.save(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
