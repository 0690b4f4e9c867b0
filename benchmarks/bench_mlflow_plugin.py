"""MLflow's own package on evtrack's store (the plugin, issue 13) against MLflow's sqlite store.

Figures, each measured in this run on both stores through MLflow's own API (``import mlflow``):

  (a) ``mlflow.log_metric`` in a loop (N calls into one run), per call; beside it the plugin
      store's own ``log_metric`` called directly, so the rest of a call is MLflow's code
      (its fluent API, validation, entity building) and not the store's;
  (b) ``MlflowClient.log_batch`` of 1,000 metrics, per batch, and the store's own ``log_batch``
      of the same batch (the difference is MLflow's client code, the same for both stores);
  (c) ``mlflow.search_runs`` (pandas) of 10,000 runs (5 params, 3 metrics, 2 tags each),
      no filter and ``metrics.rmse < 0.5`` ordered by ``metrics.rmse``, warm median; beside it
      ``MlflowClient.search_runs`` over all the pages (the store's part: ``mlflow.search_runs``
      adds MLflow's own DataFrame building, two ``pandas.to_datetime`` calls per run);
  (d) ``mlflow server --backend-store-uri evtrack:///…`` on 100,000 runs: ``runs/search``
      over HTTP (100 and 1,000 results, and a filtered, ordered page), warm median.

Targets: (a), (b) >= 30x MLflow's sqlite store; (c) >= 10x; (d) <= 100 ms warm.

The sqlite store gets its runs through MLflow's client (``create_run`` + ``log_batch`` +
``set_terminated``), which takes minutes for 10,000 runs (a progress line shows the rate);
the evtrack stores are generated as ``bench_query.py`` generates them (inbox segments,
compacted). No timing is asserted; the script exits 0.

Usage::

    python benchmarks/bench_mlflow_plugin.py [--quick] [--calls 5000] [--search-runs 10000]
                                             [--server-runs 100000] [--json out.json] [--dir DIR]
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
import urllib.request
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Report, free_port  # noqa: E402
from bench_query import ingest_evtrack, ingest_mlflow, run_specs  # noqa: E402

FILTER, ORDER = "metrics.rmse < 0.5", ["metrics.rmse"]


def warm_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def forget_mlflow() -> None:
    import mlflow
    from mlflow.tracking import fluent

    while mlflow.active_run():
        mlflow.end_run()
    fluent._active_experiment_id = None


# -- (a), (b): the write path -------------------------------------------------------------------


def logging_figures(uri: str, calls: int, batches: int, registry_uri: str | None = None) -> dict[str, float]:
    """Per-call µs of mlflow.log_metric, the store's own log_metric, and ms per 1,000-metric log_batch."""
    import mlflow
    from mlflow.entities import Metric

    forget_mlflow()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry_uri or "")
    client = mlflow.MlflowClient()
    exp = client.create_experiment(f"bench-{time.time_ns()}", artifact_location=None)
    out: dict[str, float] = {}
    with mlflow.start_run(experiment_id=exp) as run:
        rid = run.info.run_id
        mlflow.log_metric("warm", 0.0)
        t = time.perf_counter()
        for i in range(calls):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        out["log_metric_us"] = (time.perf_counter() - t) / calls * 1e6
        store = client._tracking_client.store
        now = int(time.time() * 1000)
        t = time.perf_counter()
        for i in range(calls):
            store.log_metric(rid, Metric("direct", 1.0 / (i + 1), now, i))
        out["store_log_metric_us"] = (time.perf_counter() - t) / calls * 1e6
        t = time.perf_counter()
        for b in range(batches):
            client.log_batch(rid, metrics=[Metric("batch", float(i), now, b * 1000 + i) for i in range(1000)])
        out["log_batch_ms"] = (time.perf_counter() - t) / batches * 1000
        ready = [[Metric("store", float(i), now, b * 1000 + i) for i in range(1000)] for b in range(batches)]
        t = time.perf_counter()
        for batch in ready:
            store.log_batch(rid, batch, [], [])
        out["store_log_batch_ms"] = (time.perf_counter() - t) / batches * 1000
    t = time.perf_counter()
    mlflow.flush_async_logging()
    out["flush_ms"] = (time.perf_counter() - t) * 1000
    return out


