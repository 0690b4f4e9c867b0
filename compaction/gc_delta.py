"""What ``gc`` keeps for the tables' Delta logs, and the logs' own cleanup.

A file is still referenced by a Delta version inside the retention window when it
is in the newest version of its table's log, or when its tombstone (``remove``) is
younger than the cutoff: the version before that remove still lists it, and that
version was superseded less than the retention ago — the rule Delta's VACUUM
applies with ``delta.deletedFileRetentionDuration``. gc deletes neither.

Log cleanup follows the protocol's "Metadata Cleanup": the newest commit older than
the cutoff is the cutoff commit; the newest checkpoint at or before it is kept with
everything after it; the commits and checkpoints before that checkpoint go.
"""

from __future__ import annotations

from evtrack.errors import EvtrackError
from evtrack.state import tables
from evtrack.store.base import ObjectStore

from compaction import delta_log as dl
from compaction import delta_state as ds


def is_log_key(key: str) -> bool:
    """True for an object of some table's ``_delta_log/`` (never a data file)."""
    return "/_delta_log/" in key


def delta_referenced(store: ObjectStore, cutoff_ms: int, warnings: list[str]) -> tuple[set[str], set[str]]:
    """(store keys a Delta version inside the retention window references, table roots to keep whole).

    A table whose log cannot be read keeps all its files (its root is in the second set).
    """
    keys: set[str] = set()
    roots: set[str] = set()
    for table in tables.all_tables():
        try:
            snap = ds.snapshot(store, table)
        except EvtrackError as exc:
            warnings.append(f"the Delta log of {table} could not be read ({exc.message}); gc kept its files")
            roots.add(dl.table_root(table))
            continue
        keys.update(dl.store_key(table, path) for path in snap.adds)
        keys.update(
            dl.store_key(table, path)
            for path, rm in snap.removes.items()
            if (rm.get("deletionTimestamp") or 0) >= cutoff_ms
        )
    return keys, roots


def expired_log_objects(store: ObjectStore, cutoff_s: float) -> list[str]:
    """The commits and checkpoints of every table's log that metadata cleanup removes."""
    doomed: list[str] = []
    for table in tables.all_tables():
        listing = dl.list_log(store, table)
        old = [v for v in listing.commits if listing.mtimes[v] < cutoff_s]
        if not old:
            continue
        kept_checkpoints = [c for c in listing.checkpoints if c <= old[-1]]
        if not kept_checkpoints:
            continue  # no checkpoint to start from: nothing may go
        keep_from = kept_checkpoints[-1]
        doomed += [dl.commit_key(table, v) for v in listing.commits if v < keep_from]
        doomed += [dl.checkpoint_key(table, v) for v in listing.checkpoints if v < keep_from]
    return doomed
