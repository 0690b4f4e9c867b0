"""The Delta Lake transaction log of one table: names, actions, replay and checkpoints.

``tables/<table>/`` is a Delta table (https://github.com/delta-io/delta/blob/master/PROTOCOL.md):
its data files are the table's Parquet files, already there, and its log is
``tables/<table>/_delta_log/``::

    00000000000000000000.json             commit 0: protocol, metaData, txn, add…
    00000000000000000001.json             commit d: commitInfo, txn, remove…, add…
    00000000000000000010.checkpoint.parquet   every 10th version: the replayed state
    _last_checkpoint                      {"version": 10, "size": …}

A commit is newline-delimited JSON, created with put-if-absent (Delta's
"writers MUST never overwrite an existing log entry"). This module knows the
format only; which manifest becomes which version is ``compaction.delta``.

Types: every column is a plain Parquet type, so the Delta schema maps one to one:
string → ``string``, int64 → ``long``, int16 → ``short``, float64 → ``double``.
Times are epoch milliseconds in ``long`` columns (as MLflow's), not Parquet
timestamps, so neither ``timestamp`` nor ``timestamp_ntz`` (a reader-version-3
feature some readers lack) is needed. NaN and ±Infinity are ordinary doubles in
the files; no min/max statistics are written (only ``numRecords``), so no
statistic has to spell NaN in JSON.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import orjson

from evtrack.errors import CommitConflictError, EvtrackError, ObjectNotFoundError
from evtrack.store.base import ObjectStore

if TYPE_CHECKING:
    import pyarrow as pa

APP_ID = "evtrack"  # the txn appId whose version is the evtrack manifest version
CHECKPOINT_INTERVAL = 10
RETENTION_S = 7 * 86400.0  # = gc's default retention: Delta's retention properties say the same
_DELTA_TYPES = {
    "string": "string",
    "large_string": "string",
    "int64": "long",
    "int32": "integer",
    "int16": "short",
    "int8": "byte",
    "double": "double",
    "float": "float",
    "bool": "boolean",
    "binary": "binary",
    "date32[day]": "date",
}


class DeltaLogError(EvtrackError):
    """A table's Delta log cannot be read or written as the protocol requires."""


def table_root(table: str) -> str:
    """The key prefix of a table's Delta table (its data files live directly under it)."""
    return f"tables/{table}/"


def log_prefix(table: str) -> str:
    """The key prefix of a table's ``_delta_log``."""
    return f"tables/{table}/_delta_log/"


def commit_key(table: str, version: int) -> str:
    """The key of Delta commit ``version`` of ``table``."""
    return f"{log_prefix(table)}{version:020d}.json"


def checkpoint_key(table: str, version: int) -> str:
    """The key of the classic checkpoint of ``version``."""
    return f"{log_prefix(table)}{version:020d}.checkpoint.parquet"


def last_checkpoint_key(table: str) -> str:
    """The key of ``_last_checkpoint``."""
    return f"{log_prefix(table)}_last_checkpoint"


def add_path(table: str, key: str) -> str:
    """The ``add`` path of a store key: relative to the table root, URI-encoded (RFC 2396)."""
    root = table_root(table)
    if not key.startswith(root):
        raise DeltaLogError(f"file {key} of table {table} is not under {root}")
    return quote(key[len(root) :], safe="/")


def store_key(table: str, path: str) -> str:
    """The store key of an ``add``/``remove`` path of ``table`` (the inverse of ``add_path``)."""
    return table_root(table) + unquote(path)


# -- schema -------------------------------------------------------------------


def delta_type(arrow_type: "pa.DataType") -> str:
    """Delta's name of a primitive Arrow type."""
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):  # none of our tables has one; kept exact for the day one does
        return "timestamp" if arrow_type.tz is not None else "timestamp_ntz"
    name = _DELTA_TYPES.get(str(arrow_type))
    if name is None:
        raise DeltaLogError(f"no Delta type for Arrow type {arrow_type}")
    return name


