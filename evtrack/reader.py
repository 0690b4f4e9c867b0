"""Reads a store: the newest manifest's tables with the inbox tail folded on top.

The state tables of the manifest are loaded into a fold state; every inbox
segment the manifest does not cover (the tail) is folded on top with the same
fold, so a tail status change or a newer metric point overrides the compacted
value. Metric histories come from the ``metrics`` table plus the tail's points.
Segments are immutable, so each tail segment is fetched once per process.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from evtrack import manifest as mf
from evtrack import tables
from evtrack.errors import ObjectNotFoundError
from evtrack.events import BadLine, Event, MetricLogged, decode_segment
from evtrack.fold import MetricSeries, State, apply, metric_rank
from evtrack.store.base import ObjectStore
from evtrack.writer import INBOX

_FETCH_THREADS = 16
_MAX_RESETS = 5


class StoreReader:
    """The folded state of a store (tables + tail), refreshed incrementally."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.manifest = mf.Manifest()
        self.state = State()
        self.tail_series: dict[tuple[str, str], MetricSeries] = {}
        self.bad_lines: list[BadLine] = []
        self._folded: set[str] = set()
        self._segments: dict[str, list[Event]] = {}  # decoded tail segments, by key
        self._lock = threading.Lock()

    def _fetch(self, key: str) -> list[Event] | None:
        cached = self._segments.get(key)
        if cached is not None:
            return cached
        try:
            data = self.store.get(key)
        except ObjectNotFoundError:
            return None
        events, bad = decode_segment(data, key)
        self.bad_lines.extend(bad)
        self._segments[key] = events
        return events

    def _reset(self, version: int) -> None:
        self.manifest = mf.load(self.store, version)
        self.state = State()
        self.tail_series = {}
        self._folded = set()
        self._segments = {k: v for k, v in self._segments.items() if not self.manifest.is_folded(k)}
        if version:
            from evtrack.table_files import read_files

            loaded = {name: read_files(self.store, [f["path"] for f in self.manifest.files(name)],
                                       tables.schema(name))
                      for name in tables.STATE_TABLES}
            tables.load_state(loaded, self.state)

    def _fold(self, events: list[Event]) -> None:
        st = self.state
        for event in events:
            if event.__class__ is MetricLogged:
                e = event
                per_run = st.metrics.setdefault(e.run_id, {})
                series = per_run.get(e.key)
                if series is None:
                    per_run[e.key] = MetricSeries(latest=(e.step, e.timestamp, e.value))
                elif metric_rank(e.step, e.timestamp, e.value) > metric_rank(*series.latest):
                    series.latest = (e.step, e.timestamp, e.value)
                tail = self.tail_series.get((e.run_id, e.key))
                if tail is None:
                    tail = self.tail_series[(e.run_id, e.key)] = MetricSeries()
                tail.add(e.step, e.timestamp, e.value)
            else:
                apply(event, st)

    def refresh(self) -> State:
        """Bring the state up to the newest manifest plus every tail segment."""
        with self._lock:
            for _ in range(_MAX_RESETS):
                target = mf.latest_version(self.store)
                if target != self.manifest.version:
                    self._reset(target)
                new = [i.key for i in self.store.list(INBOX)
                       if i.key.endswith(".jsonl") and i.key not in self._folded
                       and not self.manifest.is_folded(i.key)]
                if len(new) > 2:
                    with ThreadPoolExecutor(min(_FETCH_THREADS, len(new))) as pool:
                        blobs = list(pool.map(self._fetch, new))
                else:
                    blobs = [self._fetch(k) for k in new]
                vanished = False
                for key, events in zip(new, blobs):
                    if events is None:
                        vanished = True  # folded and deleted by a compactor since we listed it
                        continue
                    self._fold(events)
                    self._folded.add(key)
                if not vanished:
                    break
            return self.state

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, int, float]]:
        """Every point of a metric: the compacted history plus the tail, exact duplicates once."""
        series = MetricSeries()
        files = [f["path"] for f in self.manifest.files("metrics")]
        if files:
            from evtrack.table_files import read_files

            data = read_files(self.store, files, tables.schema("metrics"), ["value", "step", "timestamp"],
                              filters=[("run_id", "=", run_id), ("key", "=", key)])
            for value, step, ts in zip(data.column("value").to_pylist(), data.column("step").to_pylist(),
                                       data.column("timestamp").to_pylist()):
                series.add(step, ts, value)
        tail = self.tail_series.get((run_id, key))
        if tail is not None:
            for (step, ts, _), value in tail.points.items():
                series.add(step, ts, value)
        return series.history()
