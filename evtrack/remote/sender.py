"""The background sender: ``log_*`` calls queued in memory, shipped as ``runs/log-batch`` requests.

``add_*`` only appends to a deque (no lock, no network). Every ``flush_interval`` seconds
(``EVTRACK_FLUSH_INTERVAL``, 1 s), or as soon as 1,000 points wait, the thread takes the
whole queue and turns it into requests: per run, metrics, params and tags in MLflow's
limits (1,000 metrics, 100 params, 100 tags, 1,000 items per request), in the order they
were logged; other calls queued with them (a run's end, a tag deleted) are requests of
their own, sent in their place. So a training loop sends one request per run per flush
window rather than one per call.

Each request has an id ``<ms>-<sender>-<seq>``, stable across retries (and sent as the
``X-Evtrack-Batch-Id`` header). A request the server does not acknowledge after the
transport's retries (connection refused, 5xx, 429, or 401/403) is parked, with everything
queued after it, in the local :class:`~evtrack.eventlog.spool.Spool` of the tracking URI,
and sent later in id order — by this process once the server answers again, or by the
next process that uses the URI. A request the server rejects as invalid (4xx) cannot
succeed by retrying: it is dropped with a warning and reported by ``flush()``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import threading
import time
from collections import deque
from itertools import count
from typing import Any

from evtrack.errors import EvtrackError, StoreError
from evtrack.eventlog.spool import Spool
from evtrack.eventlog.writer import FlushResult
from evtrack.remote.transport import AuthenticationError, Transport

log = logging.getLogger("evtrack.remote.sender")

MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ITEMS = 1000, 100, 100, 1000
WAKE_AT = 1000  # queued items that wake the thread before the window ends
BATCH_ID_HEADER = "X-Evtrack-Batch-Id"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def json_double(value: float) -> float | str:
    """A double as protobuf's JSON spells it (MLflow's servers read NaN and infinities as strings)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def halves(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``runs/log-batch`` payload cut in two (to find the items a server refuses); [] for one item."""
    items = [("metrics", x) for x in payload.get("metrics") or ()]
    items += [("params", x) for x in payload.get("params") or ()]
    items += [("tags", x) for x in payload.get("tags") or ()]
    if len(items) < 2:
        return []
    out = []
    for part in (items[: len(items) // 2], items[len(items) // 2 :]):
        half: dict[str, Any] = {"run_id": payload["run_id"], "metrics": [], "params": [], "tags": []}
        for kind, item in part:
            half[kind].append(item)
        out.append(half)
    return out


def batches(run_id: str, items: list[tuple]) -> list[dict[str, Any]]:
    """``runs/log-batch`` payloads for one run's items (in order), each within MLflow's limits."""
    out: list[dict[str, Any]] = []
    metrics: list[dict] = []
    params: list[dict] = []
    tags: list[dict] = []

    def cut() -> None:
        nonlocal metrics, params, tags
        if metrics or params or tags:
            out.append({"run_id": run_id, "metrics": metrics, "params": params, "tags": tags})
        metrics, params, tags = [], [], []

    for item in items:
        kind = item[0]
        if kind == "m":
            if len(metrics) >= MAX_METRICS or len(metrics) + len(params) + len(tags) >= MAX_ITEMS:
                cut()
            metrics.append({"key": item[2], "value": json_double(item[3]), "timestamp": item[4], "step": item[5]})
        elif kind == "p":
            if len(params) >= MAX_PARAMS or len(metrics) + len(params) + len(tags) >= MAX_ITEMS:
                cut()
            params.append({"key": item[2], "value": item[3]})
        else:  # "t"
            if len(tags) >= MAX_TAGS or len(metrics) + len(params) + len(tags) >= MAX_ITEMS:
                cut()
            tags.append({"key": item[2], "value": item[3]})
    cut()
    return out


def requests_of(items: list[tuple]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, endpoint, payload) of a window's queued items, in an order that keeps each
    run's writes in the order they were made: log items are grouped per run between two
    other calls, which are sent in their place."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    per_run: dict[str, list[tuple]] = {}

    def emit_logs() -> None:
        for run_id, run_items in per_run.items():
            out.extend(("POST", "runs/log-batch", payload) for payload in batches(run_id, run_items))
        per_run.clear()

    for item in items:
        if item[0] == "op":
            emit_logs()
            out.append((item[1], item[2], item[3]))
        else:
            per_run.setdefault(item[1], []).append(item)
    emit_logs()
    return out


class BatchSender:
    """Queues writes to one server and sends them on a background thread."""

    def __init__(self, transport: Transport, spool: Spool | None = None, flush_interval: float | None = None) -> None:
        self.transport = transport
        self.spool = spool or Spool(transport.base)
        self.flush_interval = flush_interval or _env_float("EVTRACK_FLUSH_INTERVAL", 1.0)
        self.retries = 3  # per request before it is parked (a few seconds of backoff)
        self._init_process_state()

    def _init_process_state(self) -> None:
        self.sender_id = secrets.token_hex(6)
        self._seq = count(1)
        self._queue: deque = deque()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._retry_at = 0.0
        self._backoff = 0.0
        self._last_error: str | None = None
        self._rejected: list[str] = []
        self._spool_checked = False
        self.sent_requests = 0
        self.acknowledged_points = 0

    # -- hot path -------------------------------------------------------------

    def add_metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        """Queue one validated metric point."""
        q = self._queue
        q.append(("m", run_id, key, value, timestamp, step))
        if len(q) >= WAKE_AT:
            self._wake.set()
        if self._thread is None:
            self._start()

    def add_items(self, items: list[tuple]) -> None:
        """Queue ``("m", run, key, value, ts, step)``, ``("p", run, key, value)`` and
        ``("t", run, key, value)`` items."""
        self._queue.extend(items)
        if len(self._queue) >= WAKE_AT:
            self._wake.set()
        if self._thread is None:
            self._start()

    def add_call(self, method: str, endpoint: str, payload: dict[str, Any]) -> None:
        """Queue another call (a run's end, a tag deleted) to be sent in its place among the logs."""
        self._queue.append(("op", method, endpoint, payload))
        self._wake.set()
        if self._thread is None:
            self._start()

    # -- sending --------------------------------------------------------------

    def _new_id(self) -> str:
        return f"{int(time.time() * 1000):013d}-{self.sender_id}-{next(self._seq):08d}"

    def _take(self) -> list[tuple[str, dict[str, Any]]]:
        q = self._queue
        n = len(q)
        items = [q.popleft() for _ in range(n)]
        return [(self._new_id(), {"method": m, "endpoint": e, "payload": p}) for m, e, p in requests_of(items)]

    def _park(self, requests: list[tuple[str, dict[str, Any]]]) -> None:
        for rid, request in requests:
            self.spool.add(rid, json.dumps(request, allow_nan=True).encode())

    def _send(self, rid: str, request: dict[str, Any]) -> None:
        self.transport.call(
            request["endpoint"],
            request["payload"],
            method=request["method"],
            headers={BATCH_ID_HEADER: rid},
            retries=self.retries,
        )
        self.sent_requests += 1
        self.acknowledged_points += len(request["payload"].get("metrics") or ())

    def _fail(self, exc: EvtrackError) -> None:
        self._backoff = min(30.0, max(0.5, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff * (0.5 + random.random() / 2)
        if self._last_error is None:
            log.warning(
                "evtrack: %s did not acknowledge, keeping requests in %s: %s",
                self.transport.base,
                self.spool.dir,
                exc.message,
            )
        self._last_error = exc.message

    def _succeed(self) -> None:
        if self._last_error is not None:
            log.info("evtrack: %s answers again", self.transport.base)
        self._backoff, self._retry_at, self._last_error = 0.0, 0.0, None

    def _send_one(self, rid: str, request: dict[str, Any]) -> bool:
        """Send a request; False when the server is unavailable (the caller parks it)."""
        try:
            self._send(rid, request)
        except (StoreError, AuthenticationError) as exc:  # unavailable, or credentials to fix: keep it
            self._fail(exc)
            return False
        except EvtrackError as exc:  # refused as invalid: retrying cannot help
            parts = halves(request["payload"]) if request["endpoint"] == "runs/log-batch" else []
            if parts:  # keep what the server takes: only the refused items are dropped
                return all(self._send_one(f"{rid}.{i}", {**request, "payload": part}) for i, part in enumerate(parts))
            message = f"{request['endpoint']} refused by {self.transport.base}: {exc.message}"
            log.warning("evtrack: %s", message)
            self._rejected.append(message)
        return True

    def _send_spooled(self) -> bool:
        for rid, path in self.spool.pending():
            try:
                request = json.loads(path.read_bytes())
            except FileNotFoundError:
                continue  # another process sent it
            if not self._send_one(rid, request):
                return False
            self.spool.discard(path)
        return True

    def drain(self, force: bool = False, retries: int | None = None) -> int:
        """Send what is queued (after anything parked); returns requests acknowledged."""
        with self._send_lock:
            before = self.sent_requests
            requests = self._take()
            if not force and time.monotonic() < self._retry_at:
                self._park(requests)
                return 0
            if not self._spool_checked or self._last_error is not None or self.spool.dir.exists():
                if not self._send_spooled():
                    self._park(requests)
                    return self.sent_requests - before
                self._spool_checked = True
            for i, (rid, request) in enumerate(requests):
                if not self._send_one(rid, request):
                    self._park(requests[i:])
                    break
            else:
                self._succeed()
            return self.sent_requests - before

    _drain = drain  # the name evtrack.read.backend's fork hook calls

    # -- thread and controls --------------------------------------------------

    def _start(self) -> None:
        with self._send_lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._loop, name="evtrack-http-sender", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._closed:
                break
            try:
                self.drain()
            except Exception:  # the thread must survive anything; requests stay parked
                log.exception("evtrack: unexpected error in the http sender thread")

    def flush(self) -> FlushResult:
        """Send everything now; report what the server has not acknowledged (parked requests)."""
        sent = self.drain(force=True)
        n, size = self.spool.count()
        rejected, self._rejected = self._rejected, []
        error = self._last_error if n else None
        if rejected:
            error = "; ".join(([error] if error else []) + rejected)
        return FlushResult(n == 0 and not rejected, sent, n, size, error)

    def close(self) -> FlushResult:
        """Flush and stop the thread."""
        result = self.flush()
        self._closed = True
        self._wake.set()
        return result

    def reset_after_fork(self) -> None:
        """In a forked child: an empty queue, no thread, a new sender id."""
        self._init_process_state()
