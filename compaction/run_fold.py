"""The columnar fold of run events and of latest metric values: Arrow sorts, no handler per event.

A sweep of short runs writes a creation and an end for every few params and
points. The compactor gathers run events as rows (``RUN_COLUMNS``), and each
batch's latest metric points, beside the partitions' compacted rows, and folds
each partition at once with the rules of ``evtrack.state.fold``:

- creation (experiment, user, start time, artifact URI, parent): the least
  (ts, eid) of the run's ``run_created`` events;
- name: the greatest (ts, eid) of ``run_created`` and of ``run_updated`` with a name;
- status and end time: the greatest of ``run_created`` (RUNNING, no end) and of
  ``run_updated`` with a status;
- lifecycle stage: the greatest of ``run_deleted`` and ``run_restored``;
- a value never set keeps its default, stamped ``(-1, "")``: the fold's own
  starting point, so that an event stamped before it (a negative ``ts``) loses
  to it exactly as in the per-event fold;
- latest metric: per (run_id, key) the greatest (step, timestamp, value), NaN above every number.

The compacted ``runs`` row of a run holds each of these with its stamp, so it
takes part as one more candidate: folding compacted rows with new events gives
what the pure fold of all their events gives, in any batching.
"""

from __future__ import annotations

from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from evtrack.entities import LifecycleStage, RunStatus
from evtrack.state import tables

from compaction import kv_fold
from compaction.files import body_column

RUN_TYPES = ("run_created", "run_updated", "run_deleted", "run_restored")
# A run event as a row: its fields (nulls where its type has none) and its raw line.
RUN_COLUMNS = [
    "type",
    "run_id",
    "ts",
    "eid",
    "experiment_id",
    "run_name",
    "user_id",
    "start_time",
    "artifact_uri",
    "parent_run_id",
    "status",
    "end_time",
    "body",
]
_S, _I = pa.string(), pa.int64()
_RUN_TYPES = [_S, _S, _I, _S, _S, _S, _S, _I, _S, _S, _S, _I, _S]
RunRow = tuple  # in RUN_COLUMNS order, body as bytes
_NEVER_TS, _NEVER_EID = -1, ""


def run_schema() -> pa.Schema:
    """The schema of run event rows (``RUN_COLUMNS``)."""
    return pa.schema([pa.field(n, t) for n, t in zip(RUN_COLUMNS, _RUN_TYPES)])


def event_row(kind: str, event: Any, line: bytes) -> RunRow:
    """A run event of wire type ``kind`` (an ``evtrack.eventlog.events`` object, or the native decoder's) as a row."""
    if kind == "run_created":
        return (
            kind,
            event.run_id,
            event.ts,
            event.eid,
            event.experiment_id,
            event.run_name,
            event.user_id,
            event.start_time,
            event.artifact_uri,
            event.parent_run_id,
            None,
            None,
            line,
        )
    if kind == "run_updated":
        return (
            kind,
            event.run_id,
            event.ts,
            event.eid,
            None,
            event.run_name,
            None,
            None,
            None,
            None,
            event.status,
            event.end_time,
            line,
        )
    return (kind, event.run_id, event.ts, event.eid, None, None, None, None, None, None, None, None, line)


def creation_tag_rows(event: Any) -> list[tuple]:
    """The tags a ``run_created`` event carries, as tag rows (run_id, key, value, ts, eid)."""
    return [(event.run_id, key, value, event.ts, event.eid) for key, value in event.tags.items()]


def tag_rows_table(rows: list[tuple]) -> pa.Table | None:
    """Creation tag rows (``creation_tag_rows``) in the tags table's schema, or None when there are none."""
    return kv_fold.rows_table("tags", rows) if rows else None


def rows_table(rows: list[RunRow]) -> pa.Table | None:
    """Run event rows as columns (``RUN_COLUMNS``), or None when there are none."""
    if not rows:
        return None
    cols = list(zip(*rows))
    arrays = [pa.array(c, t) for c, t in zip(cols[:-1], _RUN_TYPES)]
    return pa.table([*arrays, body_column(list(cols[-1]))], names=RUN_COLUMNS)


def empty_runs() -> pa.Table:
    """No run event rows."""
    return run_schema().empty_table()


# -- the fold -------------------------------------------------------------------------


