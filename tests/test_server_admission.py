"""Admission limits of the tracking server: requests past the concurrency limit answered 429
(MLflow-shaped, with Retry-After), a client that does not finish its body answered 408 after the
body timeout, health probes always admitted — on an in-process server and on `evtrack server`."""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlparse

import httpx
import orjson
import pytest

from tests.test_server_cli import start_server, stop

pytestmark = pytest.mark.timeout(120)

SEARCH = "/api/2.0/mlflow/experiments/search"


def slow_client(url: str, path: str = SEARCH, declared: int = 200) -> socket.socket:
    """A connection that sends its headers and part of its body, then goes quiet (slowloris)."""
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parsed.hostname}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"max_results": ')
    return sock


def response_of(sock: socket.socket) -> tuple[int, dict[str, Any], float]:
    """(status, JSON body, seconds waited) of what the server answered on ``sock``."""
    started = time.monotonic()
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(body) if body else {}, time.monotonic() - started


def _length(data: bytes) -> int:
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 0


def test_requests_past_the_concurrency_limit_are_answered_429_until_one_ends(server_factory: Any) -> None:
    server = server_factory(max_concurrent_requests=2, body_timeout=None)
    holders = [slow_client(server.url), slow_client(server.url)]
    time.sleep(0.3)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        refused = http.post(SEARCH, json={})
        health = http.get("/health")
        holders[0].sendall(b"10}" + b" " * (200 - len(b'{"max_results": 10}')))
        status, body, _ = response_of(holders[0])
        holders[0].close()
        admitted = http.post(SEARCH, json={})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "working on 2 requests" in refused.json()["message"]
    assert health.status_code == 200 and health.text == "OK"
    assert status == 200 and "experiments" in body
    assert admitted.status_code == 200
    holders[1].close()


def test_a_body_that_never_arrives_is_answered_408_and_holds_nothing(server_factory: Any) -> None:
    server = server_factory(body_timeout=1.0)
    sock = slow_client(server.url)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        started = time.monotonic()
        meanwhile = http.post(SEARCH, json={})
        answered = time.monotonic() - started
    status, body, waited = response_of(sock)
    sock.close()
    assert meanwhile.status_code == 200 and answered < 0.9
    assert status == 408 and body["error_code"] == "BAD_REQUEST"
    assert "did not arrive within 1 s" in body["message"]
    assert 0.3 < waited < 3.0


def test_evtrack_server_takes_the_admission_options(tmp_path: Any) -> None:
    process, url = start_server(
        [
            "server",
            "--backend-store-uri",
            str(tmp_path / "store"),
            "--max-concurrent-requests",
            "1",
            "--body-timeout",
            "1s",
        ]
    )
    try:
        sock = slow_client(url)
        time.sleep(0.3)
        refused = httpx.post(url + SEARCH, json={}, timeout=10)
        status, body, _ = response_of(sock)
        sock.close()
        after = httpx.post(url + SEARCH, json={}, timeout=10)
    finally:
        stop(process)
    assert refused.status_code == 429 and refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert status == 408 and "did not arrive within 1 s" in body["message"]
    assert after.status_code == 200


def test_bad_admission_options_are_refused_by_the_cli(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from evtrack.cli import cli

    result = CliRunner().invoke(
        cli, ["server", "--backend-store-uri", str(tmp_path), "--max-concurrent-requests", "-1"]
    )
    assert result.exit_code == 2 and "--max-concurrent-requests" in result.output
