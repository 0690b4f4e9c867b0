"""``gc``: table housekeeping, and permanent deletion of deleted runs and experiments.

One run::

    compact the inbox, so every event of a deleted run is in the tables   (skipped by --dry-run)
        │
        ▼
    choose targets: runs and experiments deleted longer ago than older_than
        │  (newest manifest's runs/experiments tables + lifecycle events of the inbox tail)
        ▼
    delete the targets' artifacts ─▶ release their experiment-name claims
        │
        ▼
    ┌─▶ rewrite every file holding their rows (events, metrics, state partitions)
    └── put-if-absent manifest n+1 ── lost ─▶ backoff, redo on the winner
        │ won
        ▼
    publish the tables' Delta logs up to the newest manifest (compaction.delta)
        │
        ▼
    delete manifests superseded longer ago than retention (the newest always stays)
        │
        ▼
    delete objects under tables/ that no kept manifest lists, older than retention,
        │ and that no Delta version inside the retention references (compaction.gc_delta)
        ▼
    delete Delta log entries older than retention that a kept checkpoint covers

Retention: a manifest stays while it is the newest or its successor was
committed within ``retention`` (so a reader that loaded it just before it was
superseded has the whole period to finish); "committed" is the manifest
object's mtime, the store's clock, the same clock that dates table files. A
file no kept manifest lists is deleted once its mtime is older than
``retention``, which protects the files of a compaction still in flight.

Purged rows leave the live tables at once; the superseded files that still hold
them go with a later gc, after the retention period. Artifacts are deleted before
the commit, so a crash leaves a deleted run without artifacts that the next gc
finishes purging. Experiment ids stay claimed (ids are never reused); names are
released, so a new experiment may take the name.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from evtrack.eventlog import catalog
from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.errors import CommitConflictError, EvtrackError, InvalidParameterError
from evtrack.store import open_store
from evtrack.store.base import ObjectInfo, ObjectStore
from evtrack.state.table_files import local_path

from compaction import delta, gc_delta
from compaction.compactor import CompactionReport, compact
from compaction.delta_log import RETENTION_S
from compaction.files import TableFileWriter
from compaction.gc_targets import Targets, select_targets

DEFAULT_RETENTION_S = RETENTION_S  # 7 days; the Delta logs' retention properties say the same
TABLES_PREFIX = "tables/"
_BATCH = 64_000
_MANIFEST_THREADS = 16


@dataclass
class GcReport:
    """What one ``gc`` call deleted (or, in a dry run, would delete)."""

    dry_run: bool = False
    compaction: CompactionReport | None = None
    version: int | None = None  # the manifest committed by the purge, if any
    deleted_manifests: list[int] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    deleted_delta_log_entries: list[str] = field(default_factory=list)  # commits/checkpoints of _delta_log/
    purged_runs: list[str] = field(default_factory=list)
    purged_experiments: list[str] = field(default_factory=list)
    artifacts_deleted: int = 0
    bytes_freed: int = 0
    retries: int = 0
    duration_s: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def manifests_deleted(self) -> int:
        """Old manifests removed."""
        return len(self.deleted_manifests)

    @property
    def files_deleted(self) -> int:
        """Unreferenced table files removed."""
        return len(self.deleted_files)

    @property
    def runs_purged(self) -> int:
        """Runs permanently deleted."""
        return len(self.purged_runs)

    @property
    def experiments_purged(self) -> int:
        """Experiments permanently deleted."""
        return len(self.purged_experiments)

    def summary(self) -> str:
        """The report as printed by ``evtrack gc``."""
        verb = "would delete" if self.dry_run else "deleted"
        text = (
            f"gc{' (dry run)' if self.dry_run else ''}: {verb} {self.manifests_deleted} manifests, "
            f"{self.files_deleted} table files, {self.artifacts_deleted} artifacts "
            f"({self.bytes_freed / 1e6:.1f} MB freed); {self.runs_purged} runs and "
            f"{self.experiments_purged} experiments {'would be ' if self.dry_run else ''}purged"
        )
        if self.version is not None:
            text += f"; committed version {self.version}"
        return text + f" in {self.duration_s:.2f}s"


def gc(
    store: ObjectStore,
    *,
    older_than_s: float = 0.0,
    retention_s: float = DEFAULT_RETENTION_S,
    run_ids: Iterable[str] | None = None,
    experiment_ids: Iterable[str] | None = None,
    dry_run: bool = False,
    grace_seconds: float = 300.0,
    now_ms: int | None = None,
    max_attempts: int = 10,
) -> GcReport:
    """Purge deleted runs/experiments, then remove old manifests and unreferenced table files.

    ``run_ids`` / ``experiment_ids`` restrict the purge as in ``mlflow gc``: each one
    given must exist, be deleted and (with ``older_than_s``) be old enough, else
    nothing happens and the error names them. ``now_ms`` overrides the clock.
    """
    start = time.perf_counter()
    now = ev.now_ms() if now_ms is None else now_ms
    report = GcReport(dry_run=dry_run)
    if not dry_run:
        report.compaction = compact(store, grace_seconds=grace_seconds)
    targets = select_targets(
        store, mf.load(store), now - int(older_than_s * 1000), older_than_s > 0, _ids(run_ids), _ids(experiment_ids)
    )
    report.purged_runs = sorted(targets.runs)
    report.purged_experiments = sorted(targets.experiments, key=_id_order)
    if targets:
        _delete_artifacts(store, targets, report)
        if not dry_run:
            _release_names(store, targets)
            report.version = _commit_purge(store, targets, report, max_attempts)
    if not dry_run and delta.enabled():  # the Delta logs mirror the purge before their references are read
        report.warnings += [f"Delta log: {e}" for e in delta.publish(store).errors]
    cutoff_s = (now - retention_s * 1000) / 1000.0
    kept = _collect_manifests(store, cutoff_s, report)
    _collect_files(store, kept, cutoff_s, report)
    _collect_delta_logs(store, cutoff_s, report)
    report.duration_s = time.perf_counter() - start
    return report


def _ids(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    out = [str(v).strip() for v in values if str(v).strip()]
    return list(dict.fromkeys(out)) or None


def _id_order(experiment_id: str) -> tuple[int, str]:
    return (int(experiment_id), "") if experiment_id.isdigit() else (1 << 62, experiment_id)


# -- purging ------------------------------------------------------------------


def _artifact_location(store: ObjectStore, run_id: str, uri: str) -> tuple[ObjectStore, str]:
    """(store, key prefix) holding everything under a run's artifact URI.

    The URI must name the run (``…/<run_id>/artifacts``): a forged or odd URI such
    as a bucket root is refused rather than emptied.
    """
    if run_id not in uri.rstrip("/").split("/"):
        raise InvalidParameterError("the URI does not name the run; delete its artifacts by hand")
    root = store.uri.rstrip("/") + "/"
    if uri.startswith(root):
        return store, uri[len(root) :].strip("/") + "/"
    return open_store(uri), ""


def _delete_artifacts(store: ObjectStore, targets: Targets, report: GcReport) -> None:
    """Delete (or count, in a dry run) every object under the targets' artifact URIs."""
    for run_id, uri in sorted(targets.runs.items()):
        if not uri:
            continue
        try:
            where, prefix = _artifact_location(store, run_id, uri)
            infos = list(where.list(prefix))
            if not report.dry_run:
                where.delete_many([info.key for info in infos])
            report.artifacts_deleted += len(infos)
            report.bytes_freed += sum(info.size for info in infos)
        except EvtrackError as exc:
            report.warnings.append(f"artifacts of run {run_id} at {uri} were not deleted: {exc.message}")


