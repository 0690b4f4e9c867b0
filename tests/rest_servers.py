"""Servers for differential REST tests: ``mlflow server`` (sqlite) and ``evtrack server`` as real
subprocesses, requests with per-server id placeholders, and answers normalised for comparison."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port


class Served:
    """One server subprocess: its URL, and the ids of the fixtures created on it."""

    def __init__(self, name: str, args: list[str], cwd: Path) -> None:
        self.name, self.cwd = name, cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"{name}.log"
        self._out = open(self.log, "wb")
        env = {**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false", "EVTRACK_CAPTURE_ENV": "false"}
        self.proc = subprocess.Popen(
            [*args, "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
        self.ids: dict[str, str] = {}
        self.http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        path = path.format(**self.ids)
        if method == "GET":
            return self.http.get(path, params=fill(body, self.ids))
        return self.http.request(method, path, json=fill(body, self.ids))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._out.close()


def fill(value: Any, ids: dict[str, str]) -> Any:
    """``"{run}"``-style placeholders in a request body replaced by this server's ids."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
        return ids[value[1:-1]]
    if isinstance(value, str) and "{" in value:
        try:
            return value.format(**ids)
        except (KeyError, IndexError, ValueError):
            return value
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def answer(server: Served, response: httpx.Response) -> tuple[int, str | None, str | None]:
    """(status, error_code, message), this server's ids in the message put back as placeholders."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, None, None
    if not isinstance(body, dict):
        return response.status_code, None, None
    message = body.get("message")
    for name, value in server.ids.items():
        if isinstance(message, str) and len(value) > 3:
            message = message.replace(value, "{" + name + "}")
    return response.status_code, body.get("error_code"), message


# times and the user differ by nature; MLflow 3's error bodies add its own error_class and sqlstate
VOLATILE = {
    "creation_time",
    "last_update_time",
    "creation_timestamp",
    "last_updated_timestamp",
    "user_id",
    "error_class",
    "sqlstate",
}


def normal(server: Served, value: Any) -> Any:
    """A JSON answer with this server's ids and working directory as placeholders, and the
    fields that differ by nature (times, the user) left out."""
    if isinstance(value, dict):
        return {k: normal(server, v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [normal(server, v) for v in value]
    if isinstance(value, str):
        value = value.replace(str(server.cwd), "{cwd}")
        for name, known in server.ids.items():
            if len(known) > 3:
                value = value.replace(known, "{" + name + "}")
        return "{exp}" if value == server.ids.get("exp") else value
    return value


@contextmanager
def mlflow_and_evtrack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Served]]:
    """``mlflow server`` on a fresh sqlite store and ``evtrack server`` on a fresh local store."""
    mdir = tmp_path_factory.mktemp("mlflow-ref")
    edir = tmp_path_factory.mktemp("evtrack-srv")
    mlflow_args = ["--backend-store-uri", f"sqlite:///{mdir}/m.db", "--artifacts-destination", str(mdir / "artifacts")]
    ref = Served("mlflow", [sys.executable, "-m", "mlflow", "server", *mlflow_args], mdir)
    try:
        evtrack_args = ["server", "--backend-store-uri", str(edir / "store")]
        ours = Served("evtrack", [sys.executable, "-c", "from evtrack.cli import main; main()", *evtrack_args], edir)
    except BaseException:
        ref.stop()
        raise
    try:
        yield ref, ours
    finally:
        ref.stop()
        ours.stop()
