"""Compaction end to end: tables, reads before/after, the tail on top, exactly once, bad input.

Every test runs on the local store and on the moto S3 server (``store_uri``).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import Any

import orjson
import pytest

import evtrack
from compaction import compact
from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.entities import ViewType
from evtrack.read.reader import StoreReader
from evtrack.store import ObjectStore, open_store
from evtrack.store.base import list_keys
from evtrack.eventlog.writer import SegmentWriter


@pytest.fixture(autouse=True)
def _isolated(cache_dir: Any, fresh_evtrack: None) -> None:
    """Spool and table cache in tmp dirs; evtrack globals reset around each test."""


def inbox_keys(store: ObjectStore) -> list[str]:
    return [i.key for i in store.list("events/")]


def inbox_lines(store: ObjectStore) -> int:
    return sum(len([ln for ln in store.get(k).split(b"\n") if ln.strip()]) for k in inbox_keys(store))


def canon(obj: Any) -> Any:
    """Entities as plain data with NaN made comparable (NaN != NaN would fail every equality)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: canon(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: canon(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [canon(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return "NaN"
    return obj


def fresh_client(uri: str) -> evtrack.MlflowClient:
    """A client with a brand-new backend, as another process would have (nothing cached)."""
    from evtrack.read import backend

    backend._backends.pop(backend._normalize(uri), None)
    return evtrack.MlflowClient(uri)


def log_sample() -> dict[str, Any]:
    """Two experiments, two runs with params, tags (one deleted), metrics (with NaN), an artifact."""
    exp_id = evtrack.create_experiment("exp-a", tags={"team": "ml"})
    with evtrack.start_run(experiment_id=exp_id, run_name="first") as r1:
        evtrack.log_params({"lr": "0.1", "depth": "3"})
        evtrack.set_tags({"stage": "dev", "tmp": "x"})
        evtrack.delete_tag("tmp")
        for step in range(5):
            evtrack.log_metric("loss", 1.0 / (step + 1), step=step)
        evtrack.log_metric("acc", float("nan"), step=0)
        evtrack.log_text("hello", "notes/readme.txt")
    with evtrack.start_run(experiment_id=exp_id, run_name="second") as r2:
        evtrack.log_metric("loss", 0.5, step=0)
    evtrack.delete_run(r2.info.run_id)
    assert evtrack.flush()
    return {"exp_id": exp_id, "r1": r1.info.run_id, "r2": r2.info.run_id}


def snapshot(client: evtrack.MlflowClient, ids: dict[str, Any]) -> dict[str, Any]:
    """Every read a user would make of the sample, as comparable data."""
    runs = [ids["r1"], ids["r2"]]
    return canon(
        {
            "runs": {r: client.get_run(r) for r in runs},
            "history": {f"{r}/{k}": list(client.get_metric_history(r, k)) for r in runs for k in ("loss", "acc")},
            "experiments": list(client.search_experiments(view_type=ViewType.ALL)),
            "active": [e.name for e in client.search_experiments()],
            "by_name": {n: client.get_experiment_by_name(n) for n in ("Default", "exp-a", "nope")},
        }
    )


def by(rows: list[dict[str, Any]], *cols: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[c] for c in cols) if len(cols) > 1 else r[cols[0]]: r for r in rows}


# -- basic ---------------------------------------------------------------------------------


def test_every_table_holds_the_expected_rows(tracking_uri: str, table_rows) -> None:
    ids = log_sample()
    store = open_store(tracking_uri)
    segments, lines = len(inbox_keys(store)), inbox_lines(store)

    report = compact(store, grace_seconds=0)

    assert (report.segments, report.events, report.commits, report.version) == (segments, lines, 1, 1)
    assert report.quarantined == 0 and report.errors == []
    assert report.files_written >= 9 and report.bytes_written > 0
    assert inbox_keys(store) == []
    r1, r2, exp_id = ids["r1"], ids["r2"], ids["exp_id"]

    exps = by(table_rows(store, "experiments"), "experiment_id")
    assert {e["name"] for e in exps.values()} == {"Default", "exp-a"}
    assert exps[exp_id]["lifecycle_stage"] == "active"
    assert [(t["experiment_id"], t["key"], t["value"]) for t in table_rows(store, "experiment_tags")] == [
        (exp_id, "team", "ml")
    ]

    runs = by(table_rows(store, "runs"), "run_id")
    assert set(runs) == {r1, r2}
    assert (runs[r1]["status"], runs[r1]["lifecycle_stage"], runs[r1]["run_name"]) == ("FINISHED", "active", "first")
    assert (runs[r2]["status"], runs[r2]["lifecycle_stage"]) == ("FINISHED", "deleted")
    assert runs[r1]["end_time"] is not None and runs[r1]["experiment_id"] == exp_id

    params = {(p["run_id"], p["key"]): p["value"] for p in table_rows(store, "params")}
    assert params == {(r1, "lr"): "0.1", (r1, "depth"): "3"}

    tags = {(t["run_id"], t["key"]): t["value"] for t in table_rows(store, "tags")}
    assert tags[(r1, "stage")] == "dev"
    assert tags[(r1, "tmp")] is None  # the tombstone stays, so a late older tag_set cannot revive it
    assert tags[(r1, "mlflow.runName")] == "first" and tags[(r2, "mlflow.runName")] == "second"

    metrics = sorted(
        (m["run_id"], m["key"], m["step"], m["value"])
        for m in table_rows(store, "metrics")
        if not math.isnan(m["value"])
    )
    assert metrics == sorted([(r1, "loss", s, 1.0 / (s + 1)) for s in range(5)] + [(r2, "loss", 0, 0.5)])
    assert len(table_rows(store, "metrics")) == 7

    latest = {(m["run_id"], m["key"]): m for m in table_rows(store, "latest_metrics")}
    assert (latest[(r1, "loss")]["step"], latest[(r1, "loss")]["value"]) == (4, 0.2)
    assert math.isnan(latest[(r1, "acc")]["value"])
    assert latest[(r2, "loss")]["value"] == 0.5

    [art] = table_rows(store, "artifacts")
    assert (art["run_id"], art["path"], art["size"]) == (r1, "notes/readme.txt", 5)
    assert art["digest"].startswith("sha256:")

    events = table_rows(store, "events")
    assert len(events) == lines
    assert len({e["eid"] for e in events}) == lines
    assert sum(e["type"] == "metric" for e in events) == 7


def test_reads_are_unchanged_by_compaction_and_by_deleting_the_inbox(tracking_uri: str) -> None:
    ids = log_sample()
    client = evtrack.MlflowClient()
    before = snapshot(client, ids)
    assert before["runs"][ids["r1"]]["data"]["metrics"] == {"loss": 0.2, "acc": "NaN"}
    assert len(before["history"][f"{ids['r1']}/loss"]) == 5
    store = open_store(tracking_uri)

    compact(store, grace_seconds=3600)  # folded, the inbox still there
    assert inbox_keys(store) and mf.latest_version(store) == 1
    assert snapshot(client, ids) == before
    assert snapshot(fresh_client(tracking_uri), ids) == before

    report = compact(store, grace_seconds=0)  # nothing new; the folded segments are deleted
    assert (report.segments, report.commits) == (0, 0)
    assert report.deleted_segments > 0 and inbox_keys(store) == []
    assert snapshot(client, ids) == before
    assert snapshot(fresh_client(tracking_uri), ids) == before


def test_the_tail_is_folded_on_top_of_the_tables(tracking_uri: str, direct_writer) -> None:
    run = evtrack.start_run()
    rid = run.info.run_id
    for step in range(3):
        evtrack.log_metric("loss", 10.0 - step, step=step)
    evtrack.set_tag("phase", "warmup")
    evtrack.flush()
    store = open_store(tracking_uri)
    compact(store, grace_seconds=0)
    assert inbox_keys(store) == []

    client = evtrack.MlflowClient()
    client.log_metric(rid, "loss", 1.5, step=7)  # a tail point with a higher step: the new latest
    client.log_metric(rid, "loss", 99.0, step=1, timestamp=1)  # an older step: history only
    client.set_tag(rid, "phase", "train")  # newer tag overrides the compacted one
    evtrack.end_run("FAILED")  # a tail status change overrides the compacted RUNNING
    assert evtrack.flush()
    late = direct_writer(store)  # a late segment with an older status: must not win
    late.put(
        [
            late.event(ev.RunUpdated, ts=1, run_id=rid, status="KILLED", end_time=1),
            late.event(ev.TagSet, ts=1, run_id=rid, key="phase", value="stale"),
        ]
    )

    def check(c: evtrack.MlflowClient) -> None:
        got = c.get_run(rid)
        assert got.info.status == "FAILED" and got.info.end_time is not None
        assert got.data.metrics["loss"] == 1.5
        assert got.data.tags["phase"] == "train"
        history = [(m.step, m.value) for m in c.get_metric_history(rid, "loss")]
        assert sorted(history) == [(0, 10.0), (1, 9.0), (1, 99.0), (2, 8.0), (7, 1.5)]

    check(client)
    check(fresh_client(tracking_uri))
    compact(store, grace_seconds=0)  # the tail becomes tables: same answers
    assert inbox_keys(store) == []
    check(fresh_client(tracking_uri))


def test_reader_never_mixes_an_old_manifest_with_a_newer_inbox(tracking_uri: str, monkeypatch) -> None:
    """A compactor commits and deletes the inbox between a reader's manifest check and its listing."""
    from evtrack.read import backend

    with evtrack.start_run() as run:
        evtrack.log_param("p", "1")
        evtrack.log_metric("m", 1.0)
    assert evtrack.flush()
    real = open_store(tracking_uri)

    class CompactDuringList:
        """The store, except that the first inbox listing lets a compactor run just before it."""

        def __init__(self) -> None:
            self.armed = True

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def list(self, prefix: str = "", start_after: str | None = None):
            if prefix == "events/" and self.armed:
                self.armed = False
                compact(real, grace_seconds=0)
            return real.list(prefix, start_after)

        def list_keys(self, prefix: str = ""):
            if prefix == "events/" and self.armed:
                self.armed = False
                compact(real, grace_seconds=0)
            return list_keys(real, prefix)

    proxy = CompactDuringList()
    monkeypatch.setattr(backend, "open_store", lambda uri: proxy)
    client = fresh_client(tracking_uri)
    got = client.get_run(run.info.run_id)
    assert not proxy.armed and inbox_keys(real) == []
    assert got.data.params == {"p": "1"} and got.data.metrics == {"m": 1.0}


def test_append_tables_are_merged_in_tiers(local_uri: str, direct_writer, table_rows) -> None:
    from compaction.merge import FANOUT

    store = open_store(local_uri)
    w = direct_writer(store)
    commits = 2 * FANOUT + 3
    for i in range(commits):
        put_run(w, "r1", range(i * 4, i * 4 + 4))
        compact(store, grace_seconds=0)
    manifest = mf.load(store)
    assert manifest.version == commits
    for table in ("metrics", "events"):
        tiers = Counter(f["tier"] for f in manifest.files(table))
        assert tiers == {0: 3, 1: 2}, table  # 19 small files became 5, none lost
    assert [r[2] for r in metric_rows(store, table_rows)] == list(range(commits * 4))
    reader = StoreReader(store)
    reader.refresh()
    assert reader.metric_history("r1", "m").column("step").to_pylist() == list(range(commits * 4))


@pytest.mark.parametrize("hint", [b"1", b"99999", b"not a number", None])
def test_the_manifest_hint_is_only_a_hint(local_uri: str, direct_writer, hint: bytes | None) -> None:
    store = open_store(local_uri)
    w = direct_writer(store)
    for i in range(3):
        put_run(w, "r1", range(i, i + 1))
        compact(store, grace_seconds=0)
    if hint is None:
        store.delete(mf.HINT_KEY)
    else:
        store.put(mf.HINT_KEY, hint)  # stale, ahead of the log, or garbage
    assert mf.latest_version(store) == 3
    put_run(w, "r1", range(3, 4))
    report = compact(store, grace_seconds=0)
    assert (report.version, report.commits, report.retries) == (4, 1, 0)
    assert mf.list_versions(store) == [1, 2, 3, 4]


def test_progress_is_reported_while_folding_a_backlog(local_uri: str, direct_writer) -> None:
    from compaction import Compactor

    store = open_store(local_uri)
    w = direct_writer(store)
    for i in range(6):
        put_run(w, "r1", range(i * 5, i * 5 + 5))
    calls: list[tuple[int, int, int]] = []
    report = Compactor(store, grace_seconds=0, batch_bytes=1, progress=lambda *a: calls.append(a)).run()
    assert report.segments == 6
    assert calls == [(i, 6, 5 * i) for i in range(1, 7)]  # one batch per segment with batch_bytes=1


@pytest.mark.parametrize(
    ("max_segments", "max_bytes", "commits"),
    [(200_000, 512 << 20, 1), (2, 512 << 20, 3), (200_000, 1, 6), (4, 1, 6), (200_000, 0, 6)],
)
def test_a_backlog_is_folded_in_commits_within_both_limits(
    local_uri: str, direct_writer, max_segments: int, max_bytes: int, commits: int
) -> None:
    """A commit takes at most max_segments segments and max_bytes of them, and at least one."""
    from compaction import Compactor

    store = open_store(local_uri)
    w = direct_writer(store)
    for i in range(6):
        put_run(w, "r1", range(i * 5, i * 5 + 5))
    report = Compactor(
        store, grace_seconds=0, max_segments_per_commit=max_segments, max_bytes_per_commit=max_bytes
    ).run()
    assert (report.segments, report.commits) == (6, commits)
    assert mf.load(store).version == commits
    reader = StoreReader(store)
    reader.refresh()
    assert reader.metric_history("r1", "m").num_rows == 30


def test_empty_segments_fold_to_nothing(local_uri: str, direct_writer, table_rows) -> None:
    store = open_store(local_uri)
    w = direct_writer(store)
    w.put([])
    w.put([], raw=b"\n  \n")
    put_run(w, "r1", range(2))
    report = compact(store, grace_seconds=0)
    assert (report.segments, report.events, report.quarantined) == (3, 2, 0)
    assert inbox_keys(store) == [] and len(table_rows(store, "metrics")) == 2


# -- exactly once --------------------------------------------------------------------------


def metric_rows(store: ObjectStore, table_rows) -> list[tuple]:
    return sorted((m["run_id"], m["key"], m["step"], m["timestamp"], m["value"]) for m in table_rows(store, "metrics"))


def put_run(w, run_id: str, steps: range, **segment: Any) -> str:
    """One segment of metric points ``m`` of ``run_id`` (value = step = timestamp)."""
    events = [w.event(ev.MetricLogged, run_id=run_id, key="m", value=float(s), step=s, timestamp=s) for s in steps]
    return w.put(events, **segment)


def test_compacting_twice_folds_nothing_twice(store_uri: str, direct_writer, table_rows) -> None:
    store = open_store(store_uri)
    w = direct_writer(store)
    for i in range(3):
        put_run(w, "r1", range(i * 10, i * 10 + 10))
    first = compact(store, grace_seconds=0)
    rows = metric_rows(store, table_rows)
    second = compact(store, grace_seconds=0)
    assert (first.segments, first.events, first.commits) == (3, 30, 1)
    assert (second.segments, second.events, second.commits, second.version) == (0, 0, 0, 1)
    assert mf.list_versions(store) == [1]
    assert metric_rows(store, table_rows) == rows and len(rows) == 30
    assert len(table_rows(store, "events")) == 30


@pytest.mark.parametrize("grace", [0, 3600])
def test_a_segment_re_put_after_it_was_folded_is_not_folded_again(
    store_uri: str, direct_writer, table_rows, grace: float
) -> None:
    store = open_store(store_uri)
    w = direct_writer(store)
    key = put_run(w, "r1", range(5))
    data = store.get(key)
    compact(store, grace_seconds=grace)
    rows = metric_rows(store, table_rows)
    assert len(rows) == 5

    store.put(key, data)  # a writer whose first PUT timed out sends the same key and bytes again
    report = compact(store, grace_seconds=grace)
    assert (report.segments, report.events, report.commits) == (0, 0, 0)
    assert mf.list_versions(store) == [1]
    assert metric_rows(store, table_rows) == rows
    assert len(table_rows(store, "events")) == 5
    if grace == 0:
        assert report.deleted_segments == 1 and inbox_keys(store) == []
    else:
        assert inbox_keys(store) == [key]  # kept for the grace period, still not folded twice
        assert compact(store, grace_seconds=0).deleted_segments == 1
        assert metric_rows(store, table_rows) == rows
    reader = StoreReader(store)
    reader.refresh()
    assert reader.metric_history("r1", "m").column("step").to_pylist() == [0, 1, 2, 3, 4]


def test_late_segments_are_folded_by_the_next_compaction(store_uri: str, direct_writer, table_rows) -> None:
    store = open_store(store_uri)
    w = direct_writer(store, "aaaa", ms=1_700_000_005_000)
    put_run(w, "r1", range(0, 3), seq=1)
    put_run(w, "r1", range(6, 9), seq=3)  # seq 2 is still in some writer's spool
    assert compact(store, grace_seconds=0).segments == 2
    assert mf.load(store).writers["aaaa"].seq == 1 and mf.load(store).writers["aaaa"].extra == {3}

    put_run(w, "r1", range(3, 6), seq=2, ms=1_700_000_000_000)  # lands late, with an older key time
    old = direct_writer(store, "0000", ms=1_600_000_000_000)  # sorts before everything folded
    put_run(old, "r2", range(4))
    report = compact(store, grace_seconds=0)

    assert (report.segments, report.events) == (2, 7)
    assert mf.load(store).writers["aaaa"].seq == 3 and mf.load(store).writers["aaaa"].extra == set()
    steps = [(r[0], r[2]) for r in metric_rows(store, table_rows)]
    assert steps == [("r1", s) for s in range(9)] + [("r2", s) for s in range(4)]
    assert inbox_keys(store) == []


def test_exact_duplicates_count_once_in_the_history_view(store_uri: str, direct_writer, table_rows) -> None:
    store = open_store(store_uri)
    w = direct_writer(store, "aaaa")
    events = [
        w.event(
            ev.RunCreated,
            run_id="r1",
            experiment_id="0",
            run_name="n",
            user_id="u",
            start_time=1,
            artifact_uri="file:///x",
            tags={},
        ),
        w.event(ev.ParamLogged, run_id="r1", key="p", value="1"),
    ]
    events += [w.event(ev.MetricLogged, run_id="r1", key="m", value=float(s), step=s, timestamp=5) for s in range(3)]
    events.append(w.event(ev.MetricLogged, run_id="r1", key="m", value=2.0, step=2, timestamp=5))  # same point
    w.put(events)
    direct_writer(store, "bbbb").put(events)  # the same events again, under another writer's key

    expected = [(0, 5, 0.0), (1, 5, 1.0), (2, 5, 2.0)]
    reader = fresh_client(store_uri)
    assert [(m.step, m.timestamp, m.value) for m in reader.get_metric_history("r1", "m")] == expected

    report = compact(store, grace_seconds=0)
    assert (report.segments, report.conflicts) == (2, 0)
    assert len(table_rows(store, "metrics")) == 8  # the log keeps every point it was given...
    reader = fresh_client(store_uri)
    assert [(m.step, m.timestamp, m.value) for m in reader.get_metric_history("r1", "m")] == expected
    run = reader.get_run("r1")  # ...and the views count each exact duplicate once
    assert (run.data.metrics, run.data.params) == ({"m": 2.0}, {"p": "1"})
    assert [(r["run_id"], r["key"], r["step"]) for r in table_rows(store, "latest_metrics")] == [("r1", "m", 2)]


# -- bad input -----------------------------------------------------------------------------


def _line(**obj: Any) -> bytes:
    return orjson.dumps({"v": 1, "eid": "x-9", "ts": 5, **obj}) + b"\n"


_METRIC = {"type": "metric", "run_id": "r1", "key": "m", "value": 1.0, "step": 9, "timestamp": 9}
BAD_LINES = {
    "malformed JSON": b'{"v": 1, "eid": "x-9", "type": "param", "run_id": \n',
    "not an object": b"[1, 2, 3]\n",
    "unknown event type": _line(type="telepathy", run_id="r1"),
    "unknown version": _line(**{**_METRIC, "v": 2}),
    "version true": _line(**{**_METRIC, "v": True}),
    "param value of the wrong type": _line(type="param", run_id="r1", key="q", value=3),
    "metric step of the wrong type": _line(**{**_METRIC, "step": "9"}),
    "metric value null (NaN written by a naive encoder)": _line(**{**_METRIC, "value": None}),
    "version 1.0": _line(**{**_METRIC, "v": 1.0}),
    "run_id null": _line(**{**_METRIC, "run_id": None}),
    "eid null": _line(**{**_METRIC, "eid": None}),
    "key null": _line(**{**_METRIC, "key": None}),
    "step as a float": _line(**{**_METRIC, "step": 3.0}),
    "ts as a float": _line(**{**_METRIC, "ts": 5.0}),
    "step past 64 bits": _line(**{**_METRIC, "step": 2**63}),
    "timestamp past 64 bits": _line(**{**_METRIC, "timestamp": 2**64 - 1}),
    "run tags not a string map": _line(
        type="run_created",
        run_id="r9",
        experiment_id="0",
        run_name="n",
        user_id="u",
        start_time=1,
        artifact_uri="x",
        tags={"a": 1},
    ),
    "unknown field": _line(type="param", run_id="r1", key="q", value="3", extra="x"),
    "missing field": _line(type="tag_set", run_id="r1", key="k"),
    "invalid UTF-8": b'{"v": 1, "eid": "x-9", "type": "tag_set", "run_id": "r1", "key": "k", "value": "\xff"}\n',
}


def good_events(w) -> tuple[list[Any], list[Any]]:
    head = [
        w.event(
            ev.RunCreated,
            run_id="r1",
            experiment_id="0",
            run_name="n",
            user_id="u",
            start_time=1,
            artifact_uri="file:///x",
            tags={},
        ),
        w.event(ev.MetricLogged, run_id="r1", key="m", value=0.0, step=0, timestamp=0),
    ]
    tail = [
        w.event(ev.ParamLogged, run_id="r1", key="p", value="1"),
        w.event(ev.MetricLogged, run_id="r1", key="m", value=1.0, step=1, timestamp=1),
    ]
    return head, tail


@pytest.mark.parametrize("bad", list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_a_bad_line_is_quarantined_and_the_rest_of_its_segment_folds(
    local_uri: str, direct_writer, table_rows, bad: bytes
) -> None:
    store_uri = local_uri  # every case on S3 too: the next test
    store = open_store(store_uri)
    w = direct_writer(store)
    head, tail = good_events(w)
    from evtrack.eventlog.events import encode

    key = w.key()
    store.put(key, b"".join(map(encode, head)) + bad + b"".join(map(encode, tail)))
    assert fresh_client(store_uri).get_run("r1").data.params == {"p": "1"}  # the tail reader copes too

    report = compact(store, grace_seconds=0)

    assert (report.segments, report.quarantined_lines, report.quarantined) == (1, 1, 1)
    assert report.events == 4
    doc = orjson.loads(store.get(f"quarantine/lines/{key.rsplit('/', 1)[1]}.json"))
    assert doc["segment"] == key
    [entry] = doc["lines"]
    assert entry["line"] == 3 and entry["raw"] == bad.decode("utf-8", "replace").rstrip("\n") and entry["error"]
    assert [(m["step"], m["value"]) for m in sorted(table_rows(store, "metrics"), key=lambda m: m["step"])] == [
        (0, 0.0),
        (1, 1.0),
    ]
    assert [(p["key"], p["value"]) for p in table_rows(store, "params")] == [("p", "1")]
    assert len(table_rows(store, "events")) == 4
    run = fresh_client(store_uri).get_run("r1")
    assert (run.data.params, run.data.metrics) == ({"p": "1"}, {"m": 1.0})


def test_every_kind_of_bad_line_in_one_compaction(store_uri: str, direct_writer, table_rows) -> None:
    store = open_store(store_uri)
    keys = []
    for n, bad in enumerate(BAD_LINES.values()):
        w = direct_writer(store)
        head, tail = good_events(w)
        keys.append(w.put(head, raw=bad + b"".join(ev.encode(e) for e in tail)))

    report = compact(store, grace_seconds=0)

    n = len(BAD_LINES)
    assert (report.segments, report.events, report.quarantined_lines, report.quarantined) == (n, 4 * n, n, n)
    for key, bad in zip(keys, BAD_LINES.values()):
        doc = orjson.loads(store.get(f"quarantine/lines/{key.rsplit('/', 1)[1]}.json"))
        assert [(e["line"], e["raw"]) for e in doc["lines"]] == [(3, bad.decode("utf-8", "replace").rstrip("\n"))]
    assert len(table_rows(store, "metrics")) == 2 * n and len(table_rows(store, "events")) == 4 * n
    assert inbox_keys(store) == []
    run = fresh_client(store_uri).get_run("r1")
    assert (run.data.params, run.data.metrics) == ({"p": "1"}, {"m": 1.0})


def test_a_truncated_segment_keeps_every_whole_line(local_uri: str, direct_writer, table_rows) -> None:
    store = open_store(local_uri)
    w = direct_writer(store)
    head, tail = good_events(w)
    from evtrack.eventlog.events import encode

    data = b"".join(map(encode, head + tail))
    key = w.key()
    store.put(key, data[:-20])  # the upload was cut in the middle of the last line

    report = compact(store, grace_seconds=0)

    assert (report.segments, report.events, report.quarantined_lines) == (1, 3, 1)
    doc = orjson.loads(store.get(f"quarantine/lines/{key.rsplit('/', 1)[1]}.json"))
    assert doc["lines"][0]["raw"] == encode(tail[-1])[:-20].decode()
    assert [m["step"] for m in table_rows(store, "metrics")] == [0]
    assert [p["key"] for p in table_rows(store, "params")] == ["p"]


def test_objects_that_are_not_segments_are_quarantined_whole(store_uri: str, direct_writer, table_rows) -> None:
    store = open_store(store_uri)
    w = direct_writer(store)
    head, tail = good_events(w)
    w.put(head)
    sneaky = b"".join(ev.encode(e) for e in tail)  # valid events, but not under a segment key
    strays = {
        "events/notes.txt": b"hello",
        "events/hello.jsonl": sneaky,
        "events/0000000000001-abc-notanumber.jsonl": sneaky,
        "events/a-b.jsonl": b"\x00\xff",
    }
    for key, data in strays.items():
        store.put(key, data)
    assert fresh_client(store_uri).get_run("r1").data.params == {}  # never folded by readers either

    report = compact(store, grace_seconds=0)

    assert (report.segments, report.quarantined_segments, report.quarantined) == (1, 4, 4)
    assert inbox_keys(store) == []
    for key, data in strays.items():
        assert store.get(f"quarantine/segments/{key.rsplit('/', 1)[1]}") == data
    assert table_rows(store, "params") == [] and len(table_rows(store, "metrics")) == 1
    assert compact(store, grace_seconds=0).quarantined == 0  # reported once


def conflict_records(store: ObjectStore, version: int) -> list[dict[str, Any]]:
    """The param conflicts recorded by the commit of ``version``."""
    [info] = store.list(f"quarantine/conflicts/{version:020d}-")
    return orjson.loads(store.get(info.key))


def _conflicting_writers(store: ObjectStore, first: str, second: str) -> tuple[SegmentWriter, SegmentWriter]:
    a, b = SegmentWriter(store), SegmentWriter(store)
    a.append(
        ev.encode(
            ev.RunCreated(
                eid=a.next_eid(),
                ts=1,
                run_id="r1",
                experiment_id="0",
                run_name="n",
                user_id="u",
                start_time=1,
                artifact_uri="file:///x",
                tags={},
            )
        )
    )
    a.append(ev.encode(ev.ParamLogged(eid=a.next_eid(), ts=10, run_id="r1", key="lr", value=first)))
    b.append(ev.encode(ev.ParamLogged(eid=b.next_eid(), ts=20, run_id="r1", key="lr", value=second)))
    return a, b


def test_a_param_conflict_across_writers_is_quarantined(store_uri: str, table_rows) -> None:
    store = open_store(store_uri)
    a, b = _conflicting_writers(store, "0.1", "0.2")
    assert a.close() and b.close()

    report = compact(store, grace_seconds=0)

    assert (report.segments, report.conflicts, report.quarantined) == (2, 1, 1)
    [conflict] = conflict_records(store, report.version)
    assert (conflict["run_id"], conflict["key"], conflict["kept"], conflict["rejected"]) == ("r1", "lr", "0.1", "0.2")
    assert [(p["key"], p["value"]) for p in table_rows(store, "params")] == [("lr", "0.1")]
    assert fresh_client(store_uri).get_run("r1").data.params == {"lr": "0.1"}


@pytest.mark.parametrize("order", ["earlier value first", "earlier value late"])
def test_a_param_conflict_across_compactions_keeps_the_earliest_value(local_uri: str, table_rows, order: str) -> None:
    store_uri = local_uri  # across writers on S3: the test above
    store = open_store(store_uri)
    a, b = _conflicting_writers(store, "0.1", "0.2")  # a's value is the earlier one (ts 10 < 20)
    first, then = (a, b) if order == "earlier value first" else (b, a)
    assert first.close()
    assert compact(store, grace_seconds=0).conflicts == 0
    assert then.close()

    report = compact(store, grace_seconds=0)

    assert report.conflicts == 1 and report.segments == 1
    [conflict] = conflict_records(store, report.version)
    assert (conflict["kept"], conflict["rejected"]) == ("0.1", "0.2")
    assert [(p["key"], p["value"]) for p in table_rows(store, "params")] == [("lr", "0.1")]
    assert fresh_client(store_uri).get_run("r1").data.params == {"lr": "0.1"}


def test_the_cyclic_garbage_collector_is_paused_during_a_pass_and_restored(
    local_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from compaction import compactor as compactor_module

    store = open_store(local_uri)
    seen: list[bool] = []
    original = compactor_module.fetch_batches

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(compactor_module, "fetch_batches", spy)
    for i, enabled in enumerate((True, False)):
        line = ev.encode(ev.ParamLogged(eid=f"w{i}-1", ts=1, run_id=f"r{i}", key="k", value="v"))
        store.put(f"events/{1_700_000_000_000 + i:013d}-w{i}-000001.jsonl", line)
        (gc.enable if enabled else gc.disable)()
        try:
            assert compact(store, grace_seconds=0).events == 1
            assert gc.isenabled() is enabled  # restored as it was
        finally:
            gc.enable()
    assert seen == [False, False]  # off while folding
