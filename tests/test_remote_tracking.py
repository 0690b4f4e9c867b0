"""evtrack's client on an ``http(s)://`` tracking URI: MLflow's REST API to ``evtrack server``
(in-process and as a real subprocess, killed and restarted mid-run) and to MLflow's own
``mlflow server`` on sqlite, whose answers are compared with MLflow's client's.

Writes are queued and sent by a background thread as ``runs/log-batch`` requests; what the
server does not acknowledge is parked in the spool and sent later, and a retried request
folds to the same state (metric points carry their timestamp, so a point sent twice is an
exact duplicate the fold counts once; params keep their first value; tags and status carry
the same value again).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

import evtrack
from evtrack.errors import EvtrackError, InvalidParameterError, ResourceNotFoundError
from evtrack.remote.transport import AuthenticationError
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(240)

EVTRACK = [sys.executable, "-c", "from evtrack.cli import main; main()"]


def wait_for_health(url: str, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no answer from {url}/health")


class ServerProcess:
    """``evtrack server`` as a subprocess on a fixed port (so it can be killed and restarted)."""

    def __init__(self, store: Path, port: int | None = None) -> None:
        self.store, self.port = store, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        args = [*EVTRACK, "server", "--backend-store-uri", str(self.store), "--port", str(self.port)]
        env = {**os.environ, "EVTRACK_CAPTURE_ENV": "false"}
        self.process = subprocess.Popen(
            [*args, "--compact-every", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_health(self.url, self.process)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def served(server_factory: Any) -> Any:
    """An in-process ``evtrack server`` on a fresh store; evtrack's tracking URI set to it."""
    server = server_factory()
    evtrack.set_tracking_uri(server.url)
    return server


def fitted() -> Any:
    from sklearn.linear_model import Lasso

    return Lasso(alpha=0.5).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])


def log_a_run(points: int = 10_000) -> str:
    """The seed's habits over HTTP: params, tags, a metric history, an artifact, a model, a version."""
    evtrack.set_experiment("remote")
    with evtrack.start_run(run_name="over-http") as run:
        evtrack.log_params({"alpha": 0.5, "l1_ratio": 0.1})
        evtrack.set_tags({"team": "taxi", "stage": "dev"})
        for step in range(points):
            evtrack.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_700_000_000_000 + step)
        evtrack.log_metric("odd", math.nan, step=0, timestamp=5)
        evtrack.log_text("hello over http\n", "notes/hello.txt")
        evtrack.sklearn.log_model(fitted(), name="model", registered_model_name="taxi-remote")
    return run.info.run_id


def run_summary(client: Any, run_id: str) -> dict[str, Any]:
    """What a user reads back about a run, in a form two stores can be compared on."""
    run = client.get_run(run_id)
    history = client.get_metric_history(run_id, "loss")
    odd = client.get_metric_history(run_id, "odd")
    user_tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    return {
        "name": run.info.run_name,
        "status": run.info.status,
        "params": run.data.params,
        "tags": user_tags,
        "latest": {k: (None if math.isnan(v) else v) for k, v in run.data.metrics.items()},
        "history": [(m.step, m.timestamp, m.value) for m in history],
        "odd": [(m.step, math.isnan(m.value)) for m in odd],
        "artifacts": sorted(f.path for f in client.list_artifacts(run_id, "notes")),
    }


