"""``evtrack server`` / ``evtrack ui`` as real subprocesses: start, serve, compact, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.timeout(120)

EVTRACK = [sys.executable, "-c", "from evtrack.cli import main; main()"]


def start_server(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [*EVTRACK, *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {}), "EVTRACK_CAPTURE_ENV": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).text == "OK":
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not answer /health within 60 s")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


@pytest.mark.parametrize("command, workers", [("server", 1), ("server", 2), ("ui", 1)])
def test_the_server_serves_the_store_and_compacts_it(tmp_path: Path, command: str, workers: int) -> None:
    store = tmp_path / "store"
    process, url = start_server(
        [command, "--backend-store-uri", str(store), "--workers", str(workers), "--compact-every", "1s"]
    )
    try:
        created = httpx.post(url + "/api/2.0/mlflow/experiments/create", json={"name": "cli-exp"})
        assert created.status_code == 200, created.text
        experiment_id = created.json()["experiment_id"]
        run = httpx.post(
            url + "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id, "run_name": "r1"}
        ).json()["run"]
        run_id = run["info"]["run_id"]
        logged = httpx.post(
            url + "/api/2.0/mlflow/runs/log-batch",
            json={
                "run_id": run_id,
                "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}],
                "params": [{"key": "alpha", "value": "0.1"}],
            },
        )
        assert logged.status_code == 200, logged.text
        deadline = time.monotonic() + 30
        while not list((store / "_manifests").glob("*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list((store / "_manifests").glob("*")), "the server did not compact within 30 s"
        page = httpx.get(f"{url}/experiments/{experiment_id}")
        assert page.status_code == 200 and "r1" in page.text
    finally:
        output = stop(process)
    assert "on http://127.0.0.1:" in output

    import evtrack

    client = evtrack.EvtrackClient(str(store))
    assert client.get_run(run_id).data.params == {"alpha": "0.1"}
    assert client.get_run(run_id).data.metrics == {"loss": 0.5}


def test_a_bad_auth_file_stops_the_server_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "users.yaml"
    bad.write_text("users: [{name: a, password: p, role: admin}]")
    result = subprocess.run(
        [
            *EVTRACK,
            "server",
            "--backend-store-uri",
            str(tmp_path / "s"),
            "--auth-file",
            str(bad),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {bad}: users[0]: unknown role 'admin' (use read-only or read-write)"
    )
