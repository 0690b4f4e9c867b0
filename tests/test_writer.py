"""The segment writer: when segments are cut, what they are called, bounded memory, outages, spool."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evtrack
from evtrack.eventlog import events as ev
from evtrack.read.backend import get_backend
from evtrack.state.fold import fold
from evtrack.eventlog.spool import Spool
from evtrack.store import open_store
from evtrack.eventlog.writer import SegmentWriter

SEGMENT_KEY = re.compile(r"^events/(\d{13})-([0-9a-f]{12})-(\d{6})\.jsonl$")


def _line(i: int, run_id: str = "r") -> bytes:
    return ev.encode(ev.TagSet(eid=f"t-{i}", ts=i, run_id=run_id, key=f"k{i}", value="v" * 40))


def _inbox_keys(uri: str) -> list[str]:
    return [i.key for i in open_store(uri).list("events/")]


def _wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def make_writer(store_uri: str, spool_dir: Path) -> Any:
    writers: list[SegmentWriter] = []

    def make(**kwargs: Any) -> SegmentWriter:
        store = open_store(store_uri)
        writer = SegmentWriter(store, spool=Spool(store.uri, spool_dir), **kwargs)
        writers.append(writer)
        return writer

    yield make
    for w in writers:
        w.close()


# -- segment keys ------------------------------------------------------------------------------


def test_segment_keys_are_unique_per_writer_and_well_formed(make_writer: Any, store_uri: str, inbox: Any) -> None:
    a, b = make_writer(flush_interval=60), make_writer(flush_interval=60)
    assert a.writer_id != b.writer_id
    for i in range(3):
        a.append(_line(i))
        b.append(_line(100 + i))
        assert a.flush().segments_written == 1 and b.flush().segments_written == 1
    assert a.flush().segments_written == 0  # nothing buffered: no empty segment

    keys = _inbox_keys(store_uri)
    assert len(keys) == len(set(keys)) == 6
    parsed = [SEGMENT_KEY.match(k) for k in keys]
    assert all(parsed), keys
    per_writer: dict[str, list[int]] = {}
    for m in parsed:
        per_writer.setdefault(m.group(2), []).append(int(m.group(3)))
    assert {w: sorted(seqs) for w, seqs in per_writer.items()} == {a.writer_id: [1, 2, 3], b.writer_id: [1, 2, 3]}
    assert sorted(e.eid for e in inbox(store_uri)) == sorted(f"t-{i}" for i in (0, 1, 2, 100, 101, 102))


def test_event_ids_are_unique_across_writers(make_writer: Any) -> None:
    a, b = make_writer(), make_writer()
    ids = [a.next_eid() for _ in range(100)] + [b.next_eid() for _ in range(100)]
    assert len(set(ids)) == 200
    assert all(i.startswith(f"{a.writer_id}-") for i in ids[:100])


# -- when segments are cut ---------------------------------------------------------------------


def test_a_segment_is_cut_when_the_buffer_passes_the_size_threshold(make_writer: Any, store_uri: str) -> None:
    w = make_writer(flush_bytes=2_000, flush_interval=60)
    w.append(_line(0))
    time.sleep(0.3)
    assert _inbox_keys(store_uri) == []  # under the threshold and long before the time bound
    for i in range(1, 40):  # ~100 bytes each: well past 2,000 bytes
        w.append(_line(i))
    assert _wait_for(lambda: _inbox_keys(store_uri)), "no segment after passing the size threshold"


def test_a_segment_is_cut_within_the_time_bound(make_writer: Any, store_uri: str) -> None:
    w = make_writer(flush_interval=0.1)
    w.append(_line(0))
    started = time.monotonic()
    assert _wait_for(lambda: _inbox_keys(store_uri), timeout=3), "no segment after the time bound"
    assert time.monotonic() - started < 2.0


def test_explicit_flush_makes_everything_durable_at_once(make_writer: Any, store_uri: str, inbox: Any) -> None:
    w = make_writer(flush_interval=60)
    for i in range(5):
        w.append(_line(i))
    w.append_metric(1, "r", "loss", 0.5, 3, 2)
    result = w.flush()
    assert result.durable and bool(result)
    assert (result.segments_written, result.pending_segments, result.pending_bytes, result.error) == (1, 0, 0, None)
    events = inbox(store_uri)
    assert len(events) == 6
    (metric,) = [e for e in events if isinstance(e, ev.MetricLogged)]
    assert (metric.ts, metric.run_id, metric.key, metric.value, metric.step, metric.timestamp) == (
        1,
        "r",
        "loss",
        0.5,
        3,
        2,
    )
    assert metric.eid.startswith(f"{w.writer_id}-")


def test_fluent_flush_reports_every_backend(tracking_uri: str) -> None:
    evtrack.log_metric("m", 1.0)
    result = evtrack.flush()
    assert result.durable and result.segments_written >= 1 and result.pending_segments == 0


def test_end_run_sends_the_run_without_an_explicit_flush(tracking_uri: str, monkeypatch: Any, inbox: Any) -> None:
    monkeypatch.setenv("EVTRACK_FLUSH_INTERVAL", "60")  # no timed flush can help
    with evtrack.start_run() as run:
        for step in range(10):
            evtrack.log_metric("loss", 1.0 / (step + 1), step=step)
    run_id = run.info.run_id

    def landed() -> Any:
        state = fold(inbox(tracking_uri))
        r = state.runs.get(run_id)
        return r is not None and r.status == "FINISHED" and len(state.metrics[run_id]["loss"].points) == 10

    assert _wait_for(landed, timeout=5), "end_run did not send the run's events"


def _run_script(
    code: str, *args: str, env: dict[str, str] | None = None, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        **kwargs,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_events_are_sent_at_interpreter_exit(tracking_uri: str, inbox: Any) -> None:
    proc = _run_script(
        """
        import sys, evtrack
        evtrack.set_tracking_uri(sys.argv[1])
        run = evtrack.start_run()
        for step in range(50):
            evtrack.log_metric("loss", float(step), step=step)
        evtrack.log_param("alpha", 0.5)
        print(run.info.run_id)
        # no flush, no end_run: the exit hooks must do both
        """,
        tracking_uri,
        env={"EVTRACK_FLUSH_INTERVAL": "60"},
    )
    run_id = proc.stdout.strip()
    state = fold(inbox(tracking_uri))
    assert len(state.metrics[run_id]["loss"].points) == 50
    assert state.live_params(run_id) == {"alpha": "0.5"}
    assert state.runs[run_id].status == "FINISHED"  # ended at exit, as MLflow does
    assert evtrack.EvtrackClient(tracking_uri).get_run(run_id).info.status == "FINISHED"


# -- bounded memory ----------------------------------------------------------------------------


def test_the_buffer_stays_bounded_and_nothing_is_lost(make_writer: Any, store_uri: str, inbox: Any) -> None:
    w = make_writer(flush_bytes=3_000, max_buffer_bytes=3_000, flush_interval=60)
    line_size = len(_line(0))
    peak = 0
    for i in range(500):
        w.append(_line(i))
        peak = max(peak, w.pending_bytes())
    assert peak <= 3_000 + line_size
    assert w.flush().durable
    sizes = [info.size for info in open_store(store_uri).list("events/")]
    assert len(sizes) >= 500 * line_size // (3_000 + line_size)
    assert max(sizes) <= 3_000 + line_size  # no segment (so no buffer) ever held more
    eids = Counter(e.eid for e in inbox(store_uri))
    assert eids == Counter(f"t-{i}" for i in range(500))  # every line, exactly once


# -- S3 outage ---------------------------------------------------------------------------------


@pytest.fixture
def outage_s3(moto_server_factory: Any, monkeypatch: pytest.MonkeyPatch, fresh_evtrack: None) -> Any:
    """A dedicated moto server (to stop and restart) with a fresh bucket; fast-failing S3 settings."""
    import boto3

    server = moto_server_factory()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("EVTRACK_S3_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("EVTRACK_S3_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("EVTRACK_S3_READ_TIMEOUT", "2")
    bucket = f"outage-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=server.url).create_bucket(Bucket=bucket)
    return server, f"s3://{bucket}/tracking"


def _metric_lines(uri: str, run_id: str, inbox: Any, key: str = "loss") -> Counter:
    """How often each step of a metric appears in the raw log."""
    return Counter(e.step for e in inbox(uri) if isinstance(e, ev.MetricLogged) and e.run_id == run_id and e.key == key)


def test_s3_outage_mid_run_loses_nothing_and_duplicates_nothing(
    outage_s3: Any, spool_dir: Path, monkeypatch: Any, inbox: Any
) -> None:
    server, uri = outage_s3
    monkeypatch.setenv("EVTRACK_FLUSH_INTERVAL", "0.05")
    monkeypatch.setenv("EVTRACK_MAX_BUFFER_BYTES", "20000")
    client = evtrack.EvtrackClient(uri)
    run_id = client.create_run("0").info.run_id
    for step in range(100):
        client.log_metric(run_id, "loss", float(step), step=step)
    assert client.flush().durable

    server.stop()
    writer = get_backend(uri).writer
    slowest = 0.0
    peak = 0
    for step in range(100, 1100):
        started = time.perf_counter()
        client.log_metric(run_id, "loss", float(step), step=step)
        if step % 100 == 0:
            client.log_batch(run_id, metrics=[evtrack.Metric("acc", 0.5, 0, step)])
        slowest = max(slowest, time.perf_counter() - started)
        peak = max(peak, writer.pending_bytes())
        if step % 50 == 0:
            time.sleep(0.02)  # let the writer thread try (and fail) to reach the store
    # a call that waited on the store would take a connect attempt and its retries (seconds);
    # the bound leaves room for a loaded 2-core machine's scheduling stalls
    assert slowest < 0.25, f"a log call took {slowest * 1000:.1f} ms during the outage"
    assert peak <= 20_000 + 200  # memory stays bounded: the buffer parks in the spool

    result = client.flush()
    assert not result.durable and not result
    assert result.pending_segments >= 1 and result.pending_bytes > 0
    assert result.error and "S3" in result.error
    spooled = Spool(uri, spool_dir)
    parked = {key: path.read_bytes() for key, path in spooled.pending()}
    assert len(parked) == result.pending_segments
    assert all(SEGMENT_KEY.match(k) for k in parked)

    server.start()
    result = client.flush()
    assert result.durable and result.pending_segments == 0 and result.error is None
    assert spooled.count() == (0, 0)

    store = open_store(uri)
    for key, data in parked.items():  # re-sent under the same key with the same bytes
        assert store.get(key) == data
    counts = _metric_lines(uri, run_id, inbox)
    assert sorted(counts) == list(range(1100)) and set(counts.values()) == {1}  # exactly once
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(1100))
    assert _metric_lines(uri, run_id, inbox, "acc") == Counter(range(100, 1100, 100))
    assert len(client.get_metric_history(run_id, "acc")) == 10


def test_a_segment_spooled_by_a_dead_process_is_sent_by_a_later_one(
    outage_s3: Any, spool_dir: Path, inbox: Any
) -> None:
    server, uri = outage_s3
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
            import os, signal, sys, evtrack
            client = evtrack.EvtrackClient(sys.argv[1])
            run_id = client.create_run("0").info.run_id
            assert client.flush().durable
            print(run_id, flush=True)
            sys.stdin.readline()  # the store goes away now
            for step in range(50):
                client.log_metric(run_id, "loss", float(step), step=step)
            result = client.flush()
            print(result.durable, result.pending_segments, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # die: no exit hook runs
            """
            ),
            uri,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EVTRACK_FLUSH_INTERVAL": "60"},
    )
    try:
        run_id = first.stdout.readline().strip()
        assert run_id, first.stderr.read()
        server.stop()
        first.stdin.write("go\n")
        first.stdin.flush()
        durable, pending = first.stdout.readline().split()
        assert (durable, int(pending)) == ("False", 1)
        assert first.wait(timeout=30) == -9
    finally:
        if first.poll() is None:
            first.kill()
    assert Spool(uri, spool_dir).count()[0] == 1
    server.start()

    later = _run_script(
        """
        import sys, evtrack
        client = evtrack.EvtrackClient(sys.argv[1])
        print(len(client.get_metric_history(sys.argv[2], "loss")))
        """,
        uri,
        run_id,
    )
    assert later.stdout.strip() == "50"
    assert Spool(uri, spool_dir).count() == (0, 0)
    counts = _metric_lines(uri, run_id, inbox)
    assert sorted(counts) == list(range(50)) and set(counts.values()) == {1}


