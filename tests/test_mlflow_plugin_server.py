"""MLflow's own server and UI on evtrack's store: ``mlflow server --backend-store-uri evtrack+s3://…``.

The server runs as a real subprocess (``python -m mlflow server``) on an evtrack store in S3
(moto over HTTP) with its artifacts proxied to S3; MLflow's client logs to it over HTTP; then
MLflow's React UI is opened in headless Chromium (Debian's ``chromium``, as the other browser
tests): the experiments list, the runs table and its search, a run's metric charts, the
comparison of two runs, the registered models and a model's versions and aliases. Every page is
kept as a PNG screenshot (``$EVTRACK_SCREENSHOT_DIR`` or the test run's temporary directory).
``mlflow ui --backend-store-uri evtrack:///…`` (the local form) is started once too.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

from conftest import free_port, shoot  # noqa: E402


class MlflowServer:
    """``python -m mlflow <command>`` on loopback, stopped (and its log kept) by :meth:`stop`."""

    def __init__(self, command: str, backend: str, tmp: pathlib.Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"mlflow-{command}-{self.port}.log"
        env = {**os.environ, "EVTRACK_SPOOL_DIR": str(tmp / "server-spool"), "MLFLOW_ENABLE_TELEMETRY": "false"}
        args = [sys.executable, "-m", "mlflow", command, "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--backend-store-uri", backend, *extra]
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"mlflow {command} did not start:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.3)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.url}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._out.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, s3_client: Any) -> Iterator[dict[str, Any]]:
    """An MLflow server on an evtrack+s3 store, with runs, a metric history and a registered model
    logged by MLflow's client over HTTP."""
    import numpy as np
    from mlflow.tracking import fluent
    from sklearn.linear_model import Lasso

    tmp = tmp_path_factory.mktemp("mlflow-server")
    bucket = f"mlflow-plugin-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=bucket)
    server = MlflowServer(
        "server", f"evtrack+s3://{bucket}/tracking", tmp, "--artifacts-destination", f"s3://{bucket}/artifacts"
    )
    mp = pytest.MonkeyPatch()
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        mp.delenv(name, raising=False)
    try:
        mlflow.set_tracking_uri(server.url)
        experiment = mlflow.set_experiment("taxi")
        runs = {}
        for alpha in (0.01, 0.1, 1.0):
            with mlflow.start_run(run_name=f"lasso-{alpha}") as run:
                mlflow.log_param("alpha", alpha)
                for step in range(40):
                    mlflow.log_metric("loss", 1 / (step + 1) + alpha, step=step)
                mlflow.log_metric("rmse", 1 + alpha)
                runs[f"lasso-{alpha}"] = run.info.run_id
        X = np.random.default_rng(3).random((40, 3))
        with mlflow.start_run(run_name="champion-run") as run:
            model = Lasso(alpha=0.05).fit(X, X @ np.array([1.0, 2.0, 3.0]))
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name="taxi")
            runs["champion-run"] = run.info.run_id
        mlflow.MlflowClient().set_registered_model_alias("taxi", "champion", info.registered_model_version)
        yield {
            "server": server,
            "bucket": bucket,
            "experiment_id": experiment.experiment_id,
            "runs": runs,
            "model": model,
            "X": X,
        }
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # set by mlflow.set_experiment
        mlflow.set_tracking_uri("")
        mp.undo()
        server.stop()


def test_mlflow_client_over_the_server_reads_back_what_it_logged(served: dict[str, Any]) -> None:
    import evtrack

    client = mlflow.MlflowClient(served["server"].url)
    runs = client.search_runs([served["experiment_id"]], "metrics.rmse < 1.5", order_by=["metrics.rmse"])
    assert [r.info.run_name for r in runs] == ["lasso-0.01", "lasso-0.1"]
    history = client.get_metric_history(served["runs"]["lasso-0.1"], "loss")
    assert [m.step for m in history] == list(range(40))
    mlflow.set_tracking_uri(served["server"].url)
    loaded = mlflow.pyfunc.load_model("models:/taxi@champion")
    assert list(loaded.predict(served["X"][:3])) == pytest.approx(list(served["model"].predict(served["X"][:3])))
    # the same events, read straight from S3 by evtrack's own client (no server in between)
    ours = evtrack.EvtrackClient(f"s3://{served['bucket']}/tracking")
    assert ours.get_run(served["runs"]["lasso-1.0"]).data.metrics["rmse"] == 2.0
    assert ours.get_model_version_by_alias("taxi", "champion").version == 1