def _first_per_run(t: pa.Table, keys: list[tuple[str, str]]) -> pa.Table:
    """The first row of each run of ``t`` sorted by run_id then ``keys``: one row per run, by run_id."""
    s = t.take(pc.sort_indices(t, sort_keys=[("run_id", "ascending"), *keys]))
    n = s.num_rows
    if n <= 1:
        return s
    run = s.column("run_id").combine_chunks()
    starts = pa.concat_arrays([pa.array([True]), pc.not_equal(run.slice(1), run.slice(0, n - 1))])
    return s.filter(starts)


def _candidates(parts: Iterable[dict[str, Any]], names: list[str], types: list[pa.DataType]) -> pa.Table:
    """One table of the candidate rows given as column dicts (missing columns null)."""
    tables_ = []
    for cols in parts:
        n = len(cols["run_id"])
        if n:
            arrays = [cols[c] if c in cols else pa.nulls(n, t) for c, t in zip(names, types)]
            arrays = [
                a.cast(t) if isinstance(a, (pa.Array, pa.ChunkedArray)) else pa.array(a, t)
                for a, t in zip(arrays, types)
            ]
            tables_.append(pa.table(arrays, names=names))
    return pa.concat_tables(tables_) if len(tables_) > 1 else tables_[0]


def _const(n: int, value: Any, t: pa.DataType) -> pa.Array:
    return pa.nulls(n, t) if value is None else pa.repeat(pa.scalar(value, t), n)


