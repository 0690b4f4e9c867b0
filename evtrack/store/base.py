"""The ``ObjectStore`` protocol: the only thing evtrack asks of a storage backend.

Keys are ``/``-separated strings relative to the store's root (``events/x.jsonl``).
Both implementations (local directory, S3) pass the same contract test suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a listing or a head tells about one object."""

    key: str
    size: int
    mtime: float  # seconds since the epoch


@runtime_checkable
class ObjectStore(Protocol):
    """A bucket-like key/value store of immutable-ish objects."""

    uri: str  # the root URI, e.g. ``s3://bucket/prefix`` or ``file:///abs/dir``

    def get(self, key: str) -> bytes:
        """Return the object's bytes; ``ObjectNotFoundError`` when absent."""

    def put(self, key: str, data: bytes) -> None:
        """Create or replace the object atomically (readers never see a partial object)."""

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Create the object only when the key is free; ``CommitConflictError`` otherwise."""

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Yield the objects whose key starts with ``prefix``, in key order, after ``start_after``."""

    def head(self, key: str) -> ObjectInfo | None:
        """Return the object's info, or ``None`` when absent."""

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""

    def put_file(self, key: str, path: str) -> None:
        """Upload a local file (multipart for large files on S3)."""

    def get_file(self, key: str, path: str) -> None:
        """Download the object into a local file, creating parent directories."""