# -- (c): mlflow.search_runs on N runs ------------------------------------------------------------


def search_figures(uri: str, exp: str, repeats: int) -> dict[str, float]:
    import mlflow

    forget_mlflow()
    mlflow.set_tracking_uri(uri)
    plain = warm_ms(lambda: mlflow.search_runs([exp], max_results=100_000), repeats)

    def every_page() -> int:  # the store's part: MlflowClient.search_runs, pages of 1,000, no pandas
        client, token, count = mlflow.MlflowClient(), None, 0
        while True:
            page = client.search_runs([exp], max_results=1000, page_token=token)
            count += len(page)
            token = page.token
            if not token:
                return count

    client_ms = warm_ms(every_page, repeats)
    rows = len(mlflow.search_runs([exp], max_results=100_000))
    filtered = warm_ms(lambda: mlflow.search_runs([exp], FILTER, order_by=ORDER, max_results=100_000), repeats)
    return {"all_ms": plain, "filtered_ms": filtered, "client_ms": client_ms, "rows": rows}


# -- (d): mlflow server on 100,000 runs -------------------------------------------------------------


def server_figures(store_dir: str, exp: str, work: str, repeats: int) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(work, "mlflow-server.log"), "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
        + ["--backend-store-uri", f"evtrack://{store_dir}", "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false"},
        cwd=work,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mlflow server did not start; see mlflow-server.log") from None
                time.sleep(0.3)

        def search(body: dict[str, Any]) -> Callable[[], int]:
            data = json.dumps({"experiment_ids": [exp], **body}).encode()

            def call() -> int:
                req = urllib.request.Request(
                    f"{url}/api/2.0/mlflow/runs/search", data, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(req, timeout=120) as response:
                    return len(json.loads(response.read()).get("runs", []))

            return call

        t = time.perf_counter()
        search({"max_results": 100})()
        first = (time.perf_counter() - t) * 1000
        return {
            "first_ms": first,
            "page100_ms": warm_ms(search({"max_results": 100}), repeats),
            "page1000_ms": warm_ms(search({"max_results": 1000}), repeats),
            "filtered_ms": warm_ms(search({"max_results": 100, "filter": FILTER, "order_by": ORDER}), repeats),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a minute or two")
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--search-runs", type=int, default=10_000)
    ap.add_argument("--server-runs", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--dir", default=None, help="work directory (kept); a temporary one by default")
    args = ap.parse_args()
    if args.quick:
        args.calls, args.batches, args.search_runs, args.server_runs, args.repeats = 1000, 5, 500, 5000, 3
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    work = args.dir or tempfile.mkdtemp(prefix="bench-mlflow-plugin-")
    os.makedirs(work, exist_ok=True)
    os.environ.setdefault("EVTRACK_SPOOL_DIR", os.path.join(work, "spool"))
    report = Report("MLflow's API on the evtrack plugin store vs MLflow's sqlite store")
    sqlite_uri = f"sqlite:///{os.path.join(work, 'mlflow-logging.db')}"
    evtrack_uri = f"evtrack://{os.path.join(work, 'evtrack-logging')}"
    try:
        print("(a, b) logging ...", flush=True)
        ours, theirs = logging_figures(evtrack_uri, args.calls, args.batches), None
        theirs = logging_figures(sqlite_uri, max(200, args.calls // 10), max(2, args.batches // 4))
        report.add(
            "mlflow.log_metric per call", ours["log_metric_us"], "µs", theirs["log_metric_us"], "sqlite",
            higher_is_better=False, target=">= 30x",
            note=f"the plugin store's own log_metric takes {ours['store_log_metric_us']:.1f} µs of it; the rest "
            "is MLflow's fluent API and entity code",
        )  # fmt: skip
        report.add(
            "MlflowClient.log_batch of 1,000 metrics", ours["log_batch_ms"], "ms", theirs["log_batch_ms"], "sqlite",
            higher_is_better=False, target=">= 30x",
        )  # fmt: skip
        report.add(
            "the store's own log_batch of 1,000 metrics", ours["store_log_batch_ms"], "ms",
            theirs["store_log_batch_ms"], "sqlite", higher_is_better=False,
            note="MlflowClient.log_batch minus this is MLflow's own code (it rebuilds every Metric with the "
            "active model id), the same for both stores: it bounds the ratio of the full call",
        )  # fmt: skip
        ours_r = logging_figures(evtrack_uri, args.calls, 1, registry_uri=evtrack_uri)
        theirs_r = logging_figures(sqlite_uri, max(200, args.calls // 10), 1, registry_uri=sqlite_uri)
        report.add(
            "mlflow.log_metric per call, registry URI set", ours_r["log_metric_us"], "µs", theirs_r["log_metric_us"],
            "sqlite", higher_is_better=False, target=">= 30x",
            note="with mlflow.set_registry_uri (or MLFLOW_REGISTRY_URI) MLflow skips the Spark-session probe "
            "(a failed `import pyspark`) it makes twice per call otherwise",
        )  # fmt: skip
        report.note(f"flush of everything queued (mlflow.flush_async_logging) on evtrack: {ours['flush_ms']:.1f} ms")

        print(f"(c) mlflow.search_runs on {args.search_runs:,} runs: building both stores ...", flush=True)
        specs = run_specs(args.search_runs)
        ev_root = os.path.join(work, "evtrack-search")
        _, ev_exp, _, _ = ingest_evtrack(ev_root, specs, 0)
        _, ml_exp, _, ml_seconds = ingest_mlflow(os.path.join(work, "mlflow-search"), specs, 0)
        ml_uri = f"sqlite:///{os.path.join(work, 'mlflow-search', 'mlflow.db')}"
        ours_s = search_figures(f"evtrack://{ev_root}", ev_exp, args.repeats)
        theirs_s = search_figures(ml_uri, ml_exp, args.repeats)
        assert ours_s["rows"] == theirs_s["rows"] == args.search_runs, (ours_s, theirs_s)
        report.add(
            f"mlflow.search_runs, {args.search_runs:,} runs, no filter", ours_s["all_ms"], "ms",
            theirs_s["all_ms"], "sqlite", higher_is_better=False, target=">= 10x",
        )  # fmt: skip
        report.add(
            f"mlflow.search_runs, {args.search_runs:,} runs, {FILTER} by rmse", ours_s["filtered_ms"], "ms",
            theirs_s["filtered_ms"], "sqlite", higher_is_better=False, target=">= 10x",
        )  # fmt: skip
        report.add(
            f"MlflowClient.search_runs, {args.search_runs:,} runs in pages of 1,000", ours_s["client_ms"], "ms",
            theirs_s["client_ms"], "sqlite", higher_is_better=False,
            note="the store's part of mlflow.search_runs; the rest of it is MLflow's DataFrame building "
            "(two pandas.to_datetime calls per run)",
        )  # fmt: skip
        if ml_seconds:  # 0 when --dir held the stores of an earlier run
            report.note(f"MLflow's sqlite store took {ml_seconds:.0f} s to log the {args.search_runs:,} runs")

        print(f"(d) mlflow server on {args.server_runs:,} runs ...", flush=True)
        srv_root = os.path.join(work, "evtrack-server")
        _, srv_exp, _, _ = ingest_evtrack(srv_root, run_specs(args.server_runs, seed=9), 0)
        srv = server_figures(srv_root, srv_exp, work, args.repeats)
        n = f"{args.server_runs:,} runs"
        report.add(f"mlflow server runs/search, {n}, 100 results", srv["page100_ms"], "ms", target="<= 100",
                   higher_is_better=False, note=f"first request after start {srv['first_ms']:.0f} ms")  # fmt: skip
        report.add(f"mlflow server runs/search, {n}, 1,000 results", srv["page1000_ms"], "ms",
                   higher_is_better=False)  # fmt: skip
        report.add(f"mlflow server runs/search, {n}, {FILTER} by rmse", srv["filtered_ms"], "ms", target="<= 100",
                   higher_is_better=False)  # fmt: skip
    finally:
        report.print()
        report.save(args.json)
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
