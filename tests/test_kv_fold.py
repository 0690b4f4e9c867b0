"""Property: the columnar fold of params and tags equals the pure per-event fold.

Random param, tag-set and tag-delete events (conflicting values, repeated values,
out-of-order and tied timestamps, tombstones) are folded by ``evtrack.state.fold``
one event at a time and by ``compaction.kv_fold`` column-wise — whole, and split
into commits where each commit folds the previous commit's table with new rows.
The tables must be identical, and so must the conflicts of a whole fold.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from compaction import kv_fold
from evtrack.eventlog import events as ev
from evtrack.state.fold import fold

RUN = st.sampled_from(("r1", "r2", "r10"))
KEY = st.sampled_from(("a", "b", "alpha"))
VAL = st.sampled_from(("x", "y", "z", ""))
TS = st.integers(-3, 6)  # ties and out-of-order stamps on purpose


@st.composite
def event_streams(draw: Any) -> list[ev.Event]:
    kinds = st.sampled_from((ev.ParamLogged, ev.TagSet, ev.TagDeleted))
    specs = draw(st.lists(st.tuples(kinds, RUN, KEY, VAL, TS), min_size=1, max_size=40))
    events: list[ev.Event] = []
    for i, (cls, run_id, key, value, ts) in enumerate(specs):
        fields = {"run_id": run_id, "key": key} | ({} if cls is ev.TagDeleted else {"value": value})
        events.append(cls(eid=f"e{i:03d}", ts=ts, **fields))
    copies = draw(st.lists(st.sampled_from(events), max_size=4))  # the same event delivered again
    return draw(st.permutations(events + copies))


def rows(events: list[ev.Event], kinds: tuple[type, ...]) -> pa.Table:
    table = "params" if kinds == (ev.ParamLogged,) else "tags"
    picked = [e for e in events if isinstance(e, kinds)]
    return kv_fold.rows_table(table, [(e.run_id, e.key, getattr(e, "value", None), e.ts, e.eid) for e in picked])


def pure(events: list[ev.Event]) -> tuple[set[tuple], set[tuple], set[tuple]]:
    state = fold(events)
    params = set(kv_fold.stamped_rows(state.params, state.params))
    tags = set(kv_fold.stamped_rows(state.tags, state.tags))
    conflicts = {(c.run_id, c.key, c.kept, c.rejected, c.eid, c.ts) for c in state.conflicts}
    return params, tags, conflicts


def as_rows(table: pa.Table) -> list[tuple]:
    return list(zip(*(table.column(c).to_pylist() for c in kv_fold.KV_COLUMNS)))


PARAM, TAGS = (ev.ParamLogged,), (ev.TagSet, ev.TagDeleted)


@settings(max_examples=300, deadline=None)
@given(events=event_streams())
def test_a_whole_fold_equals_the_pure_fold(events: list[ev.Event]) -> None:
    want_params, want_tags, want_conflicts = pure(events)
    params, conflicts = kv_fold.fold_params([rows(events, PARAM)])
    tags = kv_fold.fold_tags([rows(events, TAGS)])
    assert set(as_rows(params)) == want_params and len(as_rows(params)) == len(want_params)
    assert set(as_rows(tags)) == want_tags and len(as_rows(tags)) == len(want_tags)
    got = [(c.run_id, c.key, c.kept, c.rejected, c.eid, c.ts) for c in conflicts]
    assert sorted(got) == sorted(want_conflicts) and len(got) == len(want_conflicts)
    assert as_rows(params) == sorted(as_rows(params), key=lambda r: (r[0], r[1]))  # sorted by run, key


@settings(max_examples=300, deadline=None)
@given(events=event_streams(), data=st.data())
def test_commits_that_fold_their_table_with_new_rows_equal_the_pure_fold(events: list[ev.Event], data: Any) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(events) - 1)), max_size=4)))
    chunks = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)]) if events[a:b]]
    params, tags = kv_fold.empty("params"), kv_fold.empty("tags")
    rejected: set[tuple] = set()
    for chunk in chunks:  # each commit: the last table plus this chunk's rows, split again at random
        n = data.draw(st.integers(0, len(chunk)))
        params, conflicts = kv_fold.fold_params([params, rows(chunk[:n], PARAM), rows(chunk[n:], PARAM)])
        tags = kv_fold.fold_tags([tags, rows(chunk[:n], TAGS), rows(chunk[n:], TAGS)])
        rejected |= {(c.run_id, c.key, c.rejected) for c in conflicts}
    want_params, want_tags, want_conflicts = pure(events)
    assert set(as_rows(params)) == want_params and params.num_rows == len(want_params)
    assert set(as_rows(tags)) == want_tags and tags.num_rows == len(want_tags)
    # Each losing value was quarantined by some commit; a commit may also have quarantined a
    # value an earlier event (arriving in a later commit) made the winner — as the per-event
    # compactor's incremental commits do.
    winners = {(r[0], r[1], r[2]) for r in want_params}
    assert {(c[0], c[1], c[3]) for c in want_conflicts} == rejected - winners


def test_partitions_split_every_row_by_its_run() -> None:
    from evtrack.state import tables

    run_ids = [f"{i:032x}" for i in range(50)]
    t = kv_fold.rows_table("tags", [(r, "k", "v", 1, f"e{i}") for i, r in enumerate(run_ids)])
    parts = kv_fold.split_by_partition(t)
    assert sum(p.num_rows for p in parts.values()) == 50
    for name, part in parts.items():
        assert {tables.partition_of(r) for r in part.column("run_id").to_pylist()} == {name}
