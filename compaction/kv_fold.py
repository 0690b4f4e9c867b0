"""The columnar fold of params and tags: Arrow sorts and group boundaries, no handler per event.

Params and tags are most of the events a sweep of short runs writes. The
compactor gathers them in columns (``KV_COLUMNS``: run_id, key, value, ts, eid —
the params and tags tables' own columns) beside the partitions' compacted rows, and
folds each partition's rows at once, with the rules of ``evtrack.state.fold``:

- params: per (run_id, key) the row with the least (ts, eid) wins; every other
  value seen is a conflict, reported once at its earliest (ts, eid), naming the winner;
- tags: per (run_id, key) the row with the greatest (ts, eid) wins; a null value
  is a deletion, kept as a tombstone so that an older set folded later stays deleted.

Both are unions then an order statistic, so folding compacted rows with new rows
gives what the pure fold of all their events gives, in any batching. Ties on
(ts, eid) are the same event logged twice (an eid names one event), whose copies agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from evtrack.state import tables
from evtrack.state.fold import ParamConflict

if TYPE_CHECKING:
    from evtrack.state.fold import Stamped

KV_COLUMNS = ["run_id", "key", "value", "ts", "eid"]
KV_TYPES = ("param", "tag_set", "tag_deleted")  # the wire types folded here


def empty(table: str) -> pa.Table:
    """No rows, in the schema of ``table`` (params or tags)."""
    return tables.schema(table).empty_table()


def rows_table(table: str, rows: Iterable[tuple]) -> pa.Table:
    """Rows given as (run_id, key, value, ts, eid) tuples, in the schema of ``table``."""
    rows = list(rows)
    if not rows:
        return empty(table)
    cols = list(zip(*rows))
    return pa.table([pa.array(c) for c in cols], schema=tables.schema(table))


def stamped_rows(per_run: dict[str, dict[str, "Stamped"]], run_ids: Iterable[str]) -> list[tuple]:
    """The rows of a fold state's params or tags (``State.params``/``State.tags``) for ``run_ids``."""
    return [(run_id, key, s.value, *s.order) for run_id in run_ids for key, s in per_run.get(run_id, {}).items()]


def group_starts(s: pa.Table) -> pa.Array:
    """True where a (run_id, key) group starts in ``s`` (sorted by run_id, key)."""
    n = s.num_rows
    if n <= 1:
        return pa.array([True] * n, pa.bool_())
    run, key = s.column("run_id").combine_chunks(), s.column("key").combine_chunks()
    same = pc.and_(pc.equal(run.slice(1), run.slice(0, n - 1)), pc.equal(key.slice(1), key.slice(0, n - 1)))
    return pa.concat_arrays([pa.array([True]), pc.invert(same)])


def _sorted(t: pa.Table, order: str) -> pa.Table:
    keys = [("run_id", "ascending"), ("key", "ascending"), ("ts", order), ("eid", order)]
    return t.take(pc.sort_indices(t, sort_keys=keys))


def fold_params(parts: list[pa.Table]) -> tuple[pa.Table, list[ParamConflict]]:
    """The params table of these rows (sorted by run_id, key) and the conflicts among them."""
    t = concat("params", parts)
    if not t.num_rows:
        return t, []
    s = _sorted(t, "ascending")
    starts = group_starts(s)
    winners = s.filter(starts)
    group = pc.subtract(pc.cumulative_sum(pc.cast(starts, pa.int64())), 1)
    kept = winners.column("value").take(group)
    differs = pc.not_equal(s.column("value"), kept)
    if not pc.any(differs).as_py():
        return winners, []
    conflicts: list[ParamConflict] = []
    seen: set[tuple[str, str, str]] = set()
    losers = s.filter(differs)
    for run_id, key, rejected, ts, eid, winner in zip(
        *(losers.column(c).to_pylist() for c in KV_COLUMNS), kept.filter(differs).to_pylist()
    ):
        if (run_id, key, rejected) not in seen:  # sorted by (ts, eid): the first is the earliest
            seen.add((run_id, key, rejected))
            conflicts.append(ParamConflict(run_id, key, winner, rejected, eid, ts))
    return winners, conflicts


def fold_tags(parts: list[pa.Table]) -> pa.Table:
    """The tags table of these rows (sorted by run_id, key; deletions kept as null values)."""
    t = concat("tags", parts)
    if not t.num_rows:
        return t
    s = _sorted(t, "descending")
    return s.filter(group_starts(s))


def concat_as(table: str, parts: list[pa.Table]) -> pa.Table | None:
    """Whole rows of ``table`` from several tables, or None when there are none."""
    parts = [p.cast(tables.schema(table)) for p in parts if p.num_rows]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def concat(table: str, parts: list[pa.Table]) -> pa.Table:
    """Rows of several tables (KV_COLUMNS at least) as one table in the schema of ``table``."""
    schema = tables.schema(table)
    parts = [p.select(KV_COLUMNS).cast(schema) for p in parts if p.num_rows]
    if not parts:
        return empty(table)
    return (parts[0] if len(parts) == 1 else pa.concat_tables(parts)).combine_chunks()


def split_by_partition(t: pa.Table, partition_of: Callable[[str], str] = tables.partition_of) -> dict[str, pa.Table]:
    """The rows of ``t`` by the state partition of their run (``tables.partition_of``, or a memo of it)."""
    if not t.num_rows:
        return {}
    encoded = t.column("run_id").combine_chunks().dictionary_encode()
    names = [partition_of(r) for r in encoded.dictionary.to_pylist()]
    labels = sorted(set(names))
    number = {p: i for i, p in enumerate(labels)}
    of_row = pa.array([number[p] for p in names], pa.int32()).take(encoded.indices)
    return {p: t.filter(pc.equal(of_row, i)) for i, p in enumerate(labels)}
