"""Reading the inbox: which segments are new, fetching them, and decoding them fast.

Metric events (the bulk of any log) are decoded straight into columns by
``evtrack.eventlog.native_decode`` (one schema-checked C parse per segment) when they
all are well-formed; every other event goes through the registry decoder
(``evtrack.eventlog.events.from_wire``). A segment the native decoder refuses is decoded
entirely in Python (``decode_python``, the reference), which checks metric
events field by field; a line that fails is returned as a ``BadLine`` for
quarantine — the rest of the segment still folds.

Segments are fetched by a pool of threads and decoded by one more, one batch
ahead of the caller, so that reading and decoding overlap with writing the
previous batch.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from evtrack.errors import EventDecodeError, ObjectNotFoundError
from evtrack.eventlog.events import I64_MAX, I64_MIN, NONFINITE, BadLine, Event, decode_line, from_wire
from evtrack.state.manifest import Manifest, parse_segment_key
from evtrack.store.base import ObjectInfo, ObjectStore
from evtrack.eventlog.writer import INBOX

from compaction import run_fold
from compaction.files import body_column
from evtrack.eventlog.native_decode import METRIC_COLUMNS, kv_rows, metric_rows, rows_table, run_events, segment_events
from evtrack.eventlog.native_decode import available as native_available

if TYPE_CHECKING:
    import pyarrow as pa

NATIVE_ENV = "EVTRACK_COMPACT_NATIVE"  # "0" turns the native decoder off (everything in Python)
_METRIC_TAG = b'"type":"metric"'  # how writers spell it; lines spelling it otherwise take the Python path
_PARAM_TAG, _TAG_TAG = b'"type":"param"', b'"type":"tag_'  # likewise for params and tags (set, deleted)
_RUN_TAG = b'"type":"run_'  # and for run events
_ROWS_PER_CONVERSION = 1000
_METRIC_FIELDS = frozenset(("v", "eid", "type", "ts", "run_id", "key", "value", "step", "timestamp"))

# A metric row: (eid, ts, run_id, key, value, step, timestamp)
MetricRow = tuple[str, int, str, str, float, int, int]
# A param or tag event: (wire type, run_id, key, value or None, ts, eid, raw line)
KvRow = tuple[str, str, str, "str | None", int, str, bytes]
KV_BATCH_COLUMNS = ["type", "run_id", "key", "value", "ts", "eid", "body"]
_KV_FIELDS = {
    "param": frozenset(("v", "eid", "type", "ts", "run_id", "key", "value")),
    "tag_set": frozenset(("v", "eid", "type", "ts", "run_id", "key", "value")),
    "tag_deleted": frozenset(("v", "eid", "type", "ts", "run_id", "key")),
}


@dataclass
class DecodedSegment:
    """One segment, decoded: metric rows, other events (with their raw JSON), bad lines."""

    key: str
    size: int
    metrics: list[MetricRow] = field(default_factory=list)  # rows decoded one by one
    columns: "pa.Table | None" = None  # rows decoded column-wise by the Python path
    native: list = field(default_factory=list)  # rows decoded natively (evtrack.eventlog.native_decode)
    converted: int = 0  # native rows already turned into the batch's columns
    events: list[tuple[Event, bytes]] = field(default_factory=list)  # other events, params and tags aside
    kv: list[KvRow] = field(default_factory=list)  # params and tags, for the columnar fold (compaction.kv_fold)
    kv_converted: int = 0  # kv rows already turned into the batch's kv table
    runs: list[tuple] = field(default_factory=list)  # run events, for the columnar fold (compaction.run_fold)
    run_tags: list[tuple] = field(default_factory=list)  # the tags their creations carry (KV_COLUMNS)
    runs_converted: int = 0  # run rows already turned into the batch's runs table
    bad: list[BadLine] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        """Good events in the segment."""
        fast = self.columns.num_rows if self.columns is not None else 0
        kv = len(self.kv) + self.kv_converted + len(self.runs) + self.runs_converted
        return fast + len(self.native) + self.converted + len(self.metrics) + len(self.events) + kv

    def add_run_event(self, kind: str, event: object, line: bytes) -> None:
        """A decoded run event (and the tags of a creation) as rows."""
        self.runs.append(run_fold.event_row(kind, event, line))
        if kind == "run_created":
            self.run_tags += run_fold.creation_tag_rows(event)

    def metric_table(self) -> "pa.Table":
        """Every metric event of the segment as one table (METRIC_COLUMNS)."""
        return metric_table([self])


@dataclass
class DecodedBatch:
    """Consecutive segments, decoded, with all their metric events as one table."""

    segments: list[DecodedSegment]
    metrics: "pa.Table"
    processes: int = 0  # the worker processes decoding it (compaction.parallel); 0: this process
    kv: "pa.Table | None" = None  # every param and tag event of the batch (KV_BATCH_COLUMNS)
    runs: "pa.Table | None" = None  # every run event of the batch (run_fold.RUN_COLUMNS)
    run_tags: "pa.Table | None" = None  # the tags the batch's run creations carry (kv_fold.KV_COLUMNS)


def metric_table(segments: list[DecodedSegment], converted: list["pa.Table"] | None = None) -> "pa.Table":
    """Every metric event of ``segments`` as one table (METRIC_COLUMNS); ``converted``: native rows as columns."""
    import pyarrow as pa

    parts = [seg.columns for seg in segments if seg.columns is not None and seg.columns.num_rows]
    parts += converted or []
    native = [row for seg in segments for row in seg.native]
    if native:
        parts.append(rows_table(native))
    rows = [row for seg in segments for row in seg.metrics]
    if rows:
        parts.append(
            pa.table(
                [pa.array([r[i] for r in rows], t) for i, (_, t) in enumerate(_metric_types())], names=METRIC_COLUMNS
            )
        )
    if not parts:
        return pa.table([pa.array([], t) for _, t in _metric_types()], names=METRIC_COLUMNS)
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def pending_segments(store: ObjectStore, manifest: Manifest) -> tuple[list[ObjectInfo], list[ObjectInfo]]:
    """(new segments to fold, segments already folded in ``manifest``), in key order."""
    new, done = [], []
    for info in store.list(INBOX):  # objects that are not well-named segments are new: quarantined
        (done if manifest.is_folded(info.key) else new).append(info)
    return new, done


def _metric_row(obj: dict) -> MetricRow | None:
    """A metric event as a row tuple when every field is well-typed, else None."""
    if obj.keys() != _METRIC_FIELDS or obj["v"] != 1 or type(obj["v"]) is not int:
        return None
    eid, ts, run_id, key = obj["eid"], obj["ts"], obj["run_id"], obj["key"]
    value, step, timestamp = obj["value"], obj["step"], obj["timestamp"]
    if not (
        type(eid) is str
        and eid
        and type(ts) is int
        and type(run_id) is str
        and type(key) is str
        and type(step) is int
        and type(timestamp) is int
    ):
        return None
    if not (I64_MIN <= ts <= I64_MAX and I64_MIN <= step <= I64_MAX and I64_MIN <= timestamp <= I64_MAX):
        return None  # from_wire reports it
    if type(value) is not float:
        if type(value) is int:
            value = float(value)
        elif type(value) is str and value in NONFINITE:
            value = NONFINITE[value]
        else:
            return None
    return (eid, ts, run_id, key, value, step, timestamp)


def _metric_types() -> list[tuple[str, "pa.DataType"]]:
    import pyarrow as pa

    return [
        ("eid", pa.string()),
        ("ts", pa.int64()),
        ("run_id", pa.string()),
        ("key", pa.string()),
        ("value", pa.float64()),
        ("step", pa.int64()),
        ("timestamp", pa.int64()),
    ]


def _metric_columns(objs: list) -> "pa.Table | None":
    """Metric events as columns, converted and type-checked by pyarrow; None if any is off."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if any(len(o) != 9 for o in objs):
        return None
    try:
        versions = [o["v"] for o in objs]
        if versions.count(1) != len(objs) or set(map(type, versions)) != {int}:  # not 1.0, not true
            return None
        cols = {name: [o[name] for o in objs] for name in METRIC_COLUMNS}
        values = cols["value"]
        kinds = set(map(type, values))
        if bool in kinds or not kinds <= {float, int, str}:
            return None
        if str in kinds:
            cols["value"] = values = [NONFINITE[x] if x.__class__ is str else x for x in values]
        arrays = []
        for name, t in _metric_types():
            # Other columns by inference: exactly string/int64 without nulls when the JSON types
            # are right (a cast would take null strings, and 3.0 or true as an int).
            arr = pa.array(values, t) if name == "value" else pa.array(cols[name])
            if arr.type != t or arr.null_count:
                return None
            arrays.append(arr)
    except (KeyError, TypeError, OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if len(objs) and pc.min(pc.utf8_length(arrays[0])).as_py() == 0:
        return None  # an empty eid: the slow path names it
    return pa.table(arrays, names=METRIC_COLUMNS)


def _kv_row(obj: dict, etype: str, line: bytes) -> KvRow | None:
    """A param or tag event as a row when every field is well-typed, else None (``from_wire`` judges)."""
    if obj.keys() != _KV_FIELDS[etype] or obj["v"] != 1 or type(obj["v"]) is not int:
        return None
    eid, ts, run_id, key, value = obj["eid"], obj["ts"], obj["run_id"], obj["key"], obj.get("value")
    if not (type(eid) is str and eid and type(ts) is int and type(run_id) is str and type(key) is str):
        return None
    if not I64_MIN <= ts <= I64_MAX or (etype != "tag_deleted" and type(value) is not str):
        return None
    return (etype, run_id, key, value, ts, eid, line)


def _decode_one(seg: DecodedSegment, line: bytes, obj: object, no: int) -> None:
    if type(obj) is dict:
        etype = obj.get("type")
        if etype == "metric":
            row = _metric_row(obj)
            if row is not None:
                seg.metrics.append(row)
                return
        elif type(etype) is str and etype in _KV_FIELDS:  # a dict as the type is unhashable: from_wire names it
            kv = _kv_row(obj, etype, line)  # type: ignore[arg-type]
            if kv is not None:
                seg.kv.append(kv)
                return
    try:
        event = from_wire(obj) if obj is not None else decode_line(line)
    except EventDecodeError as exc:
        seg.bad.append(BadLine(seg.key, no, line, exc.message))
        return
    if event.type == "metric":
        e = event
        seg.metrics.append((e.eid, e.ts, e.run_id, e.key, e.value, e.step, e.timestamp))  # type: ignore[attr-defined]
    elif event.type in _KV_FIELDS:
        e = event
        seg.kv.append((e.type, e.run_id, e.key, getattr(e, "value", None), e.ts, e.eid, line))  # type: ignore[attr-defined]
    elif event.type in run_fold.RUN_TYPES:
        seg.add_run_event(event.type, event, line)
    else:
        seg.events.append((event, line))


def decode_python(key: str, data: bytes) -> DecodedSegment:
    """Decode a segment in Python: one orjson call for the whole segment when it is well-formed."""
    seg = DecodedSegment(key, len(data))
    objs = None
    if data.endswith(b"\n") and b"\n\n" not in data and not data.startswith(b"\n"):
        try:  # the common case: one parse for the whole segment
            objs = orjson.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
            if len(objs) != data.count(b"\n"):  # a line held two values ("1,2")
                objs = None
        except orjson.JSONDecodeError:
            objs = None
    if objs is not None:
        types = [o.get("type") if o.__class__ is dict else None for o in objs]
        metric_idx = [i for i, t in enumerate(types) if t == "metric"]
        fast = None
        if metric_idx:
            fast = _metric_columns(objs if len(metric_idx) == len(objs) else [objs[i] for i in metric_idx])
        if fast is not None:
            seg.columns = fast
            if len(metric_idx) == len(objs):
                return seg
        lines = data[:-1].split(b"\n")
        for no, (line, obj, t) in enumerate(zip(lines, objs, types), start=1):
            if fast is None or t != "metric":
                _decode_one(seg, line, obj, no)
        return seg
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    for no, line in enumerate(lines, start=1):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            seg.bad.append(BadLine(key, no, line, f"malformed JSON line: {exc}"))
            continue
        _decode_one(seg, line, obj, no)
    return seg


def decode(key: str, data: bytes) -> DecodedSegment:
    """Decode a segment: its metric lines natively when they all are well-formed, exactly as ``decode_python``."""
    seg = None
    if data.endswith(b"\n") and os.environ.get(NATIVE_ENV, "1") != "0" and native_available():
        seg = _decode_native(key, data)
    return seg if seg is not None else decode_python(key, data)


def _decode_whole(key: str, data: bytes) -> DecodedSegment | None:
    """A segment of nothing but metric, param, tag and run events, in one native parse; else None."""
    found = segment_events(data)
    if found is None:
        return None
    events, lines, names = found
    seg = DecodedSegment(key, len(data))
    native, kv = seg.native, seg.kv
    metric = next(cls for cls, kind in names.items() if kind == "metric")
    for event, line in zip(events, lines):
        cls = event.__class__
        if cls is metric:  # most lines: no lookup
            native.append(event)
            continue
        kind = names[cls]
        if kind == "param" or kind == "tag_set":
            kv.append((kind, event.run_id, event.key, event.value, event.ts, event.eid, line))
        elif kind == "tag_deleted":
            kv.append((kind, event.run_id, event.key, None, event.ts, event.eid, line))
        else:
            seg.add_run_event(kind, event, line)
    return seg


def _decode_native(key: str, data: bytes) -> DecodedSegment | None:
    """The segment with its metric lines decoded natively and the others in Python; None to leave it to Python.

    Most segments hold nothing but metric points: they are decoded in one call.
    Writers put a run's other events (creation, params, tags) mostly before and
    after its points; when the lines between the first and the last point are
    all points, they are decoded in one call and the lines around them in Python.
    Otherwise the metric lines, wherever they are, are gathered first.
    """
    head = data[: data.find(b"\n")]
    tail = data[data.rfind(b"\n", 0, -1) + 1 : -1]
    if _METRIC_TAG not in head or _METRIC_TAG not in tail:  # a run's whole log, say: one parse if it can
        whole = _decode_whole(key, data)
        if whole is not None:
            return whole
    if _METRIC_TAG in head and _METRIC_TAG in tail:  # the common case: a segment of metric points
        rows = metric_rows(data, data.count(b"\n"))  # fails on any other line: then the general path
        if rows is not None:
            return DecodedSegment(key, len(data), native=rows)
    first = data.find(_METRIC_TAG)  # [start, stop): from the first metric line to the last
    if first < 0:
        return None  # no metric point: the Python path
    start = data.rfind(b"\n", 0, first) + 1
    head_lines = data.count(b"\n", 0, start)
    stop = data.index(b"\n", data.rfind(_METRIC_TAG)) + 1
    block_lines = data.count(b"\n", start, stop)
    if data.count(_METRIC_TAG, start, stop) == block_lines:
        points = data[start:stop]
        others = [
            *enumerate(data[:start].split(b"\n")[:-1], start=1),
            *enumerate(data[stop:-1].split(b"\n") if stop < len(data) else [], start=head_lines + block_lines + 1),
        ]
    else:  # other events among the points
        numbered = list(enumerate(data[:-1].split(b"\n"), start=1))
        points = b"".join(line + b"\n" for _, line in numbered if _METRIC_TAG in line)
        others = [(no, line) for no, line in numbered if _METRIC_TAG not in line]
        block_lines = len(numbered) - len(others)
    rows = metric_rows(points, block_lines)
    if rows is None:
        return None
    seg = DecodedSegment(key, len(data), native=rows)
    kv: list[tuple[int, bytes]] = []
    runs: list[tuple[int, bytes]] = []
    rest: list[tuple[int, bytes]] = []
    for no, line in others:
        (kv if _PARAM_TAG in line or _TAG_TAG in line else runs if _RUN_TAG in line else rest).append((no, line))
    # The params and tags in one parse, the run events in another; the rest (and a group refused) line by line.
    kv_decoded = kv_rows([line for _, line in kv]) if kv else None
    if kv_decoded is not None:
        seg.kv, kv = kv_decoded, []
    runs_decoded = run_events([line for _, line in runs]) if runs else None
    if runs_decoded is not None:
        for (kind, event), (_, line) in zip(runs_decoded, runs):
            seg.add_run_event(kind, event, line)
        runs = []
    others = sorted(rest + kv + runs) if kv or runs else rest
    for no, line in others:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None  # a bad line: the Python path quarantines it exactly as it always has
        _decode_one(seg, line, obj, no)
        if seg.bad:
            return None
    return seg


def _get(store: ObjectStore, info: ObjectInfo) -> bytes | None:
    try:
        return store.get(info.key)
    except ObjectNotFoundError:
        return None  # deleted since listed (another compactor folded it)


def _decode_batch(infos: list[ObjectInfo], fetched: list[Future]) -> DecodedBatch:
    """Decode fetched segments in order; native rows become columns every ~1,000 rows.

    Converting in groups pays Arrow's per-call cost once per group rather than per
    small segment, while the rows are still in cache, and frees them early.
    """
    segments: list[DecodedSegment] = []
    converted: list[pa.Table] = []
    pending: list = []
    for info, future in zip(infos, fetched):
        data = future.result()
        if data is None:
            continue
        seg = decode(info.key, data)
        segments.append(seg)
        if seg.native:
            pending += seg.native
            seg.converted, seg.native = len(seg.native), []
            if len(pending) >= _ROWS_PER_CONVERSION:
                converted.append(rows_table(pending))
                pending = []
    if pending:
        converted.append(rows_table(pending))
    kv: list[KvRow] = []
    runs: list[tuple] = []
    run_tags: list[tuple] = []
    for seg in segments:
        kv += seg.kv
        seg.kv_converted, seg.kv = len(seg.kv), []
        runs += seg.runs
        seg.runs_converted, seg.runs = len(seg.runs), []
        run_tags += seg.run_tags
        seg.run_tags = []
    return DecodedBatch(
        segments,
        metric_table(segments, converted),
        kv=kv_table(kv),
        runs=run_fold.rows_table(runs),
        run_tags=run_fold.tag_rows_table(run_tags),
    )


def kv_table(rows: list[KvRow]) -> "pa.Table | None":
    """Param and tag rows as columns (KV_BATCH_COLUMNS), or None when there are none."""
    if not rows:
        return None
    import pyarrow as pa

    cols = list(zip(*rows))
    body = body_column(list(cols[6]))
    return pa.table(
        [
            pa.array(cols[0], pa.string()),
            pa.array(cols[1], pa.string()),
            pa.array(cols[2], pa.string()),
            pa.array(cols[3], pa.string()),
            pa.array(cols[4], pa.int64()),
            pa.array(cols[5], pa.string()),
            body,
        ],
        names=KV_BATCH_COLUMNS,
    )


def segment_writer(key: str) -> tuple[str, int] | None:
    """(writer id, seq) of a segment key."""
    return parse_segment_key(key)
