"""Replaying a table's Delta log into a snapshot, and writing its Parquet checkpoints.

A snapshot is the newest checkpoint at or before the version, with the commits after
it applied (``Snapshot.apply``). Checkpoints are classic V1 checkpoints
(``<version:020d>.checkpoint.parquet``, one action per row, one struct column per
action type, as the protocol's appendix shows); the publisher writes one every
``CHECKPOINT_INTERVAL`` versions and points ``_last_checkpoint`` at it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from evtrack.errors import CommitConflictError, ObjectNotFoundError
from evtrack.store.base import ObjectStore

from compaction.delta_log import (
    DeltaLogError,
    Snapshot,
    checkpoint_key,
    last_checkpoint,
    last_checkpoint_key,
    list_log,
    list_tail,
    read_commit,
)

if TYPE_CHECKING:
    import pyarrow as pa


def snapshot(store: ObjectStore, table: str, version: int | None = None) -> Snapshot:
    """The state of ``table``'s log at ``version`` (the newest when None); empty when there is no log."""
    hint = last_checkpoint(store, table)
    if version is None or (hint is not None and hint <= version):
        listing = list_tail(store, table)
    else:
        listing = list_log(store, table)
    if version is not None:
        listing.commits = [v for v in listing.commits if v <= version]
        listing.checkpoints = [v for v in listing.checkpoints if v <= version]
    snap = Snapshot()
    start = 0
    if listing.checkpoints:
        snap = read_checkpoint(store, table, listing.checkpoints[-1])
        start = snap.version + 1
    for v in [c for c in listing.commits if c >= start]:
        if v != snap.version + 1:
            raise DeltaLogError(f"the Delta log of {table} has no commit {snap.version + 1} (found {v})")
        snap.apply(read_commit(store, table, v))
        snap.version = v
    return snap


def _checkpoint_schema() -> "pa.Schema":
    import pyarrow as pa

    strmap = pa.map_(pa.string(), pa.string())
    return pa.schema(
        [
            ("txn", pa.struct([("appId", pa.string()), ("version", pa.int64()), ("lastUpdated", pa.int64())])),
            (
                "add",
                pa.struct(
                    [
                        ("path", pa.string()),
                        ("partitionValues", strmap),
                        ("size", pa.int64()),
                        ("modificationTime", pa.int64()),
                        ("dataChange", pa.bool_()),
                        ("stats", pa.string()),
                        ("tags", strmap),
                    ]
                ),
            ),
            (
                "remove",
                pa.struct(
                    [
                        ("path", pa.string()),
                        ("deletionTimestamp", pa.int64()),
                        ("dataChange", pa.bool_()),
                        ("extendedFileMetadata", pa.bool_()),
                        ("partitionValues", strmap),
                        ("size", pa.int64()),
                    ]
                ),
            ),
            (
                "metaData",
                pa.struct(
                    [
                        ("id", pa.string()),
                        ("name", pa.string()),
                        ("description", pa.string()),
                        ("format", pa.struct([("provider", pa.string()), ("options", strmap)])),
                        ("schemaString", pa.string()),
                        ("partitionColumns", pa.list_(pa.string())),
                        ("createdTime", pa.int64()),
                        ("configuration", strmap),
                    ]
                ),
            ),
            ("protocol", pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32())])),
        ]
    )


def _maps_to_pairs(value: Any) -> Any:
    """Arrow wants map values as lists of (key, value) pairs."""
    return list(value.items()) if isinstance(value, dict) else value