def test_a_run_logged_over_http_reads_back_over_http_and_from_the_store(served: Any) -> None:
    run_id = log_a_run()
    remote = evtrack.MlflowClient()
    assert type(remote).__name__ == "RemoteMlflowClient"
    over_http = run_summary(remote, run_id)
    assert len(over_http["history"]) == 10_000 and over_http["history"][0] == (0, 1_700_000_000_000, 1.0)
    assert over_http["params"] == {"alpha": "0.5", "l1_ratio": "0.1"}
    assert over_http["tags"] == {"team": "taxi", "stage": "dev"}
    assert over_http["status"] == "FINISHED" and over_http["odd"] == [(0, True)]
    assert over_http["artifacts"] == ["notes/hello.txt"]
    direct = evtrack.MlflowClient(served.config.tracking_uri)  # the server's store, read without it
    assert type(direct).__name__ == "MlflowClient"
    assert run_summary(direct, run_id) == over_http
    assert Path(remote.download_artifacts(run_id, "notes/hello.txt")).read_text() == "hello over http\n"

    versions = remote.search_model_versions("name = 'taxi-remote'")
    assert [(v.version, v.run_id) for v in versions] == [(1, run_id)]
    remote.set_registered_model_alias("taxi-remote", "champion", 1)
    assert direct.get_model_version_by_alias("taxi-remote", "champion").version == 1
    loaded = evtrack.pyfunc.load_model("models:/taxi-remote@champion")  # files through the server's proxy
    assert list(loaded.predict([[4.0]])) == pytest.approx(list(fitted().predict([[4.0]])))


def test_metric_points_go_out_in_batches_not_one_request_each(served: Any) -> None:
    evtrack.set_experiment("batches")
    with evtrack.start_run() as run:
        for step in range(5_000):
            evtrack.log_metric("x", float(step), step=step)
    assert evtrack.flush().durable
    sender = evtrack.MlflowClient()._sender
    assert sender.acknowledged_points == 5_000
    assert sender.sent_requests <= 5_000 // 1_000 + 6  # 1,000 points a request, plus the run's other calls
    assert len(evtrack.MlflowClient().get_metric_history(run.info.run_id, "x")) == 5_000


def test_server_errors_are_evtracks_error_classes_with_the_servers_message(served: Any) -> None:
    client = evtrack.MlflowClient()
    with pytest.raises(ResourceNotFoundError, match="abcdef0123456789abcdef0123456789"):
        client.get_run("abcdef0123456789abcdef0123456789")
    client.create_experiment("taken")
    with pytest.raises(EvtrackError, match="taken") as exc:
        client.create_experiment("taken")
    assert exc.value.error_code == "RESOURCE_ALREADY_EXISTS"
    run = client.create_run(client.get_experiment_by_name("taken").experiment_id)
    client.log_param(run.info.run_id, "lr", "0.1")
    with pytest.raises(InvalidParameterError, match="Changing param values is not allowed"):
        client.log_param(run.info.run_id, "lr", "0.2")  # refused at the call, before anything is sent
    with pytest.raises(InvalidParameterError, match="server"):
        evtrack.sql("SELECT * FROM runs")


