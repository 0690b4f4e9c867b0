"""New rows of the state partitions, held until each partition is folded: in memory up to a budget, then on disk.

A large backlog touches every partition in every batch, so the rows waiting for
the fold grow with the backlog (100,000 short runs: ~220 MB of params, tags, run
events and latest points). ``PartitionRows`` keeps them in memory while they are
small; past ``budget`` bytes every partition's rows so far go to Arrow IPC stream
files in a private temporary directory (one per partition and table, appended
batch by batch), so the compacting process holds about one budget of new rows
plus the partitions being folded. ``take`` hands a partition's rows back, the
spilled ones memory-mapped, and forgets them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from typing import Any

import pyarrow as pa

from evtrack.errors import EvtrackError

from compaction.files import NO_TEMP_HINT

SPILL_BYTES = 64 << 20


class PartitionRows:
    """Rows per (partition, table), in memory then spilled past ``budget`` bytes."""

    def __init__(self, budget: int | None = None) -> None:
        self.budget = SPILL_BYTES if budget is None else budget
        self._memory: dict[str, dict[str, list[pa.Table]]] = {}
        self._bytes = 0
        self._dir: str | None = None
        self._writers: dict[tuple[str, str], Any] = {}  # (partition, table) -> open IPC stream writer
        self._cleanup: weakref.finalize | None = None
        self.spilled_bytes = 0
        self._lock = threading.Lock()

    def add(self, part: str, name: str, rows: pa.Table) -> None:
        """Keep ``rows`` (one schema per table) for partition ``part``."""
        self._memory.setdefault(part, {}).setdefault(name, []).append(rows)
        self._bytes += rows.nbytes
        if self._bytes > self.budget:
            self._spill()

    def _spill(self) -> None:
        try:
            self._write_out()
        except OSError as exc:
            raise EvtrackError(
                f"compaction could not spill the rows it folds to {self._dir or tempfile.gettempdir()}: {exc}; {NO_TEMP_HINT}"
            ) from None

    def _write_out(self) -> None:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="evtrack-fold-")
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, True)
        for part, by_name in self._memory.items():
            for name, pieces in by_name.items():
                writer = self._writers.get((part, name))
                if writer is None:
                    sink = pa.OSFile(os.path.join(self._dir, f"{part}-{name}.arrows"), "wb")
                    writer = self._writers[(part, name)] = pa.ipc.new_stream(sink, pieces[0].schema)
                for piece in pieces:
                    writer.write_table(piece)
                    self.spilled_bytes += piece.nbytes
        self._memory.clear()
        self._bytes = 0

    def take(self, part: str) -> dict[str, list[pa.Table]]:
        """Every row kept for ``part``, by table (then forgotten); safe from several threads."""
        with self._lock:
            out = self._memory.pop(part, {})
            self._bytes -= sum(t.nbytes for pieces in out.values() for t in pieces)
            writers = [(name, self._writers.pop((p, name))) for p, name in list(self._writers) if p == part]
        for name, writer in writers:
            writer.close()
            assert self._dir is not None
            path = os.path.join(self._dir, f"{part}-{name}.arrows")
            spilled = pa.ipc.open_stream(pa.memory_map(path)).read_all()  # its buffers keep the mapping
            os.unlink(path)
            out.setdefault(name, []).insert(0, spilled)
        return out

    def close(self) -> None:
        """Remove the spill files (also done when the object is collected)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self._memory.clear()
        if self._cleanup is not None:
            self._cleanup()
