"""Server benchmark: the runs-table page on 100,000 runs, and REST ``runs/log-batch`` throughput.

Figures (issue 7):

  (a) ``GET /experiments/{id}`` of ``evtrack server`` on a compacted store of 100,000 runs
      (5 params, 3 metrics, 2 tags each, built as ``bench_query.py`` builds its store): the
      first load after the server starts, then the warm median; the same for a filtered and
      ordered page (``params.model = 'lasso' and metrics.r2 > 0.3`` by ``metrics.rmse``).
      Baseline: the same search as JSON through the REST API (``runs/search``, 100 results)
      on the same server, i.e. what rendering the page adds.
  (b) ``runs/log-batch`` throughput over HTTP (keep-alive, one client): N requests of 1,000
      metrics each into one run, plus a run with 100 single ``runs/log-metric`` calls, against
      ``evtrack server`` and, when an ``mlflow`` executable with its server dependencies is
      found, against ``mlflow server --backend-store-uri sqlite:///…`` (the baseline).

Both servers are real subprocesses with one worker on 127.0.0.1; evtrack's runs with
``--compact-every 0`` so no background compaction runs while timing. The MLflow executable
is ``$MLFLOW_SERVER_BIN``, else the first of ``<this venv>/bin/mlflow`` and
``/work/mlflow-venv/bin/mlflow`` whose server starts; without one, the baseline is skipped
with a note. No timing is asserted; the script exits 0.

Usage::

    python benchmarks/bench_server.py [--quick] [--runs 100000] [--requests 100]
                                      [--mlflow-requests 20] [--repeats 10] [--json out.json]
                                      [--no-mlflow] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO_ROOT, Report, free_port  # noqa: E402

API = "/api/2.0/mlflow"
PAGE_FILTER = "params.model = 'lasso' and metrics.r2 > 0.3"
PAGE_ORDER = "metrics.rmse ASC"
MLFLOW_CANDIDATES = (os.path.join(os.path.dirname(sys.executable), "mlflow"), "/work/mlflow-venv/bin/mlflow")
BATCH = 1000
SINGLE_CALLS = 100


# -- servers as subprocesses ---------------------------------------------------------------


class ServerProcess:
    """A tracking server started as a subprocess on a free loopback port; stopped on exit."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: str, env: dict[str, str]) -> None:
        self.name, self.argv, self.port, self.log_path, self.env = name, argv, port, log_path, env
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        import httpx

        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=os.path.dirname(self.log_path),
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"{self.name} did not answer /health within 180 s: {self.log_tail()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_tail(self) -> str:
        with open(self.log_path, "rb") as fh:
            return fh.read()[-1500:].decode(errors="replace")


def evtrack_server(store: str, work: str) -> ServerProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "evtrack")
    cmd = [exe] if os.access(exe, os.X_OK) else [sys.executable, "-c", "from evtrack.cli import main; main()"]
    port = free_port()
    argv = [*cmd, "server", "--backend-store-uri", store, "--port", str(port), "--compact-every", "0"]
    env = {
        "EVTRACK_SPOOL_DIR": os.path.join(work, "spool"),
        "EVTRACK_CACHE_DIR": os.path.join(work, "cache"),
        "PYTHONPATH": REPO_ROOT,
    }
    return ServerProcess("evtrack server", argv, port, os.path.join(work, f"evtrack-server-{port}.log"), env)


