"""The segment writer: buffers encoded events and ships them to the store's inbox.

``append`` only appends to a deque (atomic, no lock), so logging never waits on
the network; metric points are even queued as plain tuples and encoded by the
flushing thread. A background thread cuts a segment when the buffer passes
``flush_bytes`` or every ``flush_interval`` seconds; ``flush()`` and interpreter
exit cut one at once. A segment that cannot reach the store is parked in the
local :class:`~evtrack.eventlog.spool.Spool` and re-sent later, in key order, by this or a
later process. The buffer never grows past ``max_buffer_bytes``: past that,
``append`` parks the buffer in the spool itself (local disk, no network).

Segment keys are ``events/<ms:013d>-<writer>-<seq:06d>.jsonl``: unique per writer
and stable across retries, so a re-send re-puts the same key with the same bytes.
After ``fork`` the child gets a fresh writer id and an empty buffer.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

from evtrack.errors import StoreError
from evtrack.eventlog.events import (
    Event,
    EventDecodeError,
    MetricLogged,
    Point,
    as_point,
    decode_line,
    encode_metric_line,
)
from evtrack.eventlog.spool import Spool
from evtrack.store.base import ObjectStore

log = logging.getLogger("evtrack.eventlog.writer")

INBOX = "events/"


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What a flush achieved: everything durable in the store, or what is still parked."""

    durable: bool
    segments_written: int
    pending_segments: int
    pending_bytes: int
    error: str | None = None

    def __bool__(self) -> bool:
        return self.durable


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class SegmentWriter:
    """Buffers event lines for one store and writes them as inbox segments."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        flush_bytes: int | None = None,
        flush_interval: float | None = None,
        max_buffer_bytes: int | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.store = store
        self.flush_bytes = int(flush_bytes or _env_float("EVTRACK_FLUSH_BYTES", 4 << 20))
        self.flush_interval = flush_interval or _env_float("EVTRACK_FLUSH_INTERVAL", 1.0)
        self.max_buffer_bytes = int(max_buffer_bytes or _env_float("EVTRACK_MAX_BUFFER_BYTES", 64 << 20))
        self.flush_bytes = min(self.flush_bytes, self.max_buffer_bytes)  # else the bound is never checked
        self.spool = spool or Spool(store.uri)
        # called with (key, data, tail) after each segment this process appends (the reader's
        # hand-off); ``tail()`` gives the segment's points and other events without parsing it
        # (None: parse it)
        self.on_segment: Callable[[str, bytes, Callable[[], tuple | None] | None], None] | None = None
        self._init_process_state()

    def _init_process_state(self) -> None:
        self.writer_id = secrets.token_hex(6)
        self._eids = count(1)
        self._segments = count(1)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._buf: deque = deque()  # bytes lines, or metric tuples encoded at flush time
        self._size = 0  # approximate: updated without a lock, only steers flush timing
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._retry_at = 0.0  # monotonic time before which the store is not retried
        self._backoff = 0.0
        self._last_error: str | None = None
        self._spool_checked = False
        self._pid = os.getpid()

    # -- hot path -------------------------------------------------------------

    def next_eid(self) -> str:
        """A new event id, unique across writers: ``<writer>-<seq>``.

        The sequence is zero-padded so that comparing eids as strings (the fold's
        ``(ts, eid)`` order) keeps one writer's events in the order it wrote them
        within a millisecond ("w-10" would sort before "w-9").
        """
        return f"{self.writer_id}-{next(self._eids):010d}"

    def append(self, line: bytes) -> None:
        """Buffer one encoded event line; never touches the network."""
        self._buf.append(line)
        self._size += len(line)
        if self._size >= self.flush_bytes:
            self._over_threshold()
        if self._thread is None:
            self._start()

    def append_many(self, lines: list) -> None:
        """Buffer several encoded event lines (or ``metric_item`` tuples, encoded when cut)."""
        self._buf.extend(lines)
        self._size += sum(len(x) if x.__class__ is bytes else 150 for x in lines)
        if self._size >= self.flush_bytes:
            self._over_threshold()
        if self._thread is None:
            self._start()

    def metric_item(self, ts: int, run_id: str, key: str, value: float, step: int, timestamp: int) -> tuple:
        """A validated metric point as a buffer item for ``append_many`` (its eid taken now)."""
        return (next(self._eids), ts, run_id, key, value, step, timestamp)

    def append_metric(self, ts: int, run_id: str, key: str, value: float, step: int, timestamp: int) -> None:
        """Buffer a validated metric point; it is encoded when its segment is cut."""
        self._buf.append((next(self._eids), ts, run_id, key, value, step, timestamp))
        self._size += 150
        if self._size >= self.flush_bytes:
            self._over_threshold()
        if self._thread is None:
            self._start()

    def _over_threshold(self) -> None:
        if self._size >= self.max_buffer_bytes:
            self._park_buffer()
        self._wake.set()

    # -- segments -------------------------------------------------------------

    def _take(self) -> tuple[str, bytes, list] | None:
        with self._lock:
            buf = self._buf
            n = len(buf)
            if not n:
                return None
            self._size = 0
            items = [buf.popleft() for _ in range(n)]  # appends racing with us wait for the next cut
            seq = next(self._segments)
        prefix = self.writer_id
        lines = [
            item if item.__class__ is bytes else encode_metric_line(f"{prefix}-{item[0]:010d}", *item[1:])
            for item in items
        ]
        key = f"{INBOX}{int(time.time() * 1000):013d}-{self.writer_id}-{seq:06d}.jsonl"
        return key, b"".join(lines), items

    def _park_buffer(self) -> None:
        segment = self._take()
        if segment is not None:
            self.spool.add(segment[0], segment[1])

    def _store_available(self, force: bool) -> bool:
        return force or time.monotonic() >= self._retry_at

    def _mark_failure(self, exc: Exception) -> None:
        self._backoff = min(30.0, max(0.5, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff * (0.5 + random.random() / 2)
        self._last_error = str(exc)
        log.warning("evtrack: store %s unreachable, spooling segments locally: %s", self.store.uri, exc)

    def _mark_success(self) -> None:
        if self._last_error is not None:
            log.info("evtrack: store %s reachable again", self.store.uri)
        self._backoff = 0.0
        self._retry_at = 0.0
        self._last_error = None

    def _send_spooled(self) -> int:
        sent = 0
        for key, path in self.spool.pending():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # another process sent it
            self.store.put(key, data)
            self.spool.discard(path)
            self._appended(key, data, None)
            sent += 1
        return sent

    def _appended(self, key: str, data: bytes, items: list | None) -> None:
        if self.on_segment is not None:
            self.on_segment(key, data, None if items is None else lambda: _tail_of(items))

    def _drain(self, force: bool = False) -> int:
        """Cut a segment from the buffer and send it with anything parked; returns segments sent."""
        with self._send_lock:
            segment = self._take()
            if not self._store_available(force):
                if segment is not None:
                    self.spool.add(segment[0], segment[1])
                return 0
            sent = 0
            try:
                if not self._spool_checked or self._last_error is not None or self.spool.dir.exists():
                    sent += self._send_spooled()
                    self._spool_checked = True
                if segment is not None:
                    self.store.put(segment[0], segment[1])
                    self._appended(*segment)
                    sent += 1
                    segment = None
                self._mark_success()
            except StoreError as exc:
                if segment is not None:
                    self.spool.add(segment[0], segment[1])
                self._mark_failure(exc)
            return sent

    # -- background thread ----------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._loop, name="evtrack-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._closed:
                break
            try:
                self._drain()
            except Exception:  # the thread must survive anything; events stay parked
                log.exception("evtrack: unexpected error in the writer thread")

    # -- public controls ------------------------------------------------------

    def flush(self) -> FlushResult:
        """Send the buffer and every parked segment now; report what is not yet durable."""
        sent = self._drain(force=True)
        n, size = self.spool.count()
        return FlushResult(n == 0, sent, n, size, self._last_error if n else None)

    def request_flush(self) -> None:
        """Ask the background thread to cut and send a segment now, without waiting for it."""
        self._wake.set()
        if self._thread is None:
            self._start()

    def pending_bytes(self) -> int:
        """Bytes buffered in memory, not yet cut into a segment."""
        return self._size

    def close(self) -> FlushResult:
        """Flush and stop the background thread."""
        result = self.flush()
        self._closed = True
        self._wake.set()
        return result

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's buffer, thread and locks; take a new id."""
        self._init_process_state()


def _tail_of(items: list) -> tuple[list[Point], list[Event]] | None:
    """What a reader folds of a segment cut from ``items`` (``split_points`` of its events), built
    from the buffer without parsing the segment (metric points straight from their tuples); None
    if a line does not decode."""
    points: list[Point] = []
    events: list[Event] = []
    add_point = points.append
    for item in items:
        if item.__class__ is bytes:
            try:
                event = decode_line(item)
            except EventDecodeError:
                return None
            if event.__class__ is MetricLogged:
                add_point(as_point(event))  # type: ignore[arg-type]
            else:
                events.append(event)
        else:
            _n, _ts, run_id, key, value, step, timestamp = item
            add_point((run_id, key, float(value), step, timestamp))
    return points, events
