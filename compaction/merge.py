"""Tiered merging of the append-only tables, so they never become thousands of tiny files.

Each compaction adds tier-0 files. When a tier holds ``FANOUT`` files they are
streamed, row group by row group, into one file of the next tier. A table with
N compactions therefore has at most ``FANOUT - 1`` files per tier and
O(log N) tiers. Rows are only copied, never changed, so a merge cannot alter
what a query sees.
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from evtrack.store.base import ObjectStore
from evtrack.state.table_files import local_path

from compaction.files import TableFileWriter

FANOUT = 8
MAX_TIER = 5


def merge_tiers(
    store: ObjectStore, table: str, files: list[dict[str, Any]], version: int, fanout: int = FANOUT
) -> tuple[list[dict[str, Any]], int, int]:
    """Merge full tiers; returns (new file list, files written, bytes written)."""
    files = list(files)
    written = nbytes = 0
    for tier in range(MAX_TIER):
        members = [f for f in files if f.get("tier", 0) == tier]
        if len(members) < fanout:
            continue
        with TableFileWriter(store, table, version, tier=tier + 1) as out:
            for f in members:
                parquet = pq.ParquetFile(local_path(store, f["path"]))
                for i in range(parquet.num_row_groups):
                    out.write(parquet.read_row_group(i))
        if out.result is not None:
            merged = out.result.entry()
            files = [f for f in files if f not in members] + [merged]
            written += 1
            nbytes += out.result.bytes
    return files, written, nbytes
