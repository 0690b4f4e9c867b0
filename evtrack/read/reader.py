"""Reads a store: the newest manifest's tables with the inbox tail folded on top.

The tail is every inbox segment the manifest does not cover. Its events are
folded, with the same fold as the compactor, on top of the compacted state of
the runs and experiments they touch — so a tail status change or a newer metric
point overrides the compacted value; it is not a plain union.

State is loaded lazily: the experiment tables and each feature domain's tables (the registry's) as a
whole (they are small), and a run's rows only when that run is read (a row
filter on its partition's files). Each tail segment is fetched once per process (segments are immutable).
Metric histories come from the ``metrics`` table plus the tail's points.

Freshness: a refresh lists the store (the manifests, the inbox) only when that can tell it
something. Every segment this process's own writer appends is handed to the reader, so a
process sees its own writes after ``flush()`` without listing. A local directory store tells
when a directory changed (one ``stat``, ``listing_token``): the listing is skipped exactly
when nothing changed, so another process's flushed writes are seen at once. A store that
cannot tell (S3) is listed at most once per ``EVTRACK_READ_FRESHNESS`` seconds (default 1;
0 lists on every call): another process's writes show up within that window, and a read that
misses (a run or experiment id not found) lists again before answering.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, TypeVar

from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.errors import InvalidParameterError, ObjectNotFoundError
from evtrack.eventlog.events import BadLine, Event, Point, decode_segment, split_points
from evtrack.eventlog.native_decode import segment_as_tail
from evtrack.state.domains import domain, domain_of
from evtrack.state.fold import RUN_KEYED, MetricSeries, State, apply
from evtrack.store.base import ObjectStore, list_keys, listing_token
from evtrack.eventlog.writer import INBOX
from evtrack.read.tail_points import TailPoints

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")
Tail = tuple[list[Point], list[Event]]  # a tail segment: its metric points, its other events in order
_FETCH_THREADS = 16
_MAX_RESETS = 5
_RUN_CACHE = 4096
_OWN_MAX_BYTES = 64 << 20  # own segments held for the next refresh; beyond, the next one lists
FRESHNESS_ENV = "EVTRACK_READ_FRESHNESS"


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _fetch_pool() -> ThreadPoolExecutor:
    """The threads every reader of this process fetches tail segments with (started once: a
    pool per listing spent more on starting its threads than on a local store's reads)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(_FETCH_THREADS, thread_name_prefix="evtrack-tail-fetch")
    return _pool


def _forget_pool_in_child() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()  # the parent's threads do not exist in a fork


os.register_at_fork(after_in_child=_forget_pool_in_child)


def _decoded(data: bytes, key: str) -> tuple[Tail, list[BadLine]]:
    """A tail segment's points, other events and bad lines: in one native parse when it holds only
    the common events (metric points, params, tags, run events), else line by line."""
    tail = segment_as_tail(data)
    if tail is not None:
        return tail, []
    events, bad = decode_segment(data, key)
    return split_points(events), bad


def read_freshness() -> float:
    """Seconds a store listing is reused for (``EVTRACK_READ_FRESHNESS``, default 1)."""
    raw = os.environ.get(FRESHNESS_ENV)
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses NaN
        raise InvalidParameterError(f"{FRESHNESS_ENV} must be a number of seconds >= 0, got {raw!r}")
    return value


class StoreReader:
    """Tables of the newest manifest plus the tail, read lazily and refreshed incrementally."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.manifest = mf.Manifest()
        self.bad_lines: list[BadLine] = []
        self._lock = threading.RLock()
        self._segments: dict[str, Tail] = {}  # decoded tail segments, by key
        self._listed_at: float | None = None  # monotonic time the last listing started
        self._listed_tokens: tuple | None = None  # the store's listing tokens when it started
        # segments this process appended, not yet folded: (key, data, what builds their Tail or None)
        self._own: list[tuple[str, bytes, Callable[[], Tail | None] | None]] = []
        self._own_bytes = 0
        self._own_lock = threading.Lock()
        self._taking_own = False  # set by the first refresh: a reader never read holds nothing
        self._must_list = False  # own segments dropped (too many bytes), or a commit here: list next time
        self._known_folded: set[str] = set()  # inbox keys a manifest read here folds (see _unfolded_inbox)
        self._own_staged: dict[str, tuple[bytes, Callable[[], Tail | None] | None]] = {}
        self._reset(0)
        mf.watch_commits(self)

    # -- tail -----------------------------------------------------------------

    def _reset(self, version: int) -> None:
        if version < self.manifest.version:
            self._known_folded = set()  # keys folded by a newer manifest than the one moved to
        self.manifest = mf.load(self.store, version) if version else mf.Manifest()
        self._folded: set[str] = set()
        self._segments = {k: v for k, v in self._segments.items() if not self.manifest.is_folded(k)}
        self.tail_runs: dict[str, list[Event]] = {}  # a run's tail events, but its metric points
        self.tail_experiments: list[Event] = []
        self.tail_domains: dict[str, list[Event]] = {}  # a feature domain's events (the registry's)
        self.tail_series: dict[str, dict[str, MetricSeries]] = {}  # run -> key -> its tail points
        self.tail_points = TailPoints()  # the same points as columns, for search snapshots
        self._experiments: State | None = None
        self._domains: dict[str, State] = {}
        self._runs: OrderedDict[str, State] = OrderedDict()

    def _fetch(self, key: str) -> Tail | None:
        cached = self._segments.get(key)
        if cached is not None:
            return cached
        staged = self._own_staged.pop(key, None)
        if staged is not None:  # our own: from memory
            tail = self._segments[key] = self._own_tail(key, *staged)
            return tail
        try:
            data = self.store.get(key)
        except ObjectNotFoundError:
            return None
        tail, bad = _decoded(data, key)
        self.bad_lines.extend(bad)
        self._segments[key] = tail
        return tail

    def _add_points(self, points: list[Point]) -> None:
        """Fold metric points into the tail: distinct points into their series and ``tail_points``,
        a cached run's latest values raised (the most of a tail: kept lean)."""
        tail_series, runs, add = self.tail_series, self._runs, self.tail_points.add
        last_run: str | None = None
        per_run: dict[str, MetricSeries] = {}
        cached: State | None = None
        for run_id, key, value, step, timestamp in points:
            if run_id != last_run:
                per_run = tail_series.get(run_id)
                if per_run is None:
                    per_run = tail_series[run_id] = {}
                last_run, cached = run_id, runs.get(run_id)
            series = per_run.get(key)
            if series is None:
                series = per_run[key] = MetricSeries()
            if series.add(step, timestamp, value):
                add(run_id, key, value, step, timestamp)
                if cached is not None:
                    cached.note_latest(run_id, key, step, timestamp, value)

    def _add_tail(self, tail: Tail) -> None:
        points, events = tail
        if points:
            self._add_points(points)
        tail_runs, runs = self.tail_runs, self._runs
        for event in events:
            run_id = getattr(event, "run_id", None)
            dom = domain_of(event)
            if dom is not None:
                self.tail_domains.setdefault(dom.name, []).append(event)
                folded = self._domains.get(dom.name)
                if folded is not None:
                    apply(event, folded)
                continue
            if run_id is None:
                self.tail_experiments.append(event)
                if self._experiments is not None:
                    apply(event, self._experiments)
                continue
            tail_runs.setdefault(run_id, []).append(event)
            cached = runs.get(run_id)
            if cached is not None:
                apply(event, cached)

    def note_own_segment(self, key: str, data: bytes, tail: Callable[[], Tail | None] | None = None) -> None:
        """Take a segment this process just appended (called by its writer, on any thread): the
        next refresh folds it without listing. ``tail()``, when given, builds its points and other
        events from the writer's buffer, without parsing ``data``. Ignored until this reader was
        first refreshed."""
        if not self._taking_own:
            return
        with self._own_lock:
            if self._own_bytes + len(data) > _OWN_MAX_BYTES:
                self._own.clear()
                self._own_bytes = 0
                self._must_list = True  # too much to hold: the next refresh lists instead
                return
            self._own.append((key, data, tail))
            self._own_bytes += len(data)

    def note_commit(self) -> None:
        """This process committed a manifest of the store (compacted it): list on the next refresh."""
        self._must_list = True

    def _stage_own(self) -> None:
        """Move the own segments handed over so far to ``_own_staged`` (by key), where a listing
        finds them before it would fetch them, and ``_fold_own`` folds what is left."""
        with self._own_lock:
            own, self._own, self._own_bytes = self._own, [], 0
        for key, data, built in own:
            self._own_staged[key] = (data, built)

    def _own_tail(self, key: str, data: bytes, built: Callable[[], Tail | None] | None) -> Tail:
        tail = built() if built is not None else None
        if tail is None:
            tail, bad = _decoded(data, key)
            self.bad_lines.extend(bad)
        return tail

    def _fold_own(self) -> None:
        self._stage_own()
        staged, self._own_staged = self._own_staged, {}
        for key, (data, built) in staged.items():
            if key in self._folded or self.manifest.is_folded(key):
                continue
            tail = self._segments.get(key)
            if tail is None:
                tail = self._segments[key] = self._own_tail(key, data, built)
            self._add_tail(tail)
            self._folded.add(key)

    @property
    def listed_at(self) -> float | None:
        """When (``time.monotonic``) the newest listing folded here started; None before any."""
        return self._listed_at

    def refresh(self, max_age: float | None = None, exact: bool = True) -> bool:
        """Catch up with this process's own appended segments, then with the newest manifest and
        every tail segment by listing the store — unless its listing tokens say nothing changed
        (a local store), or, on a store that cannot tell (or with ``exact`` False, on any store),
        it was listed less than ``max_age`` seconds ago (default: ``EVTRACK_READ_FRESHNESS``).
        Returns whether the store was listed."""
        window = read_freshness() if max_age is None else max_age
        called = time.monotonic()
        with self._lock:
            self._taking_own = True
            if not self._must_list and self._listed_at is not None and self._listed_at > called:
                # Another thread listed (or found nothing changed) after this call began, while
                # this one waited for the lock: that listing saw everything this call must see.
                # Under load, concurrent requests would otherwise list one after another.
                self._fold_own()
                return False
            started = time.monotonic()
            tokens = (listing_token(self.store, INBOX), listing_token(self.store, mf.MANIFESTS))
            if not self._must_list and self._listed_at is not None:
                if None not in tokens and tokens == self._listed_tokens:
                    self._listed_at = started  # the store can tell nothing changed: as good as a listing
                    self._fold_own()
                    return False
                if not (exact and None not in tokens) and window > 0 and started - self._listed_at < window:
                    self._fold_own()
                    return False
            self._must_list = False
            # Own segments wait for the listing: after a compaction (often this process's own)
            # the newest manifest has folded most of them, and folding them into the tail of the
            # older one first would be work thrown away by the reset.
            self._stage_own()
            self._list()
            self._listed_at, self._listed_tokens = started, tokens
            self._fold_own()  # those the listing did not reach, and those appended meanwhile
            return True

    def _list(self) -> None:
        with self._lock:
            for _ in range(_MAX_RESETS):
                target = mf.latest_version(self.store)
                if target != self.manifest.version:
                    self._reset(target)
                new = self._unfolded_inbox()
                if len(new) > 2:
                    blobs = list(_fetch_pool().map(self._fetch, new))
                else:
                    blobs = [self._fetch(k) for k in new]
                vanished = False
                for key, tail in zip(new, blobs):
                    if tail is None:
                        vanished = True  # folded and deleted by a compactor since we listed it
                        continue
                    self._add_tail(tail)
                    self._folded.add(key)
                # A compactor that committed after we read the manifest may have deleted
                # segments before we listed: then they are in a newer manifest. Go again.
                if not vanished and not mf.list_versions(self.store, start_after=self.manifest.version):
                    return

    def _unfolded_inbox(self) -> list[str]:
        """The inbox keys neither in the tail nor folded by the manifest. Folded segments stay in
        the inbox for the compactor's grace period (minutes), so most keys listed are known: a key a
        manifest folds stays folded in every later one, and is remembered across manifests."""
        folded, known, manifest = self._folded, self._known_folded, self.manifest
        listed = set(list_keys(self.store, INBOX))
        new = []
        for key in sorted(listed.difference(folded, known)):  # mostly the keys since the last listing
            if mf.parse_segment_key(key) is None:
                continue
            if manifest.is_folded(key):
                known.add(key)
            else:
                new.append(key)
        if len(known) > 2 * len(listed) + 1000:  # deleted after the grace period: forget them
            self._known_folded = known & listed
        return new

    # -- views ----------------------------------------------------------------

    def _read_state(self, names: tuple[str, ...], partition: str, filters=None) -> dict:
        from evtrack.state.table_files import read_files

        out = {}
        for name in names:
            keys = [f["path"] for f in self.manifest.files(name) if f.get("partition") == partition]
            if keys:
                out[name] = read_files(self.store, keys, tables.schema(name), filters=filters)
        return out

    def experiments(self) -> State:
        """The state of every experiment (tables + tail)."""
        with self._lock:
            if self._experiments is None:
                st = State()
                if self.manifest.version:
                    tables.load_state(self._read_state(tables.EXPERIMENT_TABLES, tables.EXPERIMENT_PARTITION), st)
                for event in self.tail_experiments:
                    apply(event, st)
                self._experiments = st
            return self._experiments

    def domain(self, name: str) -> State:
        """A state holding one feature domain's part (the registry's: tables + tail)."""
        with self._lock:
            st = self._domains.get(name)
            if st is None:
                st = State()
                if self.manifest.version:
                    tables.load_state(self._read_state(domain(name).tables, tables.EXPERIMENT_PARTITION), st)
                for event in self.tail_domains.get(name, ()):
                    apply(event, st)
                self._domains[name] = st
            return st

    def read_domain(self, name: str, read: "Callable[[State], T]") -> "T":
        """``read`` applied to a feature domain's state while no refresh folds into it (for a reader
        on another thread than the refreshes: take what it needs, or a copy)."""
        with self._lock:
            return read(self.domain(name))

    def run(self, run_id: str) -> State:
        """A state holding one run (tables + tail) and every experiment."""
        with self._lock:
            st = self._runs.get(run_id)
            if st is None:
                st = State()
                if self.manifest.version:
                    rows = self._read_state(
                        tables.RUN_TABLES, tables.partition_of(run_id), filters=[("run_id", "=", run_id)]
                    )
                    tables.load_state(rows, st)
                self._fold_tail_into(run_id, st)
                self._runs[run_id] = st
                if len(self._runs) > _RUN_CACHE:
                    self._runs.popitem(last=False)
            else:
                self._runs.move_to_end(run_id)
            st.experiments = self.experiments().experiments
            return st

    def runs(
        self, run_ids: list[str], base_rows: "Callable[[list[str]], dict[str, pa.Table]]", version: int
    ) -> list[State]:
        """The states of several runs, as ``run`` gives them; the compacted rows of those not
        cached come from one call of ``base_rows(ids)`` — rows of manifest ``version`` (the query
        engine reads them from its DuckDB tables) — rather than a filtered read of each run's
        partition files, when the reader is still at that version."""
        with self._lock:
            missing = [rid for rid in run_ids if rid not in self._runs]
            if missing and self.manifest.version and self.manifest.version == version:
                merged = tables.load_state(base_rows(missing))
                for rid in missing:
                    st = State()
                    for attr in RUN_KEYED:
                        found = getattr(merged, attr)
                        if rid in found:
                            getattr(st, attr)[rid] = found[rid]
                    self._fold_tail_into(rid, st)
                    self._runs[rid] = st
                while len(self._runs) > _RUN_CACHE:
                    self._runs.popitem(last=False)
            return [self.run(rid) for rid in run_ids]

    def _fold_tail_into(self, run_id: str, st: State) -> None:
        """A run's tail on its compacted state: its events, and the latest of its tail metric
        points (a state read here keeps latest values, not histories)."""
        for event in self.tail_runs.get(run_id, ()):
            apply(event, st)
        for key, series in self.tail_series.get(run_id, {}).items():
            if series.latest is not None:
                st.note_latest(run_id, key, *series.latest)

    def tail_run_ids(self) -> list[str]:
        """Runs with events in the tail."""
        with self._lock:
            return list(dict.fromkeys([*self.tail_runs, *self.tail_series]))

    def metric_history(self, run_id: str, key: str) -> "pa.Table":
        """Every point of a metric (step, timestamp, value): compacted history plus the tail,
        exact duplicates once, ordered by step, timestamp, then value (NaN last)."""
        import pyarrow as pa

        parts = []
        files = [f["path"] for f in self.manifest.files("metrics")]
        if files:
            from evtrack.state.table_files import read_files

            parts.append(
                read_files(
                    self.store,
                    files,
                    tables.schema("metrics"),
                    ["step", "timestamp", "value"],
                    filters=[("run_id", "=", run_id), ("key", "=", key)],
                )
            )
        tail = self.tail_series.get(run_id, {}).get(key)
        if tail is not None:
            points = list(tail.points.items())
            parts.append(
                pa.table(
                    {
                        "step": pa.array([k[0] for k, _ in points], pa.int64()),
                        "timestamp": pa.array([k[1] for k, _ in points], pa.int64()),
                        "value": pa.array([v for _, v in points], pa.float64()),
                    }
                )
            )
        if not parts:
            return pa.table(
                {
                    "step": pa.array([], pa.int64()),
                    "timestamp": pa.array([], pa.int64()),
                    "value": pa.array([], pa.float64()),
                }
            )
        data = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
        if _strictly_increasing(data):  # as a compacted history usually is: nothing to sort or drop
            return data
        data = data.sort_by([("step", "ascending"), ("timestamp", "ascending"), ("value", "ascending")])
        return _drop_adjacent_duplicates(data)


def _strictly_increasing(data: "pa.Table") -> bool:
    """Whether the rows are in strictly increasing (step, timestamp) order."""
    import pyarrow.compute as pc

    n = data.num_rows
    if n <= 1:
        return True
    step, ts = (data.column(c).combine_chunks() for c in ("step", "timestamp"))
    s0, s1, t0, t1 = step.slice(0, n - 1), step.slice(1), ts.slice(0, n - 1), ts.slice(1)
    return pc.all(pc.or_(pc.less(s0, s1), pc.and_(pc.equal(s0, s1), pc.less(t0, t1)))).as_py()


def _drop_adjacent_duplicates(data: "pa.Table") -> "pa.Table":
    """Keep the first of each run of equal (step, timestamp, value) rows of a sorted table (NaN == NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = data.num_rows
    if n <= 1:
        return data
    step, ts, value = (data.column(c).combine_chunks() for c in ("step", "timestamp", "value"))
    prev, cur = value.slice(0, n - 1), value.slice(1)
    same_value = pc.or_(pc.equal(prev, cur), pc.and_(pc.is_nan(prev), pc.is_nan(cur)))
    same = pc.and_(
        pc.and_(pc.equal(step.slice(0, n - 1), step.slice(1)), pc.equal(ts.slice(0, n - 1), ts.slice(1))), same_value
    )
    if not pc.any(same).as_py():
        return data
    keep = pa.concat_arrays([pa.array([True]), pc.invert(same)])
    return data.filter(keep)