_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**53), 2**53), st.just(-0.0))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("metric"), _values, st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**63 - 1)),
            st.tuples(st.just("tag"), st.text(max_size=8), st.integers(0, 9), st.integers(0, 9)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_the_events_handed_to_the_reader_are_the_segment_decoded(tmp_path_factory: Any, items: list) -> None:
    """A segment's points and events built from the writer's buffer (not parsed) equal the segment parsed."""
    writer = SegmentWriter(open_store(str(tmp_path_factory.mktemp("w"))), flush_interval=3600)
    handed: list = []
    writer.on_segment = lambda key, data, events: handed.append((data, events))
    for kind, a, b, c in items:
        if kind == "metric":
            writer.append_many([writer.metric_item(5, "run", "m", a, b, c)])
        else:
            writer.append(ev.encode(ev.TagSet(eid=writer.next_eid(), ts=b, run_id="run", key="k", value=a)))
    writer.flush()
    writer.close()
    [(data, events)] = handed
    parsed, bad = ev.decode_segment(data)
    assert bad == []
    points, others = events()
    want_points, want_others = ev.split_points(parsed)
    assert repr(points) == repr(want_points)
    assert [type(e) for e in others] == [type(e) for e in want_others]
    assert [repr(ev.field_values(e)) for e in others] == [repr(ev.field_values(e)) for e in want_others]
