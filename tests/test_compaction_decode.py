"""The native segment decoder gives exactly what the Python decoder gives.

``compaction.inbox.decode`` decodes metric lines natively (msgspec, with the
metric event's schema) and leaves everything else to ``decode_python`` (the
reference). For crafted
edge cases and for random segments (hypothesis) both must produce the same
metric rows (bit for bit: NaN, ±inf, -0.0, big integers, unicode), the same other
events with their raw lines, and the same quarantined lines; and a compaction
with the native decoder writes the same ``events`` and ``metrics`` rows as one
with it turned off.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compaction import compact
from evtrack.eventlog import native_decode
from compaction.inbox import NATIVE_ENV, DecodedSegment, decode, decode_python
from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.eventlog.events import I64_MAX, I64_MIN
from evtrack.store import open_store
from evtrack.state.tables import schema

KEY = "events/0001700000000000-w1-000001.jsonl"


def metric(eid: str = "w-1", value: Any = 1.5, **over: Any) -> dict[str, Any]:
    obj = {
        "v": 1,
        "eid": eid,
        "type": "metric",
        "ts": 1_700_000_000_000,
        "run_id": "r1",
        "key": "loss",
        "value": value,
        "step": 3,
        "timestamp": 1_700_000_000_001,
    }
    obj.update(over)
    return obj


def line(item: Any) -> bytes:
    """One JSON line (bytes are taken as they are; integers past 64 bits are allowed)."""
    if not isinstance(item, bytes):
        try:
            item = orjson.dumps(item)
        except TypeError:
            item = json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()
    return item.rstrip(b"\n") + b"\n"


def canonical(n: int, start: int = 1) -> bytes:
    return b"".join(ev.encode_metric_line(f"w-{i}", i, "r1", f"k{i % 3}", i / 7, i, i) for i in range(start, start + n))


def param(eid: str, value: str = "0.1") -> bytes:
    return ev.encode(ev.ParamLogged(eid=eid, ts=5, run_id="r1", key="lr", value=value))


def _bits(table: pa.Table) -> list[tuple]:
    """Rows of a metric table with the value as its IEEE bits, sorted: an exact multiset."""
    value = table.column("value").combine_chunks().view(pa.int64())
    cols = [table.column(c).to_pylist() for c in ("eid", "ts", "run_id", "key")]
    cols += [value.to_pylist(), table.column("step").to_pylist(), table.column("timestamp").to_pylist()]
    return sorted(zip(*cols))


def assert_same(native: DecodedSegment, python: DecodedSegment) -> None:
    assert _bits(native.metric_table()) == _bits(python.metric_table())
    assert native.events == python.events
    assert native.kv == python.kv
    assert native.runs == python.runs and native.run_tags == python.run_tags
    assert native.bad == python.bad
    assert native.event_count == python.event_count


def both(data: bytes) -> DecodedSegment:
    """The native decoding of ``data``, after checking it equals the Python one."""
    native = decode(KEY, data)
    assert_same(native, decode_python(KEY, data))
    return native


needs_native = pytest.mark.skipif(not native_decode.available(), reason="msgspec is not installed")


def used_native(seg: DecodedSegment) -> bool:
    return len(seg.native) > 0 and seg.columns is None and not seg.bad


# -- the native path is taken where it should be -----------------------------------


@needs_native
def test_plain_metric_segment_is_decoded_natively() -> None:
    seg = both(canonical(500))
    assert used_native(seg) and len(seg.native) == 500 and not seg.metrics
    assert seg.metric_table().column("value").type == pa.float64()
    assert seg.metric_table().column("step").type == pa.int64()


@needs_native
def test_mixed_segment_decodes_metrics_natively_and_the_rest_in_python() -> None:
    run = ev.encode(
        ev.RunCreated(
            eid="w-0",
            ts=1,
            run_id="r1",
            experiment_id="1",
            run_name="ü-run",
            user_id="u",
            start_time=1,
            artifact_uri="file:///a",
            tags={"k": "v"},
        )
    )
    data = run + canonical(3) + param("w-10") + line(metric("w-11", "NaN")) + line(metric("w-12", "-Infinity"))
    data += canonical(2, start=20) + ev.encode(ev.TagSet(eid="w-30", ts=1, run_id="r1", key="t", value='"q"'))
    seg = both(data)
    assert used_native(seg) and len(seg.native) == 7 and not seg.metrics
    assert not seg.events  # params, tags and run events go to the columnar fold, as rows
    assert [(row[0], row[3], row[5]) for row in seg.runs] == [("run_created", "w-0", "ü-run")]
    assert seg.run_tags == [("r1", "k", "v", 1, "w-0")]
    assert [(kind, eid) for kind, _, _, _, _, eid, _ in seg.kv] == [("param", "w-10"), ("tag_set", "w-30")]
    table = seg.metric_table()
    values = dict(zip(table.column("eid").to_pylist(), table.column("value").to_pylist()))
    assert math.isnan(values["w-11"]) and values["w-12"] == -math.inf


@needs_native
def test_a_runs_whole_log_is_decoded_natively_in_one_parse() -> None:
    created = ev.RunCreated(
        eid="w-0",
        ts=1,
        run_id="r1",
        experiment_id="1",
        run_name="n",
        user_id="u",
        start_time=1,
        artifact_uri="file:///a",
        tags={"mlflow.user": "u"},
    )
    data = ev.encode(created) + param("w-1") + canonical(3, start=2)
    data += ev.encode(ev.TagDeleted(eid="w-5", ts=2, run_id="r1", key="t"))
    data += ev.encode(ev.RunUpdated(eid="w-6", ts=3, run_id="r1", status="FINISHED", end_time=3))
    seg = both(data)
    assert used_native(seg) and len(seg.native) == 3 and not seg.events
    assert [row[0] for row in seg.runs] == ["run_created", "run_updated"]
    assert [(kind, eid) for kind, _, _, _, _, eid, _ in seg.kv] == [("param", "w-1"), ("tag_deleted", "w-5")]
    assert seg.run_tags == [("r1", "mlflow.user", "u", 1, "w-0")]


# -- edge cases: native or not, the result is the Python one -----------------------

EDGE_LINES = {
    "nan_and_inf_strings": [metric(value=v) for v in ("NaN", "Infinity", "-Infinity")],
    "int_values": [metric(value=3), metric(value=-7), metric(value=0)],
    "big_int_values": [
        b'{"v":1,"eid":"w","type":"metric","ts":1,"run_id":"r","key":"k","value":%s,"step":1,"timestamp":1}' % v
        for v in (
            b"18446744073709551615",
            b"-123456789012345678901234567890",
            b"9007199254740993",
            b"-9223372036854775808",
        )
    ],
    "int64_edges": [metric(ts=I64_MIN, step=I64_MAX, timestamp=0)],
    "int64_overflow": [metric(step=I64_MAX + 1), metric(ts=I64_MIN - 1)],
    "negative_zero": [
        b'{"v":1,"eid":"w","type":"metric","ts":1,"run_id":"r","key":"k","value":-0,"step":1,"timestamp":1}',
        metric(value=-0.0),
    ],
    "float_edges": [metric(value=v) for v in (5e-324, 1.7976931348623157e308, -2.5e-310, 0.1)],
    "float_text": [
        b'{"v":1,"eid":"w","type":"metric","ts":1,"run_id":"r","key":"k","value":%s,"step":1,"timestamp":1}' % v
        for v in (
            b"1E5",
            b"1e+5",
            b"1e-400",
            b"0.1000000000000000055511151231257827",
            b"-0.0e0",
            b"123456789.987654321e-3",
        )
    ],
    "not_numbers": [
        b'{"v":1,"eid":"w","type":"metric","ts":1,"run_id":"r","key":"k","value":%s,"step":1,"timestamp":1}' % v
        for v in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"01", b"+1", b".5", b"1.")
    ],
    "unicode": [metric(key="ключ/λ 😀", run_id="r\u00e9", eid="w-é"), metric(key="")],
    "escapes": [
        json.dumps(metric(key='a"b\\c\n\t\u0001\u2028/😀', eid="w-\u00ff")).encode(),
        b'{"v":1,"eid":"w\\u002d1","type":"metric","ts":1,"run_id":"r","key":"\\/\\b\\f\\r","value":1,'
        b'"step":1,"timestamp":1}',
        metric(key="a\u0000b"),
    ],
    "bad_escapes": [
        b'{"v":1,"eid":"w","type":"metric","ts":1,"run_id":"r","key":"\\ud800","value":1,"step":1,"timestamp":1}',
        b'{"v":1,"eid":"w","type":"metric","ts":1,"run_id":"r","key":"\\x","value":1,"step":1,"timestamp":1}',
    ],
    "invalid_utf8": [orjson.dumps(metric(key="KEY")).replace(b"KEY", b"\xff\xfe")],
    "bom": [b"\xef\xbb\xbf" + orjson.dumps(metric())],
    "raw_control_char": [orjson.dumps(metric(key="KEY")).replace(b"KEY", b"a\x01b")],
    "wrong_types": [
        metric(v=1.0),
        metric(v=True),
        metric(v=2),
        metric(eid=12),
        metric(eid=""),
        metric(ts="5"),
        metric(step=1.0),
        metric(step=True),
        metric(value=True),
        metric(value="1.5"),
        metric(value="nan"),
        metric(key=None),
        metric(run_id={"a": 1}),
        metric(timestamp=[1]),
    ],
    "unknown_type_and_fields": [
        metric(type="metrik"),
        metric(type="param"),
        metric(extra=1),
        {k: v for k, v in metric().items() if k != "step"},
    ],
    "duplicate_key": [
        b'{"v":1,"eid":"w","type":"metric","ts":1,"run_id":"r","key":"a","key":"b","value":1,"step":1,"timestamp":1}'
    ],
    "whitespace_and_order": [
        b'{ "timestamp" : 1 , "step":2, "value" : 0.5,"key":"k","run_id":"r","ts":1,"type":"metric","eid":"w","v":1 }',
        b'{"v":1,"eid":"w","type": "metric","ts":1,"run_id":"r","key":"k","value":1,"step":1,"timestamp":1}\r',
    ],
    "malformed": [
        b'{"v":1,"eid":"w","type":"metric","ts":1',
        b"not json",
        b"[1,2]",
        b"5",
        b"{}",
        orjson.dumps(metric()) + b" " + orjson.dumps(metric()),
        orjson.dumps(metric()) + b",",
        b'{"v":1,"eid":"w","type":"metric","ts":1,"run_id":"r","key":"k","value":1,"step":1,"timestamp":1,}',
        orjson.dumps(metric()) + b" /* c */",
    ],
    "renamed_field": [
        line(metric()).replace(old, new, 1)
        for old, new in (
            (b'"v":', b'"w":'),
            (b'"eid":', b'"eId":'),
            (b'"ts":', b'"tz":'),
            (b'"run_id":', b'"runid":'),
            (b'"key":', b'"kee":'),
            (b'"value":', b'"valeu":'),
            (b'"step":', b'"stop":'),
            (b'"timestamp":', b'"timestamq":'),
            (b'{"v":1', b'{"v":2'),
        )
    ],
    "int_text": [
        line(metric()).replace(b'"step":3', b'"step":' + text)
        for text in (b"03", b"-03", b"00", b"-0", b"1.0", b"1e3", b"+3", b"3 ", b"--3", b"-", b"99999999999999999999")
    ],
    "line_ending": [
        line(metric(timestamp=12345)).replace(b"}\n", end) for end in (b"\n", b"]\n", b"}}\n", b"} \n", b"}x\n")
    ],
    "duplicate_type": [
        line(metric()).replace(b'"type":"metric"', b'"type":"metric","type":"metrik"'),
        line(metric()).replace(b'"type":"metric"', b'"type":"metrik","type":"metric"'),
    ],
    "two_events_on_a_line": [
        orjson.dumps(metric("w-1")) + b"," + orjson.dumps(metric("w-2")),
        orjson.dumps(metric("w-1")) + b", " + orjson.dumps(metric("w-2")),
    ],
    "type_tag_inside_a_string": [metric(key='"type":"metric"'), param("w-2", value='"type":"metric"').rstrip()],
}


EDGE_CASES = [(name, i) for name in sorted(EDGE_LINES) for i in range(len(EDGE_LINES[name]))]


@pytest.mark.parametrize("name, index", EDGE_CASES, ids=[f"{n}-{i}" for n, i in EDGE_CASES])
@pytest.mark.parametrize("where", ["alone", "among_plain_metrics", "in_a_mixed_segment"])
def test_each_edge_case_decodes_as_in_python(name: str, index: int, where: str) -> None:
    body = line(EDGE_LINES[name][index])
    data = {
        "alone": body,
        "among_plain_metrics": canonical(20) + body + canonical(20, start=100),
        "in_a_mixed_segment": param("w-0") + canonical(5) + body + param("w-99"),
    }[where]
    both(data)


@pytest.mark.parametrize("name", sorted(EDGE_LINES))
def test_edge_cases_together_decode_as_in_python(name: str) -> None:
    both(canonical(3) + b"".join(line(x) for x in EDGE_LINES[name]) + param("w-99"))


def test_a_tag_counted_twice_does_not_stand_for_a_line_without_it() -> None:
    twice = line(metric("w-1")).replace(b'"type":"metric"', b'"type":"metric","type":"metric"')
    other = line(metric("w-2", type="metrik"))
    seg = both(twice + other)
    assert len(seg.bad) == 1 and seg.event_count == 1


@pytest.mark.parametrize(
    "data",
    [
        canonical(3)[:-1],
        b"\n" + canonical(3),
        canonical(2) + b"\n" + canonical(2),
        canonical(3) + b"  \n",
        b"",
        b"\n",
        canonical(2).replace(b"\n", b"\r\n"),
    ],
    ids=["no_final_newline", "leading_blank", "blank_line", "blank_spaces", "empty", "newline", "crlf"],
)
def test_segment_framing_decodes_as_in_python(data: bytes) -> None:
    both(data)


# -- random segments ------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
INT = st.one_of(st.integers(I64_MIN, I64_MAX), st.sampled_from((0, -1, I64_MIN, I64_MAX)), st.integers(-(2**70), 2**70))
FLOAT = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from((0.0, -0.0, 1e-310)))
VALUE = st.one_of(FLOAT.map(ev.wire_float), st.integers(-(2**70), 2**70))
RUN = st.sampled_from(("r1", "r2", "rünß"))


@st.composite
def metric_line(draw: st.DrawFn) -> bytes:
    obj = {
        "v": 1,
        "eid": draw(st.sampled_from(("w-", "x-"))) + str(draw(st.integers(0, 10**6))),
        "type": "metric",
        "ts": draw(INT),
        "run_id": draw(RUN),
        "key": draw(TEXT),
        "value": draw(VALUE),
        "step": draw(INT),
        "timestamp": draw(INT),
    }
    style = draw(st.sampled_from(("orjson", "orjson", "orjson", "ascii", "spaced", "shuffled", "nan_literal")))
    if style == "ascii":  # \\u escapes, surrogate pairs
        return json.dumps(obj, separators=(",", ":")).encode()
    if style == "spaced":
        return json.dumps(obj, ensure_ascii=False).encode()
    if style == "shuffled":
        keys = draw(st.permutations(list(obj)))
        return json.dumps({k: obj[k] for k in keys}, ensure_ascii=False).encode()
    if style == "nan_literal":
        return json.dumps({**obj, "value": draw(FLOAT)}, separators=(",", ":")).encode()
    return line(obj).rstrip(b"\n")


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    good = draw(metric_line())
    how = draw(st.sampled_from(("truncate", "byte", "drop_field", "extra_field", "v2")))
    if how == "truncate":
        return good[: draw(st.integers(1, len(good) - 1))]
    if how == "byte":
        at = draw(st.integers(0, len(good) - 1))
        return good[:at] + bytes([draw(st.integers(0, 255))]) + good[at + 1 :]
    obj = json.loads(good)
    if how == "drop_field":
        obj.pop(draw(st.sampled_from(sorted(obj))))
    elif how == "extra_field":
        obj["extra"] = 1
    else:
        obj["v"] = 2
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


ODD_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    TEXT,
    st.integers(-(2**70), 2**70),
    st.just({"k": 1}),
    st.just(["x"]),
)


@st.composite
def run_line(draw: st.DrawFn) -> bytes:
    """A run event line: well-formed, or with one field missing, extra, null or of an odd type."""
    kind = draw(st.sampled_from(("run_created", "run_updated", "run_deleted", "run_restored")))
    obj: dict[str, Any] = {"v": 1, "eid": "r-" + str(draw(st.integers(0, 99))), "type": kind, "ts": draw(INT)}
    obj["run_id"] = draw(RUN)
    if kind == "run_created":
        obj |= {
            "experiment_id": "1",
            "run_name": draw(TEXT),
            "user_id": "u",
            "start_time": draw(INT),
            "artifact_uri": "file:///a",
            "tags": draw(st.dictionaries(TEXT, TEXT, max_size=2)),
        }
        if draw(st.booleans()):
            obj["parent_run_id"] = draw(st.none() | RUN)
    elif kind == "run_updated":
        for name, value in (("status", st.sampled_from(("FINISHED", "FAILED"))), ("end_time", INT), ("run_name", TEXT)):
            if draw(st.booleans()):
                obj[name] = draw(st.none() | value)
    how = draw(st.sampled_from(("good", "good", "good", "drop", "extra", "odd", "v2")))
    if how == "drop":
        obj.pop(draw(st.sampled_from(sorted(obj))))
    elif how == "extra":
        obj["extra"] = 1
    elif how == "odd":
        obj[draw(st.sampled_from(sorted(obj)))] = draw(ODD_VALUE)
    elif how == "v2":
        obj["v"] = 2
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


OTHER = st.sampled_from(
    [
        param("p-1").rstrip(),
        param("p-2", value="x").rstrip(),
        ev.encode(ev.TagSet(eid="t-1", ts=1, run_id="r1", key="k", value="v")).rstrip(),
        ev.encode(ev.RunUpdated(eid="u-1", ts=1, run_id="r1", status="FINISHED")).rstrip(),
    ]
)
LINES = st.lists(st.one_of(metric_line(), metric_line(), metric_line(), OTHER, run_line(), damaged()), max_size=25)


@settings(max_examples=300, deadline=None)
@given(odd=st.one_of(metric_line(), damaged()), plain=st.integers(0, 5), at=st.integers(0, 5))
def test_one_random_line_among_plain_metrics_decodes_as_in_python(odd: bytes, plain: int, at: int) -> None:
    lines = canonical(plain).splitlines(keepends=True)
    lines.insert(min(at, len(lines)), odd + b"\n")
    both(b"".join(lines))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=LINES, plain=st.integers(0, 30), final_newline=st.booleans())
def test_random_segments_decode_as_in_python(lines: list[bytes], plain: int, final_newline: bool) -> None:
    data = canonical(plain) + b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    both(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(run_line(), OTHER, metric_line()), min_size=1, max_size=12))
def test_whole_runs_decode_in_one_parse_as_in_python(lines: list[bytes]) -> None:
    """A run's whole log in one segment (creation first, not a metric): one parse, or Python's answer."""
    seg = both(b"\n".join(lines) + b"\n")
    assert seg.event_count + len(seg.bad) == len(lines)


PLAIN_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters='"\\'), max_size=12
)  # what orjson writes without an escape
PLAIN_METRIC = st.builds(
    ev.encode_metric_line,
    eid=PLAIN_TEXT.map(lambda t: "w-" + t),
    ts=st.integers(I64_MIN, I64_MAX),
    run_id=RUN,
    key=PLAIN_TEXT,
    value=st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != 0 or math.copysign(1, v) > 0),
    step=st.integers(I64_MIN, I64_MAX),
    timestamp=st.integers(I64_MIN, I64_MAX),
)


@needs_native
@settings(max_examples=200, deadline=None)
@given(lines=st.lists(PLAIN_METRIC, min_size=1, max_size=25), nan_at=st.none() | st.integers(0, 24))
def test_metrics_as_writers_encode_them_are_decoded_natively(lines: list[bytes], nan_at: int | None) -> None:
    if nan_at is not None:  # NaN travels as a string: still native
        lines.insert(nan_at, ev.encode_metric_line("w-nan", 1, "r1", "k", math.nan, 1, 1))
    seg = both(b"".join(lines))
    assert used_native(seg) and not seg.metrics
    assert len(seg.native) == len(lines)


# -- a compaction writes the same rows either way ----------------------------------------


def _table(store: Any, name: str) -> pa.Table:
    m = mf.load(store)
    parts = [pq.read_table(pa.BufferReader(store.get(f["path"]))) for f in m.tables.get(name, [])]
    return pa.concat_tables(parts).cast(schema(name)) if parts else schema(name).empty_table()


def _rows(table: pa.Table) -> list[tuple]:
    cols = []
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if pa.types.is_floating(col.type):
            col = col.view(pa.int64())  # bit-exact: NaN, -0.0
        cols.append(col.to_pylist())
    return sorted(zip(*cols), key=repr)


def test_compaction_writes_the_same_rows_with_and_without_the_native_decoder(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    segments = {
        "events/0001700000000001-w1-000001.jsonl": param("w1-1") + canonical(300) + line(metric("w1-x", "NaN")),
        "events/0001700000000002-w1-000002.jsonl": canonical(400, start=1000),
        "events/0001700000000003-w2-000001.jsonl": line(metric("w2-1", value=-0.0))
        + line(metric("w2-2", 2**65))
        + b"not json\n"
        + line(metric("w2-3", key="ключ")),
    }
    results = {}
    for native in ("1", "0"):
        monkeypatch.setenv(NATIVE_ENV, native)
        store = open_store(str(tmp_path / f"store-{native}"))
        for key, data in segments.items():
            store.put(key, data)
        report = compact(store, grace_seconds=0)
        assert report.quarantined_lines == 1 and report.events == 1 + 300 + 1 + 400 + 3
        results[native] = {name: _rows(_table(store, name)) for name in ("events", "metrics", "latest_metrics")}
    assert results["1"] == results["0"]
    assert len(results["1"]["events"]) == 705


def struct_bits(x: float) -> bytes:
    return struct.pack("<d", x)


POINT = st.tuples(
    st.sampled_from(("r1", "r2", "r10")),
    st.sampled_from(("loss", "acc")),
    st.integers(-3, 3),
    st.integers(0, 2),
    st.sampled_from((0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf)),
)


@settings(max_examples=300, deadline=None)
@given(points=st.lists(POINT, max_size=40), writer_order=st.booleans())
def test_metrics_are_written_in_series_then_point_order(points: list[tuple], writer_order: bool) -> None:
    """Rows end up ordered by run, key, step, timestamp, value (NaN last), ties in arrival order."""
    from compaction.files import latest_rows, sort_metrics

    if writer_order:  # how writers log: each series' points already in order
        points = sorted(points, key=lambda p: (p[2], p[3], math.isnan(p[4]), 0.0 if math.isnan(p[4]) else p[4]))
    arrival = [(run, key, step, ts, value, i) for i, (run, key, step, ts, value) in enumerate(points)]
    columns = {
        "eid": [f"e{i}" for i in range(len(points))],
        "ts": [0] * len(points),
        "run_id": [p[0] for p in points],
        "key": [p[1] for p in points],
        "value": [p[4] for p in points],
        "step": [p[2] for p in points],
        "timestamp": [p[3] for p in points],
    }
    table = pa.table(
        columns,
        schema=pa.schema(
            [
                (
                    name,
                    pa.float64()
                    if name == "value"
                    else pa.string()
                    if name in ("eid", "run_id", "key")
                    else pa.int64(),
                )
                for name in columns
            ]
        ),
    )

    def order(p: tuple) -> tuple:
        run, key, step, ts, value, i = p
        return run, key, step, ts, math.isnan(value), 0.0 if math.isnan(value) else value, i

    want = sorted(arrival, key=order)
    got = sort_metrics(table)
    assert got.column_names == ["run_id", "key", "value", "step", "timestamp"]
    rows = list(zip(*(got.column(c).to_pylist() for c in ("run_id", "key", "step", "timestamp", "value"))))
    expect = [(run, key, step, ts, value) for run, key, step, ts, value, _ in want]
    assert [r[:4] for r in rows] == [e[:4] for e in expect]
    assert [struct_bits(r[4]) for r in rows] == [struct_bits(e[4]) for e in expect]  # -0.0 and NaN exactly
    latest = latest_rows(got).to_pylist()
    assert [(r["run_id"], r["key"]) for r in latest] == sorted({(p[0], p[1]) for p in points})
