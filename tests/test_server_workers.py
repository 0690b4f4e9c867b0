"""Several server processes on one store: a run deleted through one worker stops taking writes
through another within the write-check TTL; a write that raced the deletion inside the TTL is
kept on the deleted run, folded the same way everywhere (visible again once it is restored)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.test_server_cli import start_server, stop

pytestmark = pytest.mark.timeout(120)

API = "/api/2.0/mlflow"


def post(server: Any, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.url + API + path, json=body, timeout=30)


class Worker:
    """An ``evtrack server`` process (as one of several workers sharing a store)."""

    def __init__(self, store: Path, ttl: str) -> None:
        self.process, self.url = start_server(
            ["server", "--backend-store-uri", str(store), "--compact-every", "0", "--write-check-ttl", ttl]
        )


@pytest.fixture
def start_two(tmp_path: Path) -> Iterator[Callable[[str], tuple[Worker, Worker]]]:
    started: list[Worker] = []

    def start(ttl: str) -> tuple[Worker, Worker]:
        started.extend([Worker(tmp_path / "shared-store", ttl), Worker(tmp_path / "shared-store", ttl)])
        return started[-2], started[-1]

    yield start
    for worker in started:
        stop(worker.process)


def new_run(server: Any) -> str:
    created = post(server, "/runs/create", {"experiment_id": "0", "start_time": 1})
    assert created.status_code == 200, created.text
    return created.json()["run"]["info"]["run_id"]


def log(server: Any, run_id: str, step: int) -> httpx.Response:
    return post(
        server,
        "/runs/log-metric",
        {"run_id": run_id, "key": "loss", "value": step / 10, "timestamp": step, "step": step},
    )


def test_a_run_deleted_through_one_worker_is_refused_by_the_other_after_the_ttl(start_two: Callable) -> None:
    first, second = start_two("1s")
    run_id = new_run(first)
    assert log(first, run_id, 1).status_code == 200  # the first worker now knows the run writable
    assert post(second, "/runs/delete", {"run_id": run_id}).status_code == 200
    time.sleep(1.2)
    refused = log(first, run_id, 2)
    assert refused.status_code == 400
    assert f"The run {run_id} must be in the 'active' state. Current state is deleted." in refused.json()["message"]
    same_worker = log(second, run_id, 3)
    assert same_worker.status_code == 400 and "'active' state" in same_worker.json()["message"]


def test_a_write_racing_the_deletion_is_kept_on_the_deleted_run_the_same_way_everywhere(start_two: Callable) -> None:
    first, second = start_two("60s")
    run_id = new_run(first)
    assert log(first, run_id, 1).status_code == 200
    assert post(second, "/runs/delete", {"run_id": run_id}).status_code == 200
    assert log(first, run_id, 2).status_code == 200  # inside the TTL: the first worker has not re-checked

    def history(server: Any) -> list[int]:
        got = httpx.get(server.url + API + "/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
        return sorted(m["step"] for m in got.json().get("metrics", []))

    def stage(server: Any) -> str:
        return httpx.get(server.url + API + "/runs/get", params={"run_id": run_id}).json()["run"]["info"][
            "lifecycle_stage"
        ]

    assert stage(first) == stage(second) == "deleted"
    assert history(first) == history(second) == [1, 2]  # nothing lost, one answer on both workers
    assert post(first, "/runs/restore", {"run_id": run_id}).status_code == 200
    assert stage(second) == "active" and history(second) == [1, 2]


def test_workers_take_turns_compacting_and_a_dead_one_does_not_block(tmp_path: Path) -> None:
    """Two passes over one inbox do the same work (one loses the commit): a worker finding another
    compacting the store skips its pass; a worker killed mid-pass leaves the turn free."""
    import signal
    import subprocess
    import sys

    from evtrack.server.background import pass_turn

    uri = str(tmp_path / "store")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom evtrack.server.background import pass_turn\n"
            f"with pass_turn({uri!r}) as ours:\n    print(ours, flush=True)\n    time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        with pass_turn(uri) as ours:
            assert ours is False
        with pass_turn(uri + "-other") as ours:
            assert ours is True  # another store's turn is its own
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with pass_turn(uri) as ours:
        assert ours is True
        with pass_turn(uri) as again:
            assert again is False  # held by this process's pass: a second thread waits its turn too


def test_the_servers_pass_deletes_folded_segments_after_thirty_seconds(tmp_path: Path) -> None:
    """A busy server lists the inbox on every read: its own passes keep folded segments 30 s, not
    an external compactor's 5 minutes. Segments 40 s old go; a fresh one stays, and nothing is lost."""
    import os

    import evtrack

    store = tmp_path / "store"
    client = evtrack.EvtrackClient(str(store))
    old_run = client.create_run("0").info.run_id
    client.log_metric(old_run, "loss", 1.0)
    client.flush()
    old = sorted((store / "events").iterdir())
    assert old
    for path in old:
        os.utime(path, (time.time() - 40, time.time() - 40))
    new_run = client.create_run("0").info.run_id
    client.flush()
    fresh = sorted(set((store / "events").iterdir()) - set(old))
    server, url = start_server(["server", "--backend-store-uri", str(store), "--compact-every", "1s"])
    try:
        deadline = time.monotonic() + 60
        while any(p.exists() for p in old) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(p.exists() for p in old)
        assert all(p.exists() for p in fresh)  # folded too, but younger than the grace
        got = httpx.get(url + API + "/runs/get", params={"run_id": old_run}, timeout=30).json()
        assert got["run"]["data"]["metrics"][0]["value"] == 1.0
        got = httpx.get(url + API + "/runs/get", params={"run_id": new_run}, timeout=30)
        assert got.status_code == 200
    finally:
        stop(server)
