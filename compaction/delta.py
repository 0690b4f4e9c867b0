"""Publishing the manifests as Delta Lake tables: ``tables/<table>`` readable by Spark, Trino, Polars.

The manifest is the commit point and the source of truth; each table's Delta log
is derived from the manifests, one Delta version per manifest version::

    newest manifest n ───────────────────────────────────────────────────────────┐
        │  for every table (threads):                                            │
        ▼                                                                        │
    ┌─▶ read the log's head: newest commit d, the manifest m it mirrors (txn)    │
    │     │ m >= n: nothing to do                                                │
    │     ▼                                                                      │
    │   for each manifest m' in (m, n] still in the store, oldest first:         │
    │     diff its files with the previous version's ─▶ remove… add…             │
    │     put-if-absent commit d+1 ── taken ─▶ another publisher is ahead ──┐    │
    │     │ won                                                             │    │
    │     ▼                                                                 │    │
    │   every 10th version: checkpoint + _last_checkpoint                   │    │
    └────────────────────────────────────────────────────────────────────────┘    │
                                                                                   ▼
    Delta version d of every table holds exactly the live files of manifest m(d)

A crash between a manifest and its Delta commits, or a publisher that lost the
race to another, leaves the log behind or equal, never wrong: the next pass (a
compaction, ``gc``, or ``evtrack tables publish``) resumes from the log's head.
Commit d names its manifest twice: in a ``txn`` action (appId ``evtrack``,
version = manifest version; Delta keeps the newest in every snapshot) and in
``commitInfo``. A manifest gc removed before it was published is skipped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from evtrack.errors import CommitConflictError, EvtrackError
from evtrack.eventlog.events import now_ms
from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.store.base import ObjectStore
from evtrack.version import __version__

from compaction import delta_log as dl
from compaction import delta_state as ds
from compaction.crash import checkpoint

log = logging.getLogger(__name__)

ENV = "EVTRACK_DELTA_LOG"  # "0"/"false"/"off": compactions do not publish Delta logs
MAX_ATTEMPTS = 20
PASS_LIMIT = 100  # versions a compaction pass publishes per table (a backlog takes several passes)
_THREADS = 8


def enabled() -> bool:
    """Whether compactions publish Delta logs (``EVTRACK_DELTA_LOG``, default on)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


@dataclass
class PublishReport:
    """What one ``publish`` call wrote."""

    manifest_version: int = 0
    versions: int = 0  # Delta commits written, over all tables
    checkpoints: int = 0
    tables: list[str] = field(default_factory=list)
    behind: dict[str, int] = field(default_factory=dict)  # table -> manifests still to publish (limit hit)
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def summary(self) -> str:
        """One line for the CLI."""
        text = (
            f"published {self.versions} Delta versions and {self.checkpoints} checkpoints over "
            f"{len(self.tables)} tables, up to manifest {self.manifest_version}, in {self.duration_s:.2f}s"
        )
        if self.behind:
            text += f"; still behind: {', '.join(f'{t} ({n})' for t, n in sorted(self.behind.items()))}"
        return text


class _Manifests:
    """Manifests by version, loaded once per publish (None: gone)."""

    def __init__(self, store: ObjectStore, *known: mf.Manifest) -> None:
        self.store = store
        self._cache: dict[int, mf.Manifest | None] = {m.version: m for m in known if m.version}
        self._lock = threading.Lock()
        self._all: list[int] | None = None  # every kept version, listed once when needed

    def get(self, version: int) -> mf.Manifest | None:
        # Loaded under the lock: the tables' threads ask for the same versions at once, and a
        # manifest of 100,000 writers costs ~0.2 s and ~40 MB to parse — once, not per thread.
        with self._lock:
            if version not in self._cache:
                try:
                    self._cache[version] = mf.load(self.store, version)
                except EvtrackError:
                    self._cache[version] = None
            return self._cache[version]

    def versions_after(self, version: int | None, upto: int) -> list[int]:
        """Manifest versions in (version, upto] (all kept ones when ``version`` is None).

        Versions are contiguous (each commit is its parent + 1; gc removes the oldest), so
        after a known version they are counted, not listed; ``get`` tells a removed one.
        """
        if version is not None:
            return list(range(version + 1, upto + 1))
        with self._lock:
            if self._all is None:
                self._all = mf.list_versions(self.store)
            return [v for v in self._all if v <= upto]


