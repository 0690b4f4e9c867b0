"""Writing Parquet files into the store: unique immutable names, zstd, streaming.

A streamed file is written to a local temporary file first, then uploaded with
the store's ``put_file`` (multipart on S3); a small whole table (a state
partition) is encoded in memory and stored with one ``put``. Either way under
``tables/<table>/<version:08d>-<uuid>[-<partition>].parquet``; names are never reused.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from evtrack.errors import EvtrackError
from evtrack.eventlog.events import WIRE_VERSION
from evtrack.state import tables
from evtrack.store.base import ObjectStore

NO_TEMP_HINT = "nothing was committed (point TMPDIR at a writable directory with free space)"
ROW_GROUP = 256_000
IN_MEMORY_BYTES = 32 << 20  # tables up to this size (Arrow bytes) are encoded in memory, not via a temp file
COMPRESSION = "zstd"
# The append-only tables: dictionary pages only for their repetitive strings, and delta
# encoding for their integer columns (steps and timestamps climb); other tables use
# dictionaries throughout.
_DELTA = "DELTA_BINARY_PACKED"
_ENCODINGS: dict[str, tuple[list[str], dict[str, str]]] = {
    "events": (
        ["type", "experiment_id", "run_id", "key", "value"],
        {"ts": _DELTA, "step": _DELTA, "timestamp": _DELTA},
    ),
    "metrics": (["run_id", "key"], {"step": _DELTA, "timestamp": _DELTA}),
}
# Columns no reader prunes by, whose min/max statistics cost the most to gather (every value a
# distinct string): half the time of writing the events of a million metric points.
_NO_STATISTICS = {"events": ("eid", "body")}


@dataclass
class WrittenFile:
    """A file now in the store, as the manifest lists it."""

    path: str
    rows: int
    bytes: int
    tier: int = 0
    partition: str | None = None

    def entry(self) -> dict[str, Any]:
        """The manifest entry of this file."""
        return {
            "path": self.path,
            "rows": self.rows,
            "bytes": self.bytes,
            "tier": self.tier,
            "partition": self.partition,
        }


def new_path(table: str, version: int, partition: str | None = None) -> str:
    """A fresh, never-reused key for a file of ``table`` written for ``version``."""
    suffix = f"-{partition}" if partition else ""
    return f"tables/{table}/{version:08d}-{uuid.uuid4().hex}{suffix}.parquet"


def write_table(
    store: ObjectStore, table: str, data: pa.Table, version: int, partition: str | None = None, tier: int = 0
) -> WrittenFile:
    """Write one whole table file (a small one is encoded in memory and stored with one ``put``)."""
    if 0 < data.nbytes <= IN_MEMORY_BYTES:
        path = new_path(table, version, partition)
        sink = pa.BufferOutputStream()
        with _parquet_writer(sink, table) as writer:
            writer.write_table(data.cast(tables.schema(table)), row_group_size=ROW_GROUP)
        body = sink.getvalue()
        store.put(path, body.to_pybytes())
        return WrittenFile(path, data.num_rows, body.size, tier, partition)
    with TableFileWriter(store, table, version, partition, tier) as w:
        w.write(data)
    assert w.result is not None
    return w.result


def _parquet_writer(where: Any, table: str) -> pq.ParquetWriter:
    dictionary, encodings = _ENCODINGS.get(table, (True, {}))
    schema = tables.schema(table)
    skipped = _NO_STATISTICS.get(table, ())
    return pq.ParquetWriter(
        where,
        schema,
        compression=COMPRESSION,
        write_statistics=[name for name in schema.names if name not in skipped] if skipped else True,
        use_dictionary=dictionary,
        column_encoding=encodings or None,
    )


class TableFileWriter:
    """Streams row batches into one Parquet file, uploaded on close."""

    def __init__(
        self, store: ObjectStore, table: str, version: int, partition: str | None = None, tier: int = 0
    ) -> None:
        self.store, self.table, self.tier, self.partition = store, table, tier, partition
        self.path = new_path(table, version, partition)
        try:
            fd, self._tmp = tempfile.mkstemp(prefix="evtrack-", suffix=".parquet")
        except OSError as exc:
            raise EvtrackError(
                f"compaction could not create its temporary {table} file in {tempfile.gettempdir()}: {exc}; "
                f"{NO_TEMP_HINT}"
            ) from None
        os.close(fd)
        self._writer = _parquet_writer(self._tmp, table)
        self.rows = 0
        self.result: WrittenFile | None = None

    def write(self, data: pa.Table) -> None:
        """Append rows (cast to the table's schema)."""
        if data.num_rows:
            self._writer.write_table(data.cast(tables.schema(self.table)), row_group_size=ROW_GROUP)
            self.rows += data.num_rows

    def close(self) -> WrittenFile | None:
        """Finish the file and upload it; None (and nothing uploaded) when it has no rows."""
        self._writer.close()
        try:
            if self.rows == 0:
                return None
            size = os.path.getsize(self._tmp)
            self.store.put_file(self.path, self._tmp)
            self.result = WrittenFile(self.path, self.rows, size, self.tier, self.partition)
            return self.result
        finally:
            os.unlink(self._tmp)

    def abort(self) -> None:
        """Drop the file without uploading."""
        try:
            self._writer.close()
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)

    def __enter__(self) -> "TableFileWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


