"""Readers decode inbox tail segments in one native parse (``segment_as_tail``) when they can.

The native path must give exactly the metric points and other events the line-by-line
decoder gives (``decode_segment``, split by ``split_points``), or decline (None) so that the
line-by-line decoder names what is wrong. Random segments of metric points, params, tags, run events (well
formed or damaged), other event types and blank lines are decoded both ways.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evtrack.eventlog import events as ev
from evtrack.eventlog import native_decode
from evtrack.eventlog.native_decode import segment_as_tail
from tests.test_compaction_decode import OTHER, canonical, damaged, metric_line, run_line

pytestmark = pytest.mark.skipif(not native_decode.available(), reason="msgspec is not installed")

ARTIFACT = ev.encode(
    ev.ArtifactLogged(eid="a-1", ts=3, run_id="r1", path="model/x.pkl", size=4, digest="sha256:00")
).rstrip()
KV = st.sampled_from(
    [
        ev.encode(ev.ParamLogged(eid="p-9", ts=2, run_id="r2", key="alpha", value="0.5")).rstrip(),
        ev.encode(ev.TagDeleted(eid="d-1", ts=4, run_id="r1", key="k")).rstrip(),
        ev.encode(
            ev.RunCreated(
                eid="c-1",
                ts=1,
                run_id="r3",
                experiment_id="0",
                run_name="n",
                user_id="u",
                start_time=1,
                artifact_uri="file:///a",
                tags={"mlflow.user": "u"},
            )
        ).rstrip(),
    ]
)


def same_values(a: tuple, b: tuple) -> None:
    """Equal values, NaN included (NaN != NaN), of the same types."""
    assert len(a) == len(b), (a, b)
    for x, y in zip(a, b):
        assert type(x) is type(y), (a, b)
        assert x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)), (a, b)


def same(native: tuple[list, list[ev.Event]], python: list[ev.Event]) -> None:
    """The native tail holds the line decoder's metric events as points and its other events."""
    points, events = native
    metrics = [e for e in python if isinstance(e, ev.MetricLogged)]
    others = [e for e in python if not isinstance(e, ev.MetricLogged)]
    assert len(points) == len(metrics) and len(events) == len(others)
    for point, e in zip(points, metrics):
        same_values(point, (e.run_id, e.key, e.value, e.step, e.timestamp))
    for a, b in zip(events, others):
        assert type(a) is type(b)
        same_values(ev.field_values(a), ev.field_values(b))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.one_of(metric_line(), metric_line(), OTHER, KV, run_line(), damaged()), max_size=20),
    plain=st.integers(0, 20),
    blank_at=st.none() | st.integers(0, 20),
)
def test_native_tail_decoding_gives_the_events_of_the_line_decoder(lines, plain, blank_at) -> None:
    body = canonical(plain).splitlines() + lines
    if blank_at is not None:
        body.insert(min(blank_at, len(body)), b"")
    data = b"".join(line + b"\n" for line in body)
    python, bad = ev.decode_segment(data, "events/x.jsonl")
    native = segment_as_tail(data)
    if native is None:
        return  # declined: the reader decodes it line by line
    assert not bad, "a segment with a bad line must be declined"
    same(native, python)


def test_plain_segments_are_decoded_natively_and_odd_ones_declined() -> None:
    points = canonical(50)
    same(segment_as_tail(points), ev.decode_segment(points)[0])
    nan = ev.encode_metric_line("w-1", 1, "r1", "k", math.nan, 0, 1)
    assert math.isnan(segment_as_tail(points + nan)[0][-1][2])
    assert segment_as_tail(points + ARTIFACT + b"\n") is None  # another type: line by line
    assert segment_as_tail(points + b"\n" + canonical(1, start=99)) is None  # a blank line
    assert segment_as_tail(points[:-1]) is None  # no final newline
    assert segment_as_tail(points + b'{"v":1,"eid":"w-x","type":"metric"}\n') is None  # fields missing