def mlflow_server(exe: str, work: str) -> ServerProcess:
    port = free_port()
    db = os.path.join(work, f"mlflow-{port}.db")
    argv = [
        exe,
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--default-artifact-root",
        os.path.join(work, "mlflow-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return ServerProcess(
        f"mlflow server ({exe})",
        argv,
        port,
        os.path.join(work, f"mlflow-server-{port}.log"),
        {"MLFLOW_TRACKING_URI": ""},
    )


def start_mlflow(work: str, report: Report) -> ServerProcess | None:
    """A running MLflow server from the first executable that can start one, else None (noted)."""
    chosen = os.environ.get("MLFLOW_SERVER_BIN")
    candidates = [chosen] if chosen else [c for c in dict.fromkeys(MLFLOW_CANDIDATES) if os.access(c, os.X_OK)]
    failures = []
    for exe in candidates:
        server = mlflow_server(exe, work)
        try:
            server.__enter__()
        except RuntimeError as exc:
            failures.append(f"{exe}: {str(exc).splitlines()[-1] if str(exc) else exc}")
            continue
        report.note(f"MLflow baseline: {exe} server (sqlite, 1 worker)")
        return server
    report.note(
        "MLflow baseline skipped: no mlflow executable could start a server"
        + (f" ({'; '.join(failures)})" if failures else " (set MLFLOW_SERVER_BIN)")
    )
    return None


# -- (a) the runs-table page -----------------------------------------------------------------


def timed_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    result = fn()
    return (time.perf_counter() - t) * 1000, result


def get_page(http: Any, url: str, params: dict[str, str] | None = None) -> tuple[float, Any]:
    ms, resp = timed_ms(lambda: http.get(url, params=params))
    if resp.status_code != 200:
        raise RuntimeError(f"GET {resp.request.url} answered {resp.status_code}: {resp.text[:500]}")
    return ms, resp


def page_load(store: str, exp: str, work: str, repeats: int, report: Report) -> dict[str, float]:
    """First and warm load times of the runs table, plain and filtered+ordered, and the REST baseline."""
    import httpx

    out: dict[str, float] = {}
    with evtrack_server(store, work) as server, httpx.Client(base_url=server.url, timeout=300) as http:
        path = f"/experiments/{exp}"
        filtered = {"filter": PAGE_FILTER, "order_by": PAGE_ORDER}
        out["first"], resp = get_page(http, path)
        rows = resp.text.count('class="run-row')
        out["first_filtered"], fresp = get_page(http, path, filtered)
        frows = fresp.text.count('class="run-row')
        out["warm"] = statistics.median(get_page(http, path)[0] for _ in range(repeats))
        out["warm_filtered"] = statistics.median(get_page(http, path, filtered)[0] for _ in range(repeats))
        body = {"experiment_ids": [exp], "filter": PAGE_FILTER, "order_by": [PAGE_ORDER], "max_results": 100}
        plain = {"experiment_ids": [exp], "max_results": 100}
        rest = [
            timed_ms(lambda b=b: http.post(f"{API}/runs/search", json=b))
            for b in (plain, body)
            for _ in range(repeats + 1)
        ]
        out["rest"] = statistics.median(ms for ms, _ in rest[1 : repeats + 1])
        out["rest_filtered"] = statistics.median(ms for ms, _ in rest[repeats + 2 :])
        n_rest = len(rest[-1][1].json().get("runs", []))
        out["page_kib"] = len(resp.content) / 1024
    report.note(
        f"runs table: {rows} rows on the plain page ({out['page_kib']:.0f} KiB), {frows} on the "
        f"filtered one; REST runs/search returned {n_rest} runs for the same filter"
    )
    print(
        f"  page: first {out['first']:.0f} ms, warm {out['warm']:.1f} ms; filtered first "
        f"{out['first_filtered']:.0f} ms, warm {out['warm_filtered']:.1f} ms; REST {out['rest']:.1f} / "
        f"{out['rest_filtered']:.1f} ms",
        flush=True,
    )
    return out


def build_store(work: str, n: int) -> tuple[str, str]:
    """A compacted store of ``n`` runs (as bench_query.py builds it): (store path, experiment id)."""
    from bench_query import ingest_evtrack, run_specs

    root = os.path.join(work, f"store-{n}")
    client, exp, _, _ = ingest_evtrack(root, run_specs(n), 0)
    client.flush()
    return root, exp


# -- (b) log-batch throughput ----------------------------------------------------------------


def _post(http: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = http.post(f"{API}/{path}", json=body)
    if resp.status_code != 200:
        raise RuntimeError(f"POST {path} answered {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def batch_bodies(run_id: str, requests: int) -> list[dict[str, Any]]:
    """``requests`` log-batch bodies of 1,000 metrics each (10 keys × 100 steps per request)."""
    ts = 1_700_000_000_000
    return [
        {
            "run_id": run_id,
            "metrics": [
                {
                    "key": f"m{j % 10}",
                    "value": 1.0 / (1 + r * 100 + j // 10),
                    "timestamp": ts + r,
                    "step": r * 100 + j // 10,
                }
                for j in range(BATCH)
            ],
        }
        for r in range(requests)
    ]


def log_throughput(url: str, requests: int) -> dict[str, float]:
    """metrics/s of ``requests`` log-batch calls, and calls/s + median latency of single log-metric calls."""
    import httpx

    with httpx.Client(base_url=url, timeout=600) as http:
        exp = _post(http, "experiments/create", {"name": f"bench-log-{time.time_ns()}"})["experiment_id"]

        def new_run(name: str) -> str:
            return _post(
                http, "runs/create", {"experiment_id": exp, "run_name": name, "start_time": int(time.time() * 1000)}
            )["run"]["info"]["run_id"]

        run_id = new_run("batches")
        bodies = batch_bodies(run_id, requests)
        _post(http, "runs/log-batch", {"run_id": new_run("warm-up"), "metrics": bodies[0]["metrics"][:10]})
        t = time.perf_counter()
        for body in bodies:
            _post(http, "runs/log-batch", body)
        batch_s = time.perf_counter() - t
        history = http.get(
            f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "m0", "max_results": 1_000_000}
        ).json()
        stored = len(history.get("metrics", []))
        single_run = new_run("singles")
        latencies = []
        t = time.perf_counter()
        for step in range(SINGLE_CALLS):
            body = {
                "run_id": single_run,
                "key": "loss",
                "value": 1.0 / (step + 1),
                "timestamp": 1_700_000_000_000,
                "step": step,
            }
            ms, _ = timed_ms(lambda b=body: _post(http, "runs/log-metric", b))
            latencies.append(ms)
        single_s = time.perf_counter() - t
    return {
        "metrics_per_s": requests * BATCH / batch_s,
        "batch_s": batch_s,
        "requests": requests,
        "history_m0": stored,
        "single_calls_per_s": SINGLE_CALLS / single_s,
        "single_median_ms": statistics.median(latencies),
    }


def print_throughput(name: str, r: dict[str, float]) -> None:
    print(
        f"  {name}: {r['requests']} x log-batch of {BATCH:,}: {r['metrics_per_s']:,.0f} metrics/s "
        f"({r['batch_s']:.1f} s); {SINGLE_CALLS} log-metric calls: {r['single_calls_per_s']:,.0f}/s, "
        f"median {r['single_median_ms']:.1f} ms; history of m0 has {r['history_m0']} points",
        flush=True,
    )


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small smoke run (3,000 runs, 10 requests)")
    ap.add_argument("--runs", type=int, default=None, help="runs in the page-load store (100,000)")
    ap.add_argument("--requests", type=int, default=None, help="log-batch requests to evtrack (100)")
    ap.add_argument(
        "--mlflow-requests",
        type=int,
        default=None,
        help="log-batch requests to MLflow (default: as many as to evtrack, at most 20)",
    )
    ap.add_argument("--repeats", type=int, default=None, help="warm page loads to take the median of (10)")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow server baseline")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    n_runs = args.runs or (3000 if args.quick else 100_000)
    requests = args.requests or (10 if args.quick else 100)
    ml_requests = args.mlflow_requests or min(requests, 20)
    repeats = args.repeats or (5 if args.quick else 10)
    work = args.dir or tempfile.mkdtemp(prefix="bench-server-")
    os.makedirs(work, exist_ok=True)
    os.environ.setdefault("EVTRACK_SPOOL_DIR", os.path.join(work, "spool"))
    os.environ.setdefault("EVTRACK_CACHE_DIR", os.path.join(work, "cache"))
    report = Report("bench_server: runs-table page and REST log-batch, evtrack server vs MLflow server")
    report.note(f"work directory {work}; {n_runs:,} runs; warm figures are the median of {repeats}")
    try:
        print(f"\n-- (a) runs table of {n_runs:,} runs", flush=True)
        store, exp = build_store(work, n_runs)
        page = page_load(store, exp, work, repeats, report)
        print(
            f"\n-- (b) log-batch: {requests} requests of {BATCH:,} metrics + {SINGLE_CALLS} log-metric calls",
            flush=True,
        )
        with evtrack_server(os.path.join(work, "store-log"), work) as server:
            ev = log_throughput(server.url, requests)
        print_throughput("evtrack", ev)
        ml = None
        mlflow = None if args.no_mlflow else start_mlflow(work, report)
        if args.no_mlflow:
            report.note("MLflow baseline skipped: --no-mlflow")
        if mlflow is not None:
            with mlflow:
                ml = log_throughput(mlflow.url, ml_requests)
            print_throughput("mlflow", ml)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)

    label = f"{n_runs:,} runs"
    report.add(f"runs table, first load after start @ {label}", page["first"], "ms", higher_is_better=False)
    report.add(
        f"runs table, warm @ {label}",
        page["warm"],
        "ms",
        baseline=page["rest"],
        baseline_name="REST runs/search JSON",
        higher_is_better=False,
    )
    report.add(f"filtered+ordered table, first @ {label}", page["first_filtered"], "ms", higher_is_better=False)
    report.add(
        f"filtered+ordered table, warm @ {label}",
        page["warm_filtered"],
        "ms",
        baseline=page["rest_filtered"],
        baseline_name="REST runs/search JSON",
        higher_is_better=False,
    )
    base = ml["metrics_per_s"] if ml else None
    report.add(
        f"log-batch, {BATCH:,} metrics a request",
        ev["metrics_per_s"],
        "metrics/s",
        baseline=base,
        baseline_name="MLflow server, sqlite" if ml else "",
        note=f"evtrack {requests} requests, MLflow {ml_requests}" if ml else "",
    )
    report.add(
        "log-metric, one metric a request",
        ev["single_calls_per_s"],
        "calls/s",
        baseline=ml["single_calls_per_s"] if ml else None,
        baseline_name="MLflow server, sqlite" if ml else "",
    )
    report.add(
        "log-metric median latency",
        ev["single_median_ms"],
        "ms",
        baseline=ml["single_median_ms"] if ml else None,
        baseline_name="MLflow server, sqlite" if ml else "",
        higher_is_better=False,
    )
    report.extra.update({"page": page, "evtrack_log": ev, "mlflow_log": ml})
    if ev["history_m0"] != requests * BATCH // 10:
        report.note(f"evtrack's m0 history has {ev['history_m0']} points, expected {requests * BATCH // 10}")
    if args.quick:
        report.note("--quick: a smoke run; the page figures are for 100,000 runs without it")
    report.print()
    report.save(args.json)


if __name__ == "__main__":
    main()