def fold_runs(base: pa.Table | None, events: list[pa.Table]) -> pa.Table:
    """The ``runs`` table of compacted rows ``base`` and new run event rows, sorted by run_id."""
    schema = tables.schema("runs")
    given = [e.select(RUN_COLUMNS[:-1]) for e in events if e.num_rows]
    ev = pa.concat_tables(given) if given else empty_runs().select(RUN_COLUMNS[:-1])
    b = base.cast(schema) if base is not None else schema.empty_table()
    ids = pc.unique(pa.chunked_array([b.column("run_id"), ev.column("run_id")], _S).combine_chunks())
    ids = pc.take(ids, pc.sort_indices(ids))
    n = len(ids)
    if not n:
        return schema.empty_table()
    etype = ev.column("type")
    created_ev = ev.filter(pc.equal(etype, "run_created"))
    updated_ev = ev.filter(pc.equal(etype, "run_updated"))

    def col(t: pa.Table, name: str) -> pa.ChunkedArray:
        return t.column(name)

    # creation: the least stamp; runs never created sort after (missing = 1) with the defaults.
    b_created = b.filter(pc.not_equal(b.column("created_eid"), _NEVER_EID))
    created_names = [
        "run_id",
        "missing",
        "ts",
        "eid",
        "experiment_id",
        "user_id",
        "start_time",
        "artifact_uri",
        "parent_run_id",
    ]
    created_types = [_S, pa.int8(), _I, _S, _S, _S, _I, _S, _S]
    created = _first_per_run(
        _candidates(
            [
                {name: col(created_ev, name) for name in created_names if name != "missing"}
                | {"missing": _const(created_ev.num_rows, 0, pa.int8())},
                {
                    "run_id": col(b_created, "run_id"),
                    "missing": _const(b_created.num_rows, 0, pa.int8()),
                    "ts": col(b_created, "created_ts"),
                    "eid": col(b_created, "created_eid"),
                    **{
                        c: col(b_created, c)
                        for c in ("experiment_id", "user_id", "start_time", "artifact_uri", "parent_run_id")
                    },
                },
                {
                    "run_id": ids,
                    "missing": _const(n, 1, pa.int8()),
                    "ts": _const(n, _NEVER_TS, _I),
                    "eid": _const(n, _NEVER_EID, _S),
                    "experiment_id": _const(n, "", _S),
                    "user_id": _const(n, "", _S),
                    "artifact_uri": _const(n, "", _S),
                },
            ],
            created_names,
            created_types,
        ),
        [("missing", "ascending"), ("ts", "ascending"), ("eid", "ascending")],
    )
    latest = [("ts", "descending"), ("eid", "descending")]

    def greatest(name: str, types: list[pa.DataType], parts: list[dict[str, Any]], base_stamp: str) -> pa.Table:
        names = ["run_id", "ts", "eid", name] + (["end_time"] if name == "status" else [])
        base_part = {"run_id": col(b, "run_id"), "ts": col(b, f"{base_stamp}_ts"), "eid": col(b, f"{base_stamp}_eid")}
        base_part |= {c: col(b, c) for c in names[3:]}
        return _first_per_run(_candidates([*parts, base_part], names, [_S, _I, _S, *types]), latest)

    named_ev = updated_ev.filter(pc.is_valid(updated_ev.column("run_name")))
    name = greatest(
        "run_name",
        [_S],
        [
            {
                "run_id": ids,
                "ts": _const(n, _NEVER_TS, _I),
                "eid": _const(n, _NEVER_EID, _S),
                "run_name": _const(n, "", _S),
            },
            {c: col(created_ev, c) for c in ("run_id", "ts", "eid", "run_name")},
            {c: col(named_ev, c) for c in ("run_id", "ts", "eid", "run_name")},
        ],
        "name",
    )
    status_ev = updated_ev.filter(pc.is_valid(updated_ev.column("status")))
    k = created_ev.num_rows
    status = greatest(
        "status",
        [_S, _I],
        [
            {
                "run_id": ids,
                "ts": _const(n, _NEVER_TS, _I),
                "eid": _const(n, _NEVER_EID, _S),
                "status": _const(n, RunStatus.RUNNING, _S),
            },
            {**{c: col(created_ev, c) for c in ("run_id", "ts", "eid")}, "status": _const(k, RunStatus.RUNNING, _S)},
            {c: col(status_ev, c) for c in ("run_id", "ts", "eid", "status", "end_time")},
        ],
        "status",
    )
    life_ev = ev.filter(pc.is_in(etype, pa.array(["run_deleted", "run_restored"])))
    stage = pc.if_else(pc.equal(life_ev.column("type"), "run_deleted"), LifecycleStage.DELETED, LifecycleStage.ACTIVE)
    life = greatest(
        "lifecycle_stage",
        [_S],
        [
            {
                "run_id": ids,
                "ts": _const(n, _NEVER_TS, _I),
                "eid": _const(n, _NEVER_EID, _S),
                "lifecycle_stage": _const(n, LifecycleStage.ACTIVE, _S),
            },
            {**{c: col(life_ev, c) for c in ("run_id", "ts", "eid")}, "lifecycle_stage": stage},
        ],
        "lifecycle",
    )
    out = {
        "run_id": ids,
        "experiment_id": created.column("experiment_id"),
        "run_name": name.column("run_name"),
        "user_id": created.column("user_id"),
        "status": status.column("status"),
        "start_time": created.column("start_time"),
        "end_time": status.column("end_time"),
        "artifact_uri": created.column("artifact_uri"),
        "lifecycle_stage": life.column("lifecycle_stage"),
        "parent_run_id": created.column("parent_run_id"),
        "created_ts": created.column("ts"),
        "created_eid": created.column("eid"),
        "status_ts": status.column("ts"),
        "status_eid": status.column("eid"),
        "name_ts": name.column("ts"),
        "name_eid": name.column("eid"),
        "lifecycle_ts": life.column("ts"),
        "lifecycle_eid": life.column("eid"),
    }
    return pa.table([out[f.name] for f in schema], schema=schema)


# -- latest metric values --------------------------------------------------------------


def fold_latest(parts: list[pa.Table]) -> pa.Table:
    """The ``latest_metrics`` rows of several (run_id, key, value, step, timestamp) tables: each series' greatest."""
    schema = tables.schema("latest_metrics")
    parts = [p.select(schema.names).cast(schema) for p in parts if p.num_rows]
    if not parts:
        return schema.empty_table()
    t = pa.concat_tables(parts).combine_chunks() if len(parts) > 1 else parts[0]
    value = t.column("value")
    nan = pc.is_nan(value)
    rank = t.append_column("nan", nan).append_column("rank_value", pc.if_else(nan, 0.0, value))
    keys = [("run_id", "ascending"), ("key", "ascending")] + [
        (c, "descending") for c in ("step", "timestamp", "nan", "rank_value")
    ]
    s = rank.take(pc.sort_indices(rank, sort_keys=keys)).select(schema.names)
    return s.filter(kv_fold.group_starts(s))