def schema_string(schema: "pa.Schema") -> str:
    """The ``schemaString`` of a table: Spark's JSON struct type, one line."""
    fields = [{"name": f.name, "type": delta_type(f.type), "nullable": f.nullable, "metadata": {}} for f in schema]
    return orjson.dumps({"type": "struct", "fields": fields}).decode()


def retention_interval(seconds: float) -> str:
    """A retention as Delta's table properties spell it (``interval 7 days``)."""
    s = int(seconds)
    if s % 86400 == 0:
        return f"interval {s // 86400} days"
    if s % 3600 == 0:
        return f"interval {s // 3600} hours"
    return f"interval {s} seconds"


# -- actions ------------------------------------------------------------------


def protocol_action() -> dict[str, Any]:
    """Reader 1 / writer 2: plain Parquet, no table features."""
    return {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}


def metadata_action(
    table: str, schema: "pa.Schema", schema_version: int, created_ms: int, table_id: str | None
) -> dict:
    """The ``metaData`` action of a table (a new id when ``table_id`` is None)."""
    return {
        "metaData": {
            "id": table_id or str(uuid.uuid4()),
            "name": table,
            "description": f"evtrack table {table}",
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema_string(schema),
            "partitionColumns": [],
            "createdTime": created_ms,
            "configuration": {
                "delta.logRetentionDuration": retention_interval(RETENTION_S),
                "delta.deletedFileRetentionDuration": retention_interval(RETENTION_S),
                "delta.checkpointInterval": str(CHECKPOINT_INTERVAL),
                "delta.appendOnly": "false",
                "evtrack.schemaVersion": str(schema_version),
            },
        }
    }


def file_tags(entry: dict[str, Any]) -> dict[str, str]:
    """The manifest facts of a file kept in its ``add`` tags (tier, state partition)."""
    tags = {"evtrack.tier": str(entry.get("tier", 0) or 0)}
    if entry.get("partition"):
        tags["evtrack.partition"] = str(entry["partition"])
    return tags


def add_action(table: str, entry: dict[str, Any], modification_ms: int, data_change: bool) -> dict[str, Any]:
    """The ``add`` of a manifest file entry."""
    return {
        "add": {
            "path": add_path(table, entry["path"]),
            "partitionValues": {},
            "size": int(entry["bytes"]),
            "modificationTime": modification_ms,
            "dataChange": data_change,
            "stats": orjson.dumps({"numRecords": int(entry["rows"])}).decode(),
            "tags": file_tags(entry),
        }
    }


def remove_action(table: str, entry: dict[str, Any], deletion_ms: int, data_change: bool) -> dict[str, Any]:
    """The ``remove`` (tombstone) of a file that left the table."""
    return {
        "remove": {
            "path": add_path(table, entry["path"]),
            "deletionTimestamp": deletion_ms,
            "dataChange": data_change,
            "extendedFileMetadata": True,
            "partitionValues": {},
            "size": int(entry["bytes"]),
        }
    }


def txn_action(manifest_version: int, now_ms: int) -> dict[str, Any]:
    """The transaction identifier recording which manifest a version mirrors."""
    return {"txn": {"appId": APP_ID, "version": manifest_version, "lastUpdated": now_ms}}


def encode_commit(actions: list[dict[str, Any]]) -> bytes:
    """A commit file: one action per line."""
    return b"".join(orjson.dumps(a) + b"\n" for a in actions)


def decode_commit(data: bytes, key: str = "") -> list[dict[str, Any]]:
    """The actions of a commit file."""
    try:
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise DeltaLogError(f"Delta commit {key} is not newline-delimited JSON: {exc}") from None


