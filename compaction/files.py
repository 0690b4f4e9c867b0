"""Writing Parquet files into the store: unique immutable names, zstd, streaming.

Every file is written to a local temporary file first, then uploaded with the
store's ``put_file`` (multipart on S3) under
``tables/<table>/<version:08d>-<uuid>[-<partition>].parquet``; names are never reused.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from evtrack import tables
from evtrack.store.base import ObjectStore

ROW_GROUP = 256_000
COMPRESSION = "zstd"


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
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes, "tier": self.tier,
                "partition": self.partition}


def new_path(table: str, version: int, partition: str | None = None) -> str:
    """A fresh, never-reused key for a file of ``table`` written for ``version``."""
    suffix = f"-{partition}" if partition else ""
    return f"tables/{table}/{version:08d}-{uuid.uuid4().hex}{suffix}.parquet"


def write_table(store: ObjectStore, table: str, data: pa.Table, version: int,
                partition: str | None = None, tier: int = 0) -> WrittenFile:
    """Write one whole table file."""
    with TableFileWriter(store, table, version, partition, tier) as w:
        w.write(data)
    assert w.result is not None
    return w.result


class TableFileWriter:
    """Streams row batches into one Parquet file, uploaded on close."""

    def __init__(self, store: ObjectStore, table: str, version: int, partition: str | None = None,
                 tier: int = 0) -> None:
        self.store, self.table, self.tier, self.partition = store, table, tier, partition
        self.path = new_path(table, version, partition)
        fd, self._tmp = tempfile.mkstemp(prefix="evtrack-", suffix=".parquet")
        os.close(fd)
        self._writer = pq.ParquetWriter(self._tmp, tables.schema(table), compression=COMPRESSION,
                                        write_statistics=True)
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


def metric_rows_table(rows: list) -> pa.Table:
    """The ``metrics`` rows of a batch of metric tuples, sorted by run, key, step, timestamp."""
    rows = sorted(rows, key=lambda r: (r[2], r[3], r[5], r[6]))
    return pa.table({
        "run_id": pa.array([r[2] for r in rows], pa.string()),
        "key": pa.array([r[3] for r in rows], pa.string()),
        "value": pa.array([r[4] for r in rows], pa.float64()),
        "step": pa.array([r[5] for r in rows], pa.int64()),
        "timestamp": pa.array([r[6] for r in rows], pa.int64()),
    }, schema=tables.schema("metrics"))


def event_rows_table(metric_rows: list, other: list) -> pa.Table:
    """The ``events`` rows of a batch: metric tuples, plus (event, raw line) pairs."""
    n = len(metric_rows)
    cols: dict[str, list[Any]] = {
        "eid": [r[0] for r in metric_rows], "type": ["metric"] * n, "v": [1] * n,
        "ts": [r[1] for r in metric_rows], "experiment_id": [None] * n,
        "run_id": [r[2] for r in metric_rows], "key": [r[3] for r in metric_rows],
        "value": [None] * n, "metric_value": [r[4] for r in metric_rows],
        "step": [r[5] for r in metric_rows], "timestamp": [r[6] for r in metric_rows], "body": [None] * n,
    }
    for event, line in other:
        cols["eid"].append(event.eid)
        cols["type"].append(event.type)
        cols["v"].append(event.version)
        cols["ts"].append(event.ts)
        cols["experiment_id"].append(getattr(event, "experiment_id", None))
        cols["run_id"].append(getattr(event, "run_id", None))
        cols["key"].append(getattr(event, "key", None))
        value = getattr(event, "value", None)
        cols["value"].append(value if isinstance(value, str) else None)
        cols["metric_value"].append(None)
        cols["step"].append(None)
        cols["timestamp"].append(None)
        cols["body"].append(line.decode("utf-8", "replace"))
    return pa.table(cols, schema=tables.schema("events"))