def _release_names(store: ObjectStore, targets: Targets) -> None:
    """Free the name claims that still point at a purged experiment."""
    for exp_id, name in targets.experiments.items():
        key = catalog.name_key(catalog.EXPERIMENT_NAMES, name)
        claim = catalog.read_claim(store, key)
        if claim is not None and str(claim.get("experiment_id")) == exp_id:
            catalog.release(store, key)


def _is_in(batch: pa.RecordBatch, column: str, values: pa.Array) -> pa.Array:
    return pc.fill_null(pc.is_in(batch.column(column), value_set=values), False)


def _drop_mask(table: str, runs: pa.Array, exps: pa.Array) -> Callable[[pa.RecordBatch], pa.Array] | None:
    """Which rows of a batch of ``table`` belong to a purged run or experiment (None: no such rows)."""
    if table == "events":
        return lambda b: pc.or_(_is_in(b, "run_id", runs), _is_in(b, "experiment_id", exps))
    if table == "metrics" or table in tables.RUN_TABLES:
        return lambda b: _is_in(b, "run_id", runs)
    if table in tables.EXPERIMENT_TABLES:
        return lambda b: _is_in(b, "experiment_id", exps)
    return None


_KEY_COLUMNS = {
    "events": ["run_id", "experiment_id"],
    "experiments": ["experiment_id"],
    "experiment_tags": ["experiment_id"],
}


def _filter_file(
    store: ObjectStore, table: str, entry: dict[str, Any], version: int, drop: Callable[[pa.RecordBatch], pa.Array]
) -> tuple[bool, dict[str, Any] | None]:
    """(changed, new entry or None when no row is left): ``entry``'s file without the dropped rows."""
    with pq.ParquetFile(local_path(store, entry["path"])) as parquet:
        columns = _KEY_COLUMNS.get(table, ["run_id"])
        if not any(pc.any(drop(b)).as_py() for b in parquet.iter_batches(_BATCH, columns=columns)):
            return False, entry
        with TableFileWriter(store, table, version, entry.get("partition"), entry.get("tier", 0)) as out:
            for b in parquet.iter_batches(_BATCH):
                out.write(pa.Table.from_batches([b.filter(pc.invert(drop(b)))]))
    return True, out.result.entry() if out.result is not None else None