def checkpoint_bytes(snap: Snapshot, tombstones_after_ms: int) -> tuple[bytes, int, int]:
    """(Parquet bytes, actions, add actions) of the checkpoint of ``snap``.

    Tombstones deleted before ``tombstones_after_ms`` have expired and are left out.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _checkpoint_schema()
    rows: list[dict[str, Any]] = []
    if snap.protocol is not None:
        rows.append({"protocol": snap.protocol})
    if snap.metadata is not None:
        md = dict(snap.metadata)
        md["format"] = {**md["format"], "options": _maps_to_pairs(md["format"].get("options") or {})}
        md["configuration"] = _maps_to_pairs(md.get("configuration") or {})
        rows.append({"metaData": md})
    rows += [{"txn": txn} for txn in snap.txns.values()]
    for add in snap.adds.values():
        rows.append({"add": {**add, "partitionValues": [], "tags": _maps_to_pairs(add.get("tags") or {})}})
    kept = [rm for rm in snap.removes.values() if (rm.get("deletionTimestamp") or 0) >= tombstones_after_ms]
    for rm in kept:
        rows.append({"remove": {**rm, "partitionValues": []}})
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue().to_pybytes(), len(rows), len(snap.adds)


def write_checkpoint(store: ObjectStore, table: str, snap: Snapshot, tombstones_after_ms: int) -> bool:
    """Write the checkpoint of ``snap`` and point ``_last_checkpoint`` at it; False when one exists."""
    data, n_actions, n_adds = checkpoint_bytes(snap, tombstones_after_ms)
    return _put_checkpoint(store, table, snap.version, data, n_actions, n_adds)


def checkpoint(store: ObjectStore, table: str, version: int, tombstones_after_ms: int) -> bool:
    """Write the checkpoint of ``version``: the previous checkpoint (ours) with the commits since
    applied column-wise, so its cost does not grow with the tombstones' Python objects;
    a full replay when there is no previous checkpoint of ours."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    hint = last_checkpoint(store, table)  # the previous checkpoint, read without listing the log
    previous = [hint] if hint is not None and hint < version else []
    schema = _checkpoint_schema()
    old = None
    if previous:
        try:
            old = pq.read_table(pa.BufferReader(store.get(checkpoint_key(table, previous[-1]))))
        except ObjectNotFoundError:
            old = None
    if old is None or old.schema.remove_metadata() != schema:
        return write_checkpoint(store, table, snapshot(store, table, version), tombstones_after_ms)
    changes = Snapshot()
    for v in range(previous[-1] + 1, version + 1):
        changes.apply(read_commit(store, table, v))
    touched = list(changes.adds) + list(changes.removes)
    add, remove = old.column("add"), old.column("remove")
    path = pc.coalesce(pc.struct_field(add, "path"), pc.struct_field(remove, "path"))
    keep = pc.invert(pc.fill_null(pc.is_in(path, value_set=pa.array(touched, pa.string())), False))
    expired = pc.fill_null(pc.less(pc.struct_field(remove, "deletionTimestamp"), tombstones_after_ms), False)
    keep = pc.and_(keep, pc.invert(expired))
    for name, replaced in (("metaData", changes.metadata is not None), ("protocol", changes.protocol is not None)):
        if replaced:
            keep = pc.and_(keep, pc.is_null(old.column(name)))
    if changes.txns:
        app = pc.struct_field(old.column("txn"), "appId")
        keep = pc.and_(keep, pc.invert(pc.fill_null(pc.is_in(app, value_set=pa.array(list(changes.txns))), False)))
    changes.removes = {
        p: rm for p, rm in changes.removes.items() if (rm.get("deletionTimestamp") or 0) >= tombstones_after_ms
    }
    fresh = pq.read_table(pa.BufferReader(checkpoint_bytes(changes, tombstones_after_ms)[0]))
    merged = pa.concat_tables([old.filter(keep), fresh])
    sink = pa.BufferOutputStream()
    pq.write_table(merged, sink, compression="snappy")
    n_adds = pc.sum(pc.is_valid(merged.column("add"))).as_py() or 0
    return _put_checkpoint(store, table, version, sink.getvalue().to_pybytes(), merged.num_rows, n_adds)


def _put_checkpoint(store: ObjectStore, table: str, version: int, data: bytes, n_actions: int, n_adds: int) -> bool:
    try:
        store.put_if_absent(checkpoint_key(table, version), data)
    except CommitConflictError:
        return False  # another publisher wrote the same state
    current = last_checkpoint(store, table)
    if current is None or current < version:
        doc = {"version": version, "size": n_actions, "sizeInBytes": len(data), "numOfAddFiles": n_adds}
        store.put(last_checkpoint_key(table), orjson.dumps(doc))
    return True


def read_checkpoint(store: ObjectStore, table: str, version: int) -> Snapshot:
    """The state a classic checkpoint holds."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    key = checkpoint_key(table, version)
    try:
        data = pq.read_table(pa.BufferReader(store.get(key)))
    except ObjectNotFoundError:
        raise DeltaLogError(f"the Delta checkpoint {key} is missing") from None
    snap = Snapshot(version=version)
    names = data.column_names
    for name in ("protocol", "metaData", "txn", "add"):
        if name not in names:
            continue
        column = data.column(name)
        for value in column.filter(pc.is_valid(column)).to_pylist():
            action = _pairs_to_maps(value)
            snap.apply([{name: action}])
    if "remove" in names:  # possibly many tombstones: read column-wise
        column = data.column("remove")
        present = column.filter(pc.is_valid(column))
        fields = ("path", "deletionTimestamp", "dataChange", "size")
        cols = [pc.struct_field(present, f).to_pylist() for f in fields]
        for path, ts, change, size in zip(*cols):
            snap.removes[path] = {"path": path, "deletionTimestamp": ts, "dataChange": change, "size": size}
    return snap


def _pairs_to_maps(value: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in value.items():
        if k in ("partitionValues", "tags", "configuration", "options") and isinstance(v, list):
            v = dict(v)
        elif k == "format" and isinstance(v, dict):
            v = _pairs_to_maps(v)
        if v is not None:
            out[k] = v
    return out
