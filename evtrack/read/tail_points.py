"""The tail's metric points as columns, grown as the reader folds them.

A fresh search snapshot registers every metric point of the tail as the table
``tail_metrics`` (the ``all_metrics`` and ``metrics`` views read it). Building it
from the reader's per-series dictionaries cost about 1.5 µs a point at every
snapshot, and a server under write load takes a new snapshot for nearly every
search: 40,000 tail points were 60 ms of each one. Here the points are appended
to five lists as they fold (distinct points only, in fold order), full chunks are
turned into Arrow once and kept, and a snapshot converts only the points since
the last full chunk.

One writer (the reader's fold, under the reader's lock) appends; snapshots read
from any thread without that lock. A snapshot takes the points counted when it
starts: ``timestamp`` is appended last, so every list holds at least that many.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

CHUNK = 16_384  # points per Arrow chunk kept


class TailPoints:
    """Distinct metric points of the tail: (run_id, key, value, step, timestamp) columns."""

    __slots__ = ("run_id", "key", "value", "step", "timestamp", "_chunks", "_lock")

    def __init__(self) -> None:
        self.run_id: list[str] = []
        self.key: list[str] = []
        self.value: list[float] = []
        self.step: list[int] = []
        self.timestamp: list[int] = []
        self._chunks: list["pa.RecordBatch"] = []  # the first len(_chunks) * CHUNK points, converted
        self._lock = threading.Lock()

    def add(self, run_id: str, key: str, value: float, step: int, timestamp: int) -> None:
        """One more distinct point (the caller folds, under the reader's lock)."""
        self.run_id.append(run_id)
        self.key.append(key)
        self.value.append(value)
        self.step.append(step)
        self.timestamp.append(timestamp)  # last: its length counts complete points

    def __len__(self) -> int:
        return len(self.timestamp)

    def table(self) -> "pa.Table":
        """The points so far, as a table of the ``metrics`` schema."""
        import pyarrow as pa

        from evtrack.state import tables

        schema = tables.schema("metrics")
        n = len(self.timestamp)
        with self._lock:
            while (len(self._chunks) + 1) * CHUNK <= n:
                start = len(self._chunks) * CHUNK
                self._chunks.append(self._batch(schema, start, start + CHUNK))
            chunks = list(self._chunks)
        done = len(chunks) * CHUNK
        if done < n:
            chunks.append(self._batch(schema, done, n))
        return pa.Table.from_batches(chunks, schema=schema)

    def _batch(self, schema: "pa.Schema", start: int, stop: int) -> "pa.RecordBatch":
        import pyarrow as pa

        columns = (self.run_id, self.key, self.value, self.step, self.timestamp)
        return pa.record_batch(
            [pa.array(col[start:stop], field.type) for col, field in zip(columns, schema)], schema=schema
        )
