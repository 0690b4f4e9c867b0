"""Manifests: numbered, immutable JSON commits that list every table's live files.

``_manifests/<n:020d>.json`` is version n. It is created with put-if-absent, so
exactly one compactor wins each version. ``_manifests/_latest`` is a hint (the
newest version someone saw); readers use it to start listing, never to decide.

The document (``format: evtrack-manifest``, ``format_version: 1``)::

    {"version": 7, "parent": 6, "committed_at": <ms>, "committer": "...",
     "partitions": 16, "schema_versions": {"metrics": 1, ...},
     "tables": {"metrics": [{"path": "tables/metrics/….parquet", "rows": 1000,
                             "bytes": 12345, "tier": 0, "partition": null}, ...], ...},
     "writers": {"<writer id>": {"seq": 41, "extra": [44], "last": <ms>}},
     "stats": {"events": <total events folded>, "segments": <total segments>}}

``writers`` records which inbox segments are folded: segment ``<ms>-<writer>-<seq>``
is folded when ``seq <= writers[writer].seq`` or ``seq in writers[writer].extra``.
Distributed engines read a version by taking exactly the files listed under
``tables`` (see ``evtrack tables files``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from evtrack.errors import EvtrackError, ObjectNotFoundError
from evtrack.store.base import ObjectStore

MANIFESTS = "_manifests/"
HINT_KEY = "_manifests/_latest"
FORMAT = "evtrack-manifest"
FORMAT_VERSION = 1


def manifest_key(version: int) -> str:
    """The key of manifest ``version``."""
    return f"{MANIFESTS}{version:020d}.json"


def parse_segment_key(key: str) -> tuple[str, int] | None:
    """(writer id, segment seq) of an inbox key ``events/<ms>-<writer>-<seq>.jsonl``, else None."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(".jsonl"):
        return None
    parts = name[: -len(".jsonl")].split("-")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit() or not parts[1]:
        return None
    return parts[1], int(parts[2])


@dataclass
class WriterMark:
    """Which segments of one writer are folded: 1..seq, plus the seqs in ``extra``."""

    seq: int = 0
    extra: set[int] = field(default_factory=set)
    last: int = 0

    def covers(self, seq: int) -> bool:
        """True when segment ``seq`` of this writer is folded."""
        return seq <= self.seq or seq in self.extra

    def add(self, seq: int, when: int) -> None:
        """Record segment ``seq`` as folded."""
        if seq > self.seq:
            self.extra.add(seq)
            while self.seq + 1 in self.extra:
                self.seq += 1
                self.extra.discard(self.seq)
        self.last = max(self.last, when)

    def copy(self) -> "WriterMark":
        """An independent copy (cheaper than ``copy.deepcopy`` across 100,000 writers)."""
        return WriterMark(self.seq, set(self.extra), self.last)


@dataclass
class Manifest:
    """One committed version of the tables."""

    version: int = 0
    parent: int | None = None
    committed_at: int = 0
    committer: str = ""
    partitions: int = 16
    schema_versions: dict[str, int] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    writers: dict[str, WriterMark] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def files(self, table: str) -> list[dict[str, Any]]:
        """The live files of a table in this version."""
        return self.tables.get(table, [])

    def is_folded(self, key: str) -> bool:
        """True when an inbox segment is already part of this version."""
        parsed = parse_segment_key(key)
        if parsed is None:
            return False
        mark = self.writers.get(parsed[0])
        return mark is not None and mark.covers(parsed[1])

    def to_json(self) -> bytes:
        """The manifest document."""
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "parent": self.parent,
            "committed_at": self.committed_at,
            "committer": self.committer,
            "partitions": self.partitions,
            "schema_versions": self.schema_versions,
            "tables": self.tables,
            "writers": {
                w: {"seq": m.seq, "extra": sorted(m.extra), "last": m.last} for w, m in sorted(self.writers.items())
            },
            "stats": self.stats,
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes, key: str = "") -> "Manifest":
        """Parse a manifest document; a clear error when it is not one we understand."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EvtrackError(f"manifest {key} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise EvtrackError(f"{key} is not an evtrack manifest")
        if doc.get("format_version") != FORMAT_VERSION:
            raise EvtrackError(
                f"manifest {key} has format_version {doc.get('format_version')}; "
                f"this evtrack reads version {FORMAT_VERSION} (upgrade evtrack)"
            )
        writers = {
            w: WriterMark(m["seq"], set(m.get("extra", [])), m.get("last", 0))
            for w, m in doc.get("writers", {}).items()
        }
        return cls(
            version=doc["version"],
            parent=doc.get("parent"),
            committed_at=doc.get("committed_at", 0),
            committer=doc.get("committer", ""),
            partitions=doc.get("partitions", 16),
            schema_versions=doc.get("schema_versions", {}),
            tables=doc.get("tables", {}),
            writers=writers,
            stats=doc.get("stats", {}),
        )


def list_versions(store: ObjectStore, start_after: int | None = None) -> list[int]:
    """Every committed manifest version, ascending (after ``start_after`` when given)."""
    after = manifest_key(start_after) if start_after is not None else None
    versions = []
    for info in store.list(MANIFESTS, start_after=after):
        stem = info.key[len(MANIFESTS) :]
        if stem.endswith(".json") and stem[:-5].isdigit():
            versions.append(int(stem[:-5]))
    return versions


def _hint(store: ObjectStore) -> int | None:
    try:
        value = int(store.get(HINT_KEY).decode().strip())
        return value if value > 0 else None
    except (ObjectNotFoundError, ValueError):
        return None


def latest_version(store: ObjectStore) -> int:
    """The newest committed version (0 when nothing was ever compacted)."""
    hint = _hint(store)
    if hint is not None:
        versions = list_versions(store, start_after=hint - 1)
        if versions:
            return versions[-1]
    versions = list_versions(store)  # no hint, or a stale one (e.g. gc removed manifests)
    return versions[-1] if versions else 0


def load(store: ObjectStore, version: int | None = None) -> Manifest:
    """Manifest ``version`` (the newest when None); version 0 is the empty store."""
    if version is None:
        version = latest_version(store)
    if version == 0:
        return Manifest()
    key = manifest_key(version)
    try:
        return Manifest.from_json(store.get(key), key)
    except ObjectNotFoundError:
        raise EvtrackError(f"manifest version {version} does not exist (or was garbage-collected)") from None


class CommitWatcher(Protocol):
    """Something in this process that holds a store's manifest (a reader)."""

    store: ObjectStore

    def note_commit(self) -> None:
        """A new manifest version of ``store`` was committed by this process."""


_watchers: "weakref.WeakSet[Any]" = weakref.WeakSet()


def watch_commits(watcher: CommitWatcher) -> None:
    """Tell ``watcher`` of every manifest this process commits to its store (kept weakly)."""
    _watchers.add(watcher)


def write_hint(store: ObjectStore, version: int) -> None:
    """After committing ``version``: record it as the newest seen (best effort; correctness never
    depends on it), and tell this process's readers of the store, which then list it again."""
    try:
        store.put(HINT_KEY, str(version).encode())
    except EvtrackError:
        pass
    for watcher in list(_watchers):
        if watcher.store.uri == store.uri:
            watcher.note_commit()