_SERIES = ["run_id", "key", "value", "step", "timestamp"]


def _ranks(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, int]:
    """(each string's rank among the column's distinct values, how many there are); sorting ranks sorts the strings."""
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()  # one dictionary for all chunks
    rank_of = pc.sort_indices(pc.sort_indices(encoded.dictionary))
    return pc.take(rank_of, encoded.indices), len(encoded.dictionary)


def sort_metrics(table: pa.Table) -> pa.Table:
    """The series columns (run_id, key, value, step, timestamp) ordered by run, key, step, timestamp, value.

    NaN values sort last: MLflow's 'latest' order.
    """
    key_ranks, keys_n = _ranks(table.column("key"))
    run_ranks, _ = _ranks(table.column("run_id"))
    series = pc.add(pc.multiply(run_ranks.cast(pa.int64()), keys_n), key_ranks.cast(pa.int64()))
    # Writers log a series' points in order: a stable sort by series is then the whole sort.
    order = pc.sort_indices(series)
    step, timestamp, value = (pc.take(table.column(name), order) for name in ("step", "timestamp", "value"))
    if _in_point_order(pc.take(series, order), step, timestamp, value):
        run_id, key = (pc.take(table.column(name), order) for name in ("run_id", "key"))
        return pa.table([run_id, key, value, step, timestamp], names=_SERIES)
    keys = pa.table(
        {
            "series": series,
            "step": table.column("step"),
            "timestamp": table.column("timestamp"),
            "value": table.column("value"),
        }
    )
    order = pc.sort_indices(keys, [(name, "ascending") for name in keys.column_names])
    return table.select(_SERIES).take(order)


def _in_point_order(series: pa.Array, step: pa.Array, timestamp: pa.Array, value: pa.Array) -> bool:
    """Whether, within each series, rows are in (step, timestamp, value) order (NaN last)."""
    n = len(series)
    if n < 2:
        return True

    def pairs(column):
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        return column.slice(0, n - 1), column.slice(1)

    (s0, s1), (a0, a1), (t0, t1), (v0, v1) = pairs(series), pairs(step), pairs(timestamp), pairs(value)
    nan_first = pc.and_(pc.is_nan(v0), pc.invert(pc.is_nan(v1)))
    value_after = pc.or_(pc.greater(v0, v1), nan_first)
    after = pc.or_(
        pc.greater(a0, a1),
        pc.and_(pc.equal(a0, a1), pc.or_(pc.greater(t0, t1), pc.and_(pc.equal(t0, t1), value_after))),
    )
    return not pc.any(pc.and_(pc.equal(s0, s1), after)).as_py()


def latest_rows(sorted_metrics: pa.Table) -> pa.Table:
    """The last row of each (run_id, key) group of a sorted metrics table: each series' latest point."""
    n = sorted_metrics.num_rows
    if n <= 1:
        return sorted_metrics
    run, key = sorted_metrics.column("run_id"), sorted_metrics.column("key")
    changes = pc.or_(pc.not_equal(run.slice(1), run.slice(0, n - 1)), pc.not_equal(key.slice(1), key.slice(0, n - 1)))
    last = pa.concat_arrays([changes.combine_chunks(), pa.array([True])])
    return sorted_metrics.filter(last)


