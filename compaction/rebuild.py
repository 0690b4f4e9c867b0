"""``--rebuild``: re-derive every table from the ``events`` table, the log of record.

The events files are kept as they are; the metrics history and every state
table are written anew by folding the events from scratch, streamed one record
batch at a time. The result is committed as a new manifest, like a compaction.
Because the fold is order-independent, a rebuild equals any sequence of
incremental compactions of the same events — the property tests check this.
"""

from __future__ import annotations

import random
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.errors import CommitConflictError, EvtrackError
from evtrack.eventlog.events import decode_line, now_ms
from evtrack.state.fold import apply
from evtrack.store.base import ObjectStore
from evtrack.state.table_files import local_path

from compaction import run_fold
from compaction.compactor import CompactionReport
from compaction.files import TableFileWriter, write_metric_batch
from compaction.inbox import KV_BATCH_COLUMNS, METRIC_COLUMNS
from compaction.kv_fold import KV_TYPES
from compaction.merge import merge_tiers
from compaction.state_io import PartitionedState

_BATCH = 200_000


def _fold_events_file(store: ObjectStore, path: str, part: PartitionedState, out: TableFileWriter) -> int:
    n = 0
    parquet = pq.ParquetFile(local_path(store, path))
    for batch in parquet.iter_batches(batch_size=_BATCH):
        table = pa.Table.from_batches([batch])
        is_metric = pc.equal(table.column("type"), "metric")
        metrics = (
            table.filter(is_metric)
            .select(["eid", "ts", "run_id", "key", "metric_value", "step", "timestamp"])
            .rename_columns(METRIC_COLUMNS)
        )
        write_metric_batch(part, metrics, out, None)
        is_kv = pc.is_in(table.column("type"), pa.array(KV_TYPES))
        kv = table.filter(is_kv)
        if kv.num_rows:  # params and tags: the columnar fold (compaction.kv_fold)
            part.add_kv(kv.select(KV_BATCH_COLUMNS))
        others = pc.invert(pc.or_(is_metric, is_kv))
        runs: list[tuple] = []
        creation_tags: list[tuple] = []
        for body in table.filter(others).column("body").to_pylist():
            event = decode_line(body)
            if event.type in run_fold.RUN_TYPES:  # the columnar fold (compaction.run_fold)
                runs.append(run_fold.event_row(event.type, event, body.encode()))
                if event.type == "run_created":
                    creation_tags += run_fold.creation_tag_rows(event)
                continue
            part.need_for(event)
            apply(event, part.state)
        part.add_runs(run_fold.rows_table(runs), run_fold.tag_rows_table(creation_tags))
        n += table.num_rows
    return n


def rebuild(store: ObjectStore, max_attempts: int = 10) -> CompactionReport:
    """Rewrite every derived table of the newest manifest from its events table."""
    start = time.perf_counter()
    for attempt in range(max_attempts):
        base = mf.load(store)
        if base.version == 0:
            return CompactionReport(duration_s=time.perf_counter() - start)
        version = base.version + 1
        part = PartitionedState(store, mf.Manifest())  # start from nothing
        part.experiments_loaded = True
        report = CompactionReport()
        with TableFileWriter(store, "metrics", version) as metrics_out:
            for f in base.files("events"):
                report.events += _fold_events_file(store, f["path"], part, metrics_out)
        state_files, _ = part.write(version)
        new_tables = {"events": list(base.files("events"))}
        metric_files = [metrics_out.result.entry()] if metrics_out.result else []
        new_tables["metrics"], merged, merged_bytes = merge_tiers(store, "metrics", metric_files, version)
        for name in tables.state_tables():
            new_tables[name] = [f.entry() for f in state_files.get(name, [])]
        written = [f for files in state_files.values() for f in files]
        report.files_written = len(written) + len(metric_files) + merged
        report.bytes_written = sum(f.bytes for f in written) + merged_bytes + sum(f["bytes"] for f in metric_files)
        report.conflicts = len(part.state.conflicts)
        new = mf.Manifest(
            version=version,
            parent=base.version,
            committed_at=now_ms(),
            committer="rebuild",
            partitions=tables.PARTITIONS,
            schema_versions=dict(tables.SCHEMA_VERSIONS),
            tables=new_tables,
            writers=base.writers,
            stats=dict(base.stats),
        )
        try:
            store.put_if_absent(mf.manifest_key(version), new.to_json())
        except CommitConflictError:
            report.retries += 1
            time.sleep(min(5.0, 0.05 * 2**attempt) * (0.5 + random.random()))
            continue
        mf.write_hint(store, version)
        report.version, report.commits = version, 1
        report.duration_s = time.perf_counter() - start
        return report
    raise EvtrackError(f"rebuild lost {max_attempts} commits in a row to concurrent compactions; run it again")