def entry_of(table: str, add: dict[str, Any]) -> dict[str, Any]:
    """A manifest-like file entry (path, rows, bytes, tier, partition) from an ``add`` action."""
    tags = add.get("tags") or {}
    try:
        rows = int(orjson.loads(add.get("stats") or "{}").get("numRecords", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        rows = 0
    return {
        "path": store_key(table, add["path"]),
        "rows": rows,
        "bytes": int(add.get("size") or 0),
        "tier": int(tags.get("evtrack.tier", 0)),
        "partition": tags.get("evtrack.partition"),
    }


# -- the log ------------------------------------------------------------------


def put_commit(store: ObjectStore, table: str, version: int, actions: list[dict[str, Any]]) -> None:
    """Create commit ``version``; ``CommitConflictError`` when another writer made it first."""
    store.put_if_absent(commit_key(table, version), encode_commit(actions))


def read_commit(store: ObjectStore, table: str, version: int) -> list[dict[str, Any]]:
    """The actions of commit ``version``."""
    key = commit_key(table, version)
    return decode_commit(store.get(key), key)


def last_checkpoint(store: ObjectStore, table: str) -> int | None:
    """The version ``_last_checkpoint`` names (a hint: None when absent or unreadable)."""
    try:
        doc = orjson.loads(store.get(last_checkpoint_key(table)))
        return int(doc["version"])
    except (ObjectNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


@dataclass
class LogListing:
    """The commits and checkpoints of a log (from some version on), ascending."""

    commits: list[int] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)
    mtimes: dict[int, float] = field(default_factory=dict)  # commit version -> mtime (s)

    @property
    def latest(self) -> int | None:
        """The newest commit version."""
        return self.commits[-1] if self.commits else None


def list_log(store: ObjectStore, table: str, from_version: int | None = None) -> LogListing:
    """Commits and classic checkpoints at or after ``from_version`` (all when None)."""
    prefix = log_prefix(table)
    after = f"{prefix}{from_version - 1:020d}.z" if from_version else None
    out = LogListing()
    for info in store.list(prefix, start_after=after):
        name = info.key[len(prefix) :]
        stem, _, rest = name.partition(".")
        if len(stem) != 20 or not stem.isdigit():
            continue
        if rest == "json":
            out.commits.append(int(stem))
            out.mtimes[int(stem)] = info.mtime
        elif rest == "checkpoint.parquet":
            out.checkpoints.append(int(stem))
    return out


def list_tail(store: ObjectStore, table: str) -> LogListing:
    """The log from its newest checkpoint on (``_last_checkpoint`` shortens the listing)."""
    hint = last_checkpoint(store, table)
    listing = list_log(store, table, hint)
    if hint is not None and not listing.commits:  # a hint ahead of the log (cannot be): list it all
        listing = list_log(store, table)
    return listing


@dataclass
class Snapshot:
    """The replayed state of a table's log at one version."""

    version: int = -1
    protocol: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    txns: dict[str, dict[str, Any]] = field(default_factory=dict)
    adds: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> add
    removes: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> remove (tombstones)

    @property
    def manifest_version(self) -> int | None:
        """The evtrack manifest this version mirrors (its ``evtrack`` txn), if any."""
        txn = self.txns.get(APP_ID)
        return int(txn["version"]) if txn is not None else None

    def apply(self, actions: list[dict[str, Any]]) -> None:
        """Replay one commit's actions on top (Delta's action reconciliation)."""
        for action in actions:
            if "add" in action:
                add = action["add"]
                self.adds[add["path"]] = add
                self.removes.pop(add["path"], None)
            elif "remove" in action:
                rm = action["remove"]
                self.removes[rm["path"]] = rm
                self.adds.pop(rm["path"], None)
            elif "metaData" in action:
                self.metadata = action["metaData"]
            elif "protocol" in action:
                self.protocol = action["protocol"]
            elif "txn" in action:
                self.txns[action["txn"]["appId"]] = action["txn"]


def snapshot(store: ObjectStore, table: str, version: int | None = None) -> Snapshot:
    """The state of ``table``'s log at ``version`` (the newest when None); empty when there is no log."""
    listing = list_tail(store, table) if version is None else list_log(store, table)
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


# -- checkpoints --------------------------------------------------------------


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
    try:
        store.put_if_absent(checkpoint_key(table, snap.version), data)
    except CommitConflictError:
        return False  # another publisher wrote the same state
    current = last_checkpoint(store, table)
    if current is None or current < snap.version:
        doc = {"version": snap.version, "size": n_actions, "sizeInBytes": len(data), "numOfAddFiles": n_adds}
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