def _event_rows(n: int, columns: dict[str, Any]) -> pa.Table:
    """``n`` rows of the ``events`` table: the given columns, nulls in the others."""
    schema = tables.schema("events")
    return pa.table([columns.get(f.name, pa.nulls(n, f.type)) for f in schema], schema=schema)


def metric_event_rows(metrics: pa.Table) -> pa.Table:
    """``events`` rows for metric events given as columns (eid, ts, run_id, key, value, step, timestamp)."""
    n = metrics.num_rows
    picked = {name: metrics.column(name) for name in ("eid", "ts", "run_id", "key", "step", "timestamp")}
    extra = {"type": pa.repeat("metric", n), "v": pa.repeat(pa.scalar(WIRE_VERSION, pa.int16()), n)}
    return _event_rows(n, {**picked, **extra, "metric_value": metrics.column("value")})


def write_metric_batch(
    part, metrics: pa.Table, metrics_out: "TableFileWriter | None", events_out: "TableFileWriter | None"
) -> None:
    """Write a batch of metric events (history + raw events) and fold their latest points."""
    if not metrics.num_rows:
        return
    ordered = sort_metrics(metrics)
    if metrics_out is not None:
        metrics_out.write(ordered)
    if events_out is not None:
        events_out.write(metric_event_rows(metrics))
    part.add_latest(latest_rows(ordered))


def write_batch(part, batch, metrics_out: "TableFileWriter", events_out: "TableFileWriter") -> None:
    """Write one ``DecodedBatch``: its metric, param, tag and run event tables column-wise, the other events as rows."""
    if batch.metrics.num_rows:
        write_metric_batch(part, batch.metrics, metrics_out, events_out)
    if batch.kv is not None and batch.kv.num_rows:
        events_out.write(kv_event_rows(batch.kv))
        part.add_kv(batch.kv)
    if batch.runs is not None and batch.runs.num_rows:
        events_out.write(run_event_rows(batch.runs))
    part.add_runs(batch.runs, batch.run_tags)
    others = [pair for seg in batch.segments for pair in seg.events]
    if others:
        events_out.write(event_rows_table(others))


def kv_event_rows(kv: pa.Table) -> pa.Table:
    """The ``events`` rows of param and tag events given as columns (``compaction.inbox.KV_BATCH_COLUMNS``)."""
    picked = {name: kv.column(name) for name in ("eid", "type", "ts", "run_id", "key", "value", "body")}
    return _event_rows(kv.num_rows, {**picked, "v": pa.repeat(pa.scalar(WIRE_VERSION, pa.int16()), kv.num_rows)})


def body_column(lines: list[bytes]) -> pa.Array:
    """Raw event lines as the ``events`` table's ``body`` strings (decoded lines are valid UTF-8)."""
    try:  # the JSON decoder checked the bytes: a cast, not a decode per line
        return pa.array(lines, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([line.decode("utf-8", "replace") for line in lines], pa.string())


def run_event_rows(runs: pa.Table) -> pa.Table:
    """The ``events`` rows of run events given as columns (``compaction.run_fold.RUN_COLUMNS``)."""
    picked = {name: runs.column(name) for name in ("eid", "type", "ts", "run_id", "experiment_id", "body")}
    return _event_rows(runs.num_rows, {**picked, "v": pa.repeat(pa.scalar(WIRE_VERSION, pa.int16()), runs.num_rows)})


def event_rows_table(other: list) -> pa.Table:
    """The ``events`` rows of non-metric events, given as (event, raw line) pairs."""
    events = [event for event, _ in other]
    n = len(events)
    values = [getattr(e, "value", None) for e in events]
    body = body_column([line for _, line in other])
    return pa.table(
        {
            "eid": [e.eid for e in events],
            "type": [e.type for e in events],
            "v": [e.version for e in events],
            "ts": [e.ts for e in events],
            "experiment_id": [getattr(e, "experiment_id", None) for e in events],
            "run_id": [getattr(e, "run_id", None) for e in events],
            "key": [getattr(e, "key", None) for e in events],
            "value": [v if v.__class__ is str else None for v in values],
            "metric_value": pa.nulls(n, pa.float64()),
            "step": pa.nulls(n, pa.int64()),
            "timestamp": pa.nulls(n, pa.int64()),
            "body": body,
        },
        schema=tables.schema("events"),
    )