def rewrite_without(
    store: ObjectStore, base: mf.Manifest, targets: Targets, version: int
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """The tables of ``base`` with the targets' rows removed; returns (tables, files rewritten)."""
    runs = pa.array(sorted(targets.runs), pa.string())
    exps = pa.array(sorted(targets.experiments), pa.string())
    partitions = {tables.partition_of(r) for r in targets.runs}
    new_tables: dict[str, list[dict[str, Any]]] = {}
    changed = 0
    for name, files in base.tables.items():
        drop = _drop_mask(name, runs, exps)
        kept: list[dict[str, Any]] = []
        for f in files:
            if drop is None or (name in tables.RUN_TABLES and f.get("partition") not in partitions):
                kept.append(f)
                continue
            did, new = _filter_file(store, name, f, version, drop)
            changed += did
            if new is not None:
                kept.append(new)
        new_tables[name] = kept
    return new_tables, changed


def _commit_purge(store: ObjectStore, targets: Targets, report: GcReport, max_attempts: int) -> int | None:
    """Commit a manifest without the targets' rows; None when no table holds any."""
    committer = f"gc-{socket.gethostname()}-{os.getpid()}"
    for attempt in range(max_attempts):
        base = mf.load(store)
        version = base.version + 1
        new_tables, changed = rewrite_without(store, base, targets, version)
        if not changed:
            return None
        stats = dict(base.stats)
        stats["purged_runs"] = stats.get("purged_runs", 0) + len(targets.runs)
        stats["purged_experiments"] = stats.get("purged_experiments", 0) + len(targets.experiments)
        new = mf.Manifest(
            version=version,
            parent=base.version or None,
            committed_at=ev.now_ms(),
            committer=committer,
            partitions=base.partitions,
            schema_versions=dict(base.schema_versions),
            tables=new_tables,
            writers=base.writers,
            stats=stats,
        )
        try:
            store.put_if_absent(mf.manifest_key(version), new.to_json())
        except CommitConflictError:  # the files just written are orphans: a later gc removes them
            report.retries += 1
            time.sleep(min(5.0, 0.05 * 2**attempt) * (0.5 + random.random()))
            continue
        mf.write_hint(store, version)
        return version
    raise EvtrackError(
        f"gc lost {max_attempts} commits in a row to concurrent compactions; "
        "nothing was purged from the tables, run it again"
    )


# -- manifests and files ------------------------------------------------------


def _manifest_infos(store: ObjectStore) -> list[tuple[int, ObjectInfo]]:
    found = []
    for info in store.list(mf.MANIFESTS):
        stem = info.key[len(mf.MANIFESTS) :]
        if stem.endswith(".json") and stem[:-5].isdigit():
            found.append((int(stem[:-5]), info))
    return sorted(found, key=lambda vi: vi[0])


def _collect_manifests(store: ObjectStore, cutoff_s: float, report: GcReport) -> list[int]:
    """Delete manifests superseded before ``cutoff_s``, oldest first; returns the kept versions."""
    infos = _manifest_infos(store)
    kept = []
    for i, (version, info) in enumerate(infos):
        if i + 1 < len(infos) and infos[i + 1][1].mtime < cutoff_s:
            if not report.dry_run:
                store.delete(info.key)
            report.deleted_manifests.append(version)
            report.bytes_freed += info.size
        else:
            kept.append(version)
    return kept


def _collect_files(store: ObjectStore, kept: list[int], cutoff_s: float, report: GcReport) -> None:
    """Delete objects under ``tables/`` that no kept manifest lists and that are older than the cutoff.

    Manifests are listed before the files: a manifest committed in between lists
    only files its (kept) base lists or files too young to be candidates.
    """
    candidates = [i for i in store.list(TABLES_PREFIX) if i.mtime < cutoff_s and not gc_delta.is_log_key(i.key)]
    if not candidates:
        return
    with ThreadPoolExecutor(_MANIFEST_THREADS) as pool:
        manifests = list(pool.map(lambda v: _load_or_none(store, v), kept))
    referenced = {f["path"] for m in manifests if m is not None for files in m.tables.values() for f in files}
    in_delta, keep_whole = gc_delta.delta_referenced(store, int(cutoff_s * 1000), report.warnings)
    referenced |= in_delta
    unreferenced = [
        info
        for info in candidates
        if info.key not in referenced and not any(info.key.startswith(root) for root in keep_whole)
    ]
    if not report.dry_run:
        store.delete_many([info.key for info in unreferenced])
    report.deleted_files += [info.key for info in unreferenced]
    report.bytes_freed += sum(info.size for info in unreferenced)


def _collect_delta_logs(store: ObjectStore, cutoff_s: float, report: GcReport) -> None:
    """Delete Delta log entries older than the retention that a kept checkpoint covers."""
    doomed = gc_delta.expired_log_objects(store, cutoff_s)
    if not report.dry_run:
        store.delete_many(doomed)
    report.deleted_delta_log_entries += doomed


def _load_or_none(store: ObjectStore, version: int) -> mf.Manifest | None:
    try:
        return mf.load(store, version)
    except EvtrackError:
        return None  # removed by a concurrent gc: it no longer protects anything
