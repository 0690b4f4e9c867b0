"""Property: the columnar fold of run events and latest metrics equals the pure per-event fold.

Random run creations, updates (status, end time, name, each optional), deletions
and restores, with tied, negative and out-of-order stamps and events delivered
twice, are folded by ``evtrack.state.fold`` one event at a time and by
``compaction.run_fold`` column-wise — whole, and split into commits where each
commit folds the previous commit's ``runs`` table with new rows. The tables must
be identical. The same for the latest value of metric series (NaN, ±inf, ties).
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from compaction import run_fold
from evtrack.eventlog import events as ev
from evtrack.state import tables
from evtrack.state.fold import fold

RUN = st.sampled_from(("r1", "r2", "r10"))
TS = st.integers(-3, 6)  # ties, stamps before the fold's own (-1, ""), and out of order on purpose
NAME = st.sampled_from(("n1", "n2", ""))
STATUS = st.sampled_from(("RUNNING", "FINISHED", "FAILED", "KILLED"))


def _event(kind: int, i: int, run_id: str, ts: int, draw: Any) -> ev.Event:
    common = {"eid": f"e{i:03d}", "ts": ts, "run_id": run_id}
    if kind == 0:
        return ev.RunCreated(
            **common,
            experiment_id=draw(st.sampled_from(("1", "2"))),
            run_name=draw(NAME),
            user_id=draw(st.sampled_from(("u", "v"))),
            start_time=draw(TS),
            artifact_uri=draw(st.sampled_from(("file:///a", "s3://b/c"))),
            parent_run_id=draw(st.none() | RUN),
            tags={},
        )
    if kind == 1:
        return ev.RunUpdated(
            **common, status=draw(st.none() | STATUS), end_time=draw(st.none() | TS), run_name=draw(st.none() | NAME)
        )
    return (ev.RunDeleted if kind == 2 else ev.RunRestored)(**common)


@st.composite
def run_streams(draw: Any) -> list[ev.Event]:
    specs = draw(st.lists(st.tuples(st.integers(0, 3), RUN, TS), min_size=1, max_size=30))
    events = [_event(kind, i, run_id, ts, draw) for i, (kind, run_id, ts) in enumerate(specs)]
    copies = draw(st.lists(st.sampled_from(events), max_size=4))  # the same event delivered again
    return draw(st.permutations(events + copies))


def reference(events: list[ev.Event]) -> list[dict]:
    state = fold(events)
    return tables.run_tables(state, state.runs)["runs"].to_pylist()


def columnar(events: list[ev.Event], base: pa.Table | None = None) -> pa.Table:
    rows = [run_fold.event_row(e.type, e, ev.encode(e)[:-1]) for e in events]
    table = run_fold.rows_table(rows)
    return run_fold.fold_runs(base, [table] if table is not None else [])


@settings(max_examples=300, deadline=None)
@given(run_streams(), st.integers(0, 30))
def test_run_fold_matches_the_pure_fold_whole_and_in_commits(events: list[ev.Event], cut: int) -> None:
    expected = reference(events)
    assert columnar(events).to_pylist() == expected
    first = columnar(events[:cut])
    assert columnar(events[cut:], base=first).to_pylist() == expected


def test_a_run_known_only_by_its_end_keeps_the_creation_defaults() -> None:
    events = [ev.RunUpdated(eid="e1", ts=5, run_id="r1", status="FINISHED", end_time=9)]
    (row,) = columnar(events).to_pylist()
    assert row["status"] == "FINISHED" and row["end_time"] == 9
    assert (row["created_ts"], row["created_eid"], row["experiment_id"], row["start_time"]) == (-1, "", "", None)
    assert row == reference(events)[0]


FLOAT = st.sampled_from((0.0, 1.0, -2.5, math.nan, math.inf, -math.inf))


def _num(x: float) -> Any:
    return "NaN" if math.isnan(x) else x + 0.0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(RUN, st.sampled_from(("a", "b")), FLOAT, st.integers(0, 2), st.integers(0, 2)), min_size=1),
    st.integers(0, 20),
)
def test_latest_metrics_fold_matches_the_pure_fold(points: list[tuple], cut: int) -> None:
    events = [
        ev.MetricLogged(eid=f"m{i}", ts=1, run_id=r, key=k, value=v, step=s, timestamp=t)
        for i, (r, k, v, s, t) in enumerate(points)
    ]
    state = fold(events)
    expected = {
        (r, k): (m.latest[0], m.latest[1], _num(m.latest[2]))
        for r, series in state.metrics.items()
        for k, m in series.items()
    }

    def table(pts: list[tuple]) -> pa.Table:
        cols = list(zip(*pts)) if pts else [[]] * 5
        names = ["run_id", "key", "value", "step", "timestamp"]
        return pa.table(
            [pa.array(c, tables.schema("latest_metrics").field(n).type) for c, n in zip(cols, names)], names=names
        )

    for got in (
        run_fold.fold_latest([table(points)]),
        run_fold.fold_latest([run_fold.fold_latest([table(points[:cut])]), table(points[cut:])]),
    ):
        rows = got.to_pylist()
        assert len(rows) == len(expected)
        assert {(r["run_id"], r["key"]): (r["step"], r["timestamp"], _num(r["value"])) for r in rows} == expected