def publish(
    store: ObjectStore,
    *,
    upto: int | None = None,
    limit: int | None = None,
    table_names: list[str] | None = None,
    known: tuple[mf.Manifest, ...] = (),
) -> PublishReport:
    """Bring every table's Delta log up to manifest ``upto`` (the newest when None).

    ``limit`` caps the versions written per table (the rest wait for the next call);
    ``known`` are manifests the caller already holds (no second read).
    """
    start = time.perf_counter()
    report = PublishReport()
    newest = upto if upto is not None else mf.latest_version(store)
    report.manifest_version = newest
    if newest <= 0:
        return report
    manifests = _Manifests(store, *known)
    names = list(table_names or tables.all_tables())
    lock = threading.Lock()

    def one(table: str) -> None:
        try:
            written, checkpoints, behind = _publish_table(store, table, newest, manifests, limit)
        except (EvtrackError, OSError) as exc:
            with lock:
                report.errors.append(f"{table}: {getattr(exc, 'message', exc)}")
            return
        with lock:
            report.versions += written
            report.checkpoints += checkpoints
            report.tables.append(table)
            if behind:
                report.behind[table] = behind

    if len(names) == 1:
        one(names[0])
    else:
        with ThreadPoolExecutor(min(_THREADS, len(names))) as pool:
            list(pool.map(one, names))
    report.tables.sort()
    report.duration_s = time.perf_counter() - start
    return report


def publish_after_run(store: ObjectStore, run: Any, known: tuple[mf.Manifest, ...] = ()) -> PublishReport | None:
    """The compactor's hook: publish up to the manifest a pass ended on (``run.version``, a
    ``CompactionReport``); problems go to ``run.errors``, never raise.

    A failure leaves the Delta log behind the manifests, which the next pass repairs.
    """
    errors: list[str] = run.errors
    if not enabled() or run.version <= 0:
        return None
    try:
        report = publish(store, upto=run.version, limit=PASS_LIMIT, known=known)
    except (EvtrackError, OSError) as exc:
        errors.append(f"Delta log not published: {getattr(exc, 'message', exc)}")
        log.warning("evtrack: Delta log not published (the next pass retries): %s", exc)
        return None
    for problem in report.errors:
        errors.append(f"Delta log not published: {problem}")
        log.warning("evtrack: Delta log not published (the next pass retries): %s", problem)
    return report


# -- one table ----------------------------------------------------------------


@dataclass
class _Head:
    """Where a table's log stands: its newest version and the files it holds."""

    version: int = -1  # -1: no log yet
    manifest: int | None = None  # the manifest that version mirrors
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # store key -> manifest-like entry
    schema_version: int | None = None
    table_id: str | None = None


def _read_head(store: ObjectStore, table: str, manifests: _Manifests) -> _Head:
    """The log's head; cheap when its newest commit is ours and its manifest is still there."""
    latest, actions = dl.newest_commit(store, table)
    if latest is None:
        return _Head()
    txn = next((a["txn"] for a in actions if "txn" in a and a["txn"].get("appId") == dl.APP_ID), None)
    if txn is not None:
        m = manifests.get(int(txn["version"]))
        if m is not None:  # version `latest` holds exactly manifest m's files
            return _Head(
                latest, m.version, {f["path"]: f for f in m.files(table)}, m.schema_versions.get(table, 1), None
            )
    snap = ds.snapshot(store, table)  # someone else's commit, or the manifest is gone: replay
    md = snap.metadata or {}
    return _Head(
        snap.version,
        snap.manifest_version,
        {e["path"]: e for e in (dl.entry_of(table, a) for a in snap.adds.values())},
        int((md.get("configuration") or {}).get("evtrack.schemaVersion", 1)) if md else None,
        md.get("id"),
    )


def _publish_table(
    store: ObjectStore, table: str, newest: int, manifests: _Manifests, limit: int | None
) -> tuple[int, int, int]:
    """(versions written, checkpoints written, manifests left for later) for one table."""
    written = checkpoints = 0
    for _attempt in range(MAX_ATTEMPTS):
        head = _read_head(store, table, manifests)
        if head.manifest is not None and head.manifest >= newest:
            return written, checkpoints, 0
        todo = manifests.versions_after(head.manifest, newest)
        if limit is not None and written + len(todo) > limit:
            todo = todo[: max(0, limit - written)]
            if not todo:
                return written, checkpoints, len(manifests.versions_after(head.manifest, newest))
        lost = False
        for version in todo:
            m = manifests.get(version)
            if m is None:
                continue  # garbage-collected before it was published
            actions = commit_actions(store, table, m, head)
            try:
                dl.put_commit(store, table, head.version + 1, actions)
            except CommitConflictError:
                lost = True  # another publisher wrote this version: resume from its head
                break
            checkpoint("delta_committed")
            head = _Head(
                head.version + 1,
                m.version,
                {f["path"]: f for f in m.files(table)},
                m.schema_versions.get(table, 1),
                head.table_id,
            )
            written += 1
            if head.version > 0 and head.version % dl.CHECKPOINT_INTERVAL == 0:
                checkpoints += _checkpoint(store, table, head.version)
        if not lost:
            left = len(manifests.versions_after(head.manifest, newest))
            return written, checkpoints, left
    raise dl.DeltaLogError(f"gave up publishing the Delta log of {table} after {MAX_ATTEMPTS} lost commits")


