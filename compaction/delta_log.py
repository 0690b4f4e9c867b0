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
format (``compaction.delta_state`` replays it and writes checkpoints); which manifest
becomes which version is ``compaction.delta``.

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

from evtrack.errors import EvtrackError, ObjectNotFoundError
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
    if hint is not None and hint not in listing.checkpoints:  # a stale or broken hint: list it all
        listing = list_log(store, table)
    return listing


_PROBES = 64


def newest_commit(store: ObjectStore, table: str) -> tuple[int | None, list[dict[str, Any]]]:
    """(newest commit version, its actions), or (None, []) for a table without a log.

    Commits are contiguous, so from ``_last_checkpoint`` on the next ones are read by
    name until one is missing: no listing of a log that may hold thousands of commits
    (a local directory is listed whole whatever ``start_after`` says). Without a usable
    hint, or after many probes, the log is listed.
    """
    hint = last_checkpoint(store, table)
    version, actions = None, []
    if hint is not None:
        for v in range(hint, hint + _PROBES):
            try:
                actions, version = read_commit(store, table, v), v
            except ObjectNotFoundError:
                if version is not None:
                    return version, actions
                break  # the hint's own commit is missing: the hint is wrong
    listing = list_log(store, table, version)
    if listing.latest is None:
        return None, []
    return listing.latest, read_commit(store, table, listing.latest)


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