def test_wrong_credentials_are_one_clear_error_and_right_ones_log(
    server_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evtrack.server.auth import hash_secret

    users = tmp_path / "users.yaml"
    users.write_text(
        f'users:\n  - {{name: alice, password: "{hash_secret("pw-1", iterations=1000)}", role: read-write}}\n'
    )
    server = server_factory(auth_file=str(users))
    evtrack.set_tracking_uri(server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    with pytest.raises(AuthenticationError) as exc:
        evtrack.MlflowClient().search_experiments()
    assert exc.value.error_code == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_USERNAME" in exc.value.message and "\n" not in exc.value.message
    monkeypatch.setenv("EVTRACK_TRACKING_PASSWORD", "pw-1")  # evtrack's own name wins over MLflow's
    with evtrack.start_run() as run:
        evtrack.log_metric("m", 1.0)
    assert evtrack.MlflowClient().get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_a_server_killed_and_restarted_mid_run_loses_and_doubles_nothing(
    tmp_path: Path, fresh_evtrack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Points logged while the server is down are parked in the spool and sent once it is back."""
    monkeypatch.setenv("EVTRACK_FLUSH_INTERVAL", "0.1")
    monkeypatch.setenv("EVTRACK_HTTP_REQUEST_MAX_RETRIES", "1")
    server = ServerProcess(tmp_path / "store").start()
    try:
        evtrack.set_tracking_uri(server.url)
        client = evtrack.MlflowClient()
        run = client.create_run(client.create_experiment("outage"))
        rid = run.info.run_id
        total, logged = 6_000, threading.Event()

        def train() -> None:
            for step in range(total):
                client.log_metric(rid, "loss", step / total, timestamp=1_000 + step, step=step)
                if step % 500 == 0:
                    time.sleep(0.05)
            logged.set()

        trainer = threading.Thread(target=train)
        trainer.start()
        time.sleep(0.3)
        server.kill()  # mid-run: some batches acknowledged, some in flight, the rest queued
        assert logged.wait(60), "log_metric waited on the network"
        trainer.join()
        down = client.flush()
        assert not down.durable and down.pending_segments > 0 and down.error  # parked, and said so
        server.start()  # the same store and port
        up = client.flush()
        assert up.durable and up.pending_segments == 0, up
        client.set_terminated(rid)
        points = client.get_metric_history(rid, "loss")
        assert [p.step for p in points] == list(range(total))  # every point once: none lost, none doubled
        assert client.get_run(rid).info.status == "FINISHED"
    finally:
        server.stop()
    direct = evtrack.MlflowClient(str(tmp_path / "store"))
    assert len(direct.get_metric_history(rid, "loss")) == total


def test_points_parked_by_one_process_are_sent_by_the_next(
    tmp_path: Path, fresh_evtrack: None, spool_dir: Path
) -> None:
    """A process that exits while the server is down leaves its requests in the spool; the next
    process using that tracking URI sends them."""
    server = ServerProcess(tmp_path / "store").start()
    try:
        client = evtrack.MlflowClient(server.url)
        rid = client.create_run("0").info.run_id
    finally:
        server.kill()
    script = (
        "import evtrack\n"
        f"c = evtrack.MlflowClient({server.url!r})\n"
        f"for s in range(300): c.log_metric({rid!r}, 'm', float(s), timestamp=s, step=s)\n"
    )
    env = {**os.environ, "EVTRACK_SPOOL_DIR": str(spool_dir), "EVTRACK_HTTP_REQUEST_MAX_RETRIES": "0"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "will be sent by the next process" in done.stderr
    server.start()
    try:
        nxt = subprocess.run(
            [sys.executable, "-c", f"import evtrack; print(evtrack.MlflowClient({server.url!r}).flush())"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert nxt.returncode == 0 and "durable=True" in nxt.stdout, nxt.stdout + nxt.stderr
        points = evtrack.MlflowClient(server.url).get_metric_history(rid, "m")
        assert [p.step for p in points] == list(range(300))
    finally:
        server.stop()


# -- the same client against MLflow's own server ---------------------------------------


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("mlflow")
    base = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{base / 'mlflow.db'}",
            "--artifacts-destination",
            str(base / "artifacts"),
            "--workers",
            "1",
        ],
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process, 120)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_evtracks_client_on_mlflows_server_answers_as_mlflows_client(
    mlflow_server: str, fresh_evtrack: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient as TheirClient

    monkeypatch.chdir(tmp_path)
    evtrack.set_tracking_uri(mlflow_server)
    run_id = log_a_run(points=2_000)
    ours = run_summary(evtrack.MlflowClient(), run_id)
    theirs = run_summary(TheirClient(mlflow_server), run_id)
    assert ours == theirs
    assert len(ours["history"]) == 2_000 and ours["params"] == {"alpha": "0.5", "l1_ratio": "0.1"}
    their_versions = TheirClient(mlflow_server).search_model_versions("name = 'taxi-remote'")
    assert [(int(v.version), v.run_id) for v in their_versions] == [(1, run_id)]
    ours_mv = evtrack.MlflowClient().get_model_version("taxi-remote", 1)
    assert (ours_mv.run_id, ours_mv.current_stage) == (run_id, "None")
    model = evtrack.pyfunc.load_model(f"runs:/{run_id}/model")
    assert len(model.predict([[1.0], [2.0]])) == 2
    with pytest.raises(ResourceNotFoundError):
        evtrack.MlflowClient().get_run("0" * 32)