def test_unsupported_features_answer_501_with_the_feature_named(served: dict[str, Any]) -> None:
    status, body = served["server"].post(
        "/ajax-api/3.0/mlflow/traces/search", {"locations": [{"mlflow_experiment": {"experiment_id": "0"}}]}
    )
    assert status == 501 and body["error_code"] == "NOT_IMPLEMENTED", body
    assert "Traces are not supported by the evtrack store" in body["message"]


# -- the UI in Chromium ------------------------------------------------------------------------------


def test_mlflow_ui_pages_over_the_event_log(page: Any, served: dict[str, Any], screenshot_dir: pathlib.Path) -> None:
    base, exp, runs = served["server"].url, served["experiment_id"], served["runs"]

    page.goto(f"{base}/#/experiments")
    page.get_by_text("taxi", exact=True).first.wait_for()
    assert "Default" in page.locator("body").inner_text()
    shoot(page, screenshot_dir, "mlflow-ui-01-experiments")

    page.goto(f"{base}/#/experiments/{exp}/runs")
    for name in runs:
        page.get_by_text(name, exact=True).first.wait_for()
    shoot(page, screenshot_dir, "mlflow-ui-02-runs-table")

    search = page.get_by_test_id("search-box")
    search.fill("metrics.rmse < 1.05")
    search.press("Enter")
    page.get_by_text("lasso-1.0", exact=True).first.wait_for(state="detached")
    body = page.locator("body").inner_text()
    assert "lasso-0.01" in body and "lasso-0.1" not in body and "champion-run" not in body
    shoot(page, screenshot_dir, "mlflow-ui-03-runs-search")

    page.goto(f"{base}/#/experiments/{exp}/runs/{runs['lasso-0.1']}/model-metrics")
    page.locator(".js-plotly-plot g.trace.scatter path.js-line").first.wait_for(state="attached")
    assert page.locator(".js-plotly-plot").count() >= 2  # loss and rmse
    shoot(page, screenshot_dir, "mlflow-ui-04-run-metric-charts")

    compared = json.dumps([runs["lasso-0.01"], runs["lasso-1.0"]])
    page.goto(f"{base}/#/compare-runs?runs={compared}&experiments={json.dumps([exp])}")
    page.get_by_text("Comparing 2 Runs from 1 Experiment").wait_for()
    body = page.locator("body").inner_text()
    assert runs["lasso-0.01"] in body and runs["lasso-1.0"] in body
    shoot(page, screenshot_dir, "mlflow-ui-05-compare")

    page.goto(f"{base}/#/models")
    page.get_by_text("taxi", exact=True).first.wait_for()
    page.get_by_text("@ champion").first.wait_for()
    shoot(page, screenshot_dir, "mlflow-ui-06-registered-models")

    page.goto(f"{base}/#/models/taxi")
    page.get_by_text("Version 1").first.wait_for()
    assert "champion" in page.locator("body").inner_text()
    shoot(page, screenshot_dir, "mlflow-ui-07-model-versions")


def test_mlflow_ui_command_on_a_local_store(tmp_path: Any, fresh_evtrack: None) -> None:
    """``mlflow ui --backend-store-uri evtrack:///…`` serves what evtrack's own client logged."""
    import evtrack

    store = tmp_path / "store"
    client = evtrack.EvtrackClient(str(store))
    exp = client.create_experiment("local-taxi")
    run = client.create_run(exp, run_name="from-evtrack")
    client.log_metric(run.info.run_id, "rmse", 0.5)
    client.set_terminated(run.info.run_id)
    client.flush()
    ui = MlflowServer("ui", f"evtrack://{store}", tmp_path)
    try:
        status, body = ui.post("/api/2.0/mlflow/runs/search", {"experiment_ids": [exp]})
        assert status == 200
        assert [r["info"]["run_name"] for r in body["runs"]] == ["from-evtrack"]
        assert body["runs"][0]["data"]["metrics"][0]["value"] == 0.5
    finally:
        ui.stop()