def _checkpoint(store: ObjectStore, table: str, version: int) -> int:
    return int(ds.checkpoint(store, table, version, now_ms() - int(dl.RETENTION_S * 1000)))


def _table_id(store: ObjectStore, table: str, head: _Head) -> str | None:
    if head.version < 0:
        return None
    if head.table_id is None:
        md = ds.snapshot(store, table, head.version).metadata
        head.table_id = md.get("id") if md else None
    return head.table_id


def commit_actions(store: ObjectStore, table: str, m: mf.Manifest, head: _Head) -> list[dict[str, Any]]:
    """The actions of the Delta version mirroring manifest ``m``, on top of ``head``."""
    ts = now_ms()
    new = {f["path"]: f for f in m.files(table)}
    added = [f for k, f in new.items() if k not in head.files]
    removed = [f for k, f in head.files.items() if k not in new]
    # A pure rearrangement (the append tables' tier merges) changes no data: dataChange=false, as
    # Delta's OPTIMIZE writes, so streaming readers skip it. Anything else is a data change.
    merged = [f for f in added if (f.get("tier") or 0) > 0]
    rearranged = (
        table in tables.APPEND_TABLES
        and bool(removed)
        and sum(f["rows"] for f in merged) == sum(f["rows"] for f in removed)
    )
    schema_version = m.schema_versions.get(table, 1)
    actions: list[dict[str, Any]] = [
        {
            "commitInfo": {
                "timestamp": ts,
                "operation": "WRITE",
                "operationParameters": {"mode": "Append", "evtrackManifestVersion": str(m.version)},
                "engineInfo": f"evtrack/{__version__}",
                "isBlindAppend": not removed,
                "evtrack": {"manifestVersion": m.version, "committedAt": m.committed_at, "committer": m.committer},
            }
        }
    ]
    if head.version < 0:
        actions.append(dl.protocol_action())
    if head.version < 0 or head.schema_version != schema_version:
        table_id = _table_id(store, table, head)
        actions.append(dl.metadata_action(table, tables.schema(table), schema_version, ts, table_id))
    actions.append(dl.txn_action(m.version, ts))
    actions += [dl.remove_action(table, f, ts, not rearranged) for f in removed]
    actions += [dl.add_action(table, f, m.committed_at or ts, not (rearranged and f in merged)) for f in added]
    return actions


# -- the version map ----------------------------------------------------------


@dataclass(frozen=True)
class VersionEntry:
    """One Delta version of a table and the manifest it mirrors."""

    delta_version: int
    manifest_version: int | None
    timestamp: int  # ms, the commit's commitInfo timestamp


def _entry(store: ObjectStore, table: str, version: int) -> VersionEntry:
    actions = dl.read_commit(store, table, version)
    txn = next((a["txn"] for a in actions if "txn" in a and a["txn"].get("appId") == dl.APP_ID), None)
    info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
    return VersionEntry(version, int(txn["version"]) if txn else None, int(info.get("timestamp") or 0))


def version_map(store: ObjectStore, table: str, last: int | None = None) -> list[VersionEntry]:
    """Delta version ↔ manifest version of ``table``'s log, oldest first (the ``last`` newest only)."""
    commits = dl.list_log(store, table).commits
    if last is not None:
        commits = commits[-last:] if last > 0 else []
    with ThreadPoolExecutor(_THREADS) as pool:
        return list(pool.map(lambda v: _entry(store, table, v), commits))


def delta_version_of(store: ObjectStore, table: str, manifest_version: int) -> int | None:
    """The Delta version of ``table`` that mirrors ``manifest_version`` (binary search), else None."""
    commits = dl.list_log(store, table).commits
    lo, hi = 0, len(commits) - 1
    while lo <= hi:  # manifest versions rise with Delta versions
        mid = (lo + hi) // 2
        found = _entry(store, table, commits[mid]).manifest_version
        if found is None or found == manifest_version:
            return commits[mid] if found == manifest_version else None
        if found < manifest_version:
            lo = mid + 1
        else:
            hi = mid - 1
    return None
