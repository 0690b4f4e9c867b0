"""Logging over HTTP with evtrack's client (issue 15): what a ``log_metric`` call costs the
training loop, and how fast the points reach the server.

Against one ``evtrack server`` subprocess (one worker, ``--compact-every 0``) on 127.0.0.1:

  * evtrack's client on ``http://…``: ``--points`` ``log_metric`` calls in one run; the time
    the calls take (the training loop's cost) and the time until ``flush()`` says the server
    acknowledged every point (end-to-end points/s);
  * baseline, MLflow's own client on the same server: ``mlflow.log_metric`` (one synchronous
    request per call) for ``--mlflow-points`` calls, and ``MlflowClient.log_batch`` of 1,000
    points a request (what a user batching by hand gets).

Each client runs in a child process of its own. No timing is asserted; the script exits 0.

Usage::

    python benchmarks/bench_remote.py [--points 100000] [--mlflow-points 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import REPO_ROOT, Report  # noqa: E402
from bench_server import evtrack_server  # noqa: E402

EVTRACK_CHILD = """
import json, sys, time
import evtrack
url, n = sys.argv[1], int(sys.argv[2])
evtrack.set_tracking_uri(url)
evtrack.set_experiment("bench-remote")
run = evtrack.start_run()
t0 = time.perf_counter()
for step in range(n):
    evtrack.log_metric("loss", 1.0 / (step + 1), step=step)
calls = time.perf_counter() - t0
result = evtrack.flush()
total = time.perf_counter() - t0
evtrack.end_run()
got = len(evtrack.MlflowClient().get_metric_history(run.info.run_id, "loss"))
sender = evtrack.MlflowClient()._sender
print(json.dumps({"calls": calls, "total": total, "durable": result.durable, "stored": got,
                  "requests": sender.sent_requests}))
"""

MLFLOW_CHILD = """
import json, sys, time
import mlflow
from mlflow.entities import Metric
url, n = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(url)
mlflow.set_experiment("bench-remote-mlflow")
with mlflow.start_run() as run:
    t0 = time.perf_counter()
    for step in range(n):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    single = time.perf_counter() - t0
client = mlflow.MlflowClient(url)
batch_run = client.create_run(run.info.experiment_id).info.run_id
t0 = time.perf_counter()
for start in range(0, 10 * n, 1000):
    ms = [Metric("loss", 1.0 / (s + 1), 0, s) for s in range(start, min(start + 1000, 10 * n))]
    client.log_batch(batch_run, metrics=ms)
batched = time.perf_counter() - t0
print(json.dumps({"single": single, "batched": batched, "batched_points": 10 * n}))
"""


def child(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "EVTRACK_CAPTURE_ENV": "false", "EVTRACK_CAPTURE_GIT": "false"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--mlflow-points", type=int, default=1_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    report = Report("logging over HTTP: evtrack's client vs MLflow's, to the same evtrack server")
    with tempfile.TemporaryDirectory(prefix="evtrack-bench-remote-") as work:
        with evtrack_server(os.path.join(work, "store"), work) as server:
            ours = child(EVTRACK_CHILD, server.url, str(args.points))
            try:
                theirs = child(MLFLOW_CHILD, server.url, str(args.mlflow_points))
            except (RuntimeError, FileNotFoundError) as exc:
                theirs = None
                report.note(f"MLflow's client could not run ({str(exc)[:200]}); baselines skipped")
    n = args.points
    per_call = ours["calls"] / n * 1e6
    report.note(
        f"evtrack: {n:,} points, {ours['requests']} requests, flush durable={ours['durable']}, "
        f"{ours['stored']:,} points read back"
    )
    mlflow_per_call = theirs["single"] / args.mlflow_points * 1e6 if theirs else None
    report.add(
        "log_metric call (training loop's cost)",
        per_call,
        "us/call",
        mlflow_per_call,
        "mlflow.log_metric, same server",
        higher_is_better=False,
    )
    points_per_s = n / ours["total"]
    report.add(
        "points acknowledged by the server",
        points_per_s,
        "points/s",
        args.mlflow_points / theirs["single"] if theirs else None,
        "mlflow.log_metric",
    )
    if theirs:
        report.add(
            "points acknowledged, vs hand-made batches",
            points_per_s,
            "points/s",
            theirs["batched_points"] / theirs["batched"],
            "MlflowClient.log_batch x1000",
        )
    report.print()
    report.save(args.json)


if __name__ == "__main__":
    main()
