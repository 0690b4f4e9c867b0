"""The ``ObjectStore`` protocol: the only thing evtrack asks of a storage backend.

Keys are ``/``-separated strings relative to the store's root (``events/x.jsonl``).
Both implementations (local directory, S3) pass the same contract test suite.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Hashable, Iterator, Protocol, runtime_checkable

CHUNK_SIZE = 1 << 20


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

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` (fewer at the end, none past it); errors as ``get``."""

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The whole object in chunks of at most ``chunk_size``; errors as ``get``, by the first chunk."""

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

    def delete_many(self, keys: list[str]) -> None:
        """Remove the objects (missing keys are fine); on S3 requests of up to 1,000 keys, several at a time."""

    def put_file(self, key: str, path: str) -> None:
        """Upload a local file (multipart for large files on S3)."""

    def get_file(self, key: str, path: str) -> None:
        """Download the object into a local file, creating parent directories."""


def open_chunks(store: ObjectStore, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """``store.iter_chunks`` with a missing object or a failing store raised by this call
    (before anything is sent, e.g. while an HTTP status can still be chosen)."""
    chunks = store.iter_chunks(key, chunk_size)
    first = next(chunks, None)
    return iter(()) if first is None else itertools.chain((first,), chunks)


def listing_token(store: ObjectStore, prefix: str) -> Hashable | None:
    """A cheap value that changes whenever the listing of ``prefix`` (a flat ``…/`` directory) may
    have changed, so a reader can skip listing it again; None when the store cannot tell (S3).

    Optional for a store: one that has no ``listing_token`` method cannot tell."""
    token = getattr(store, "listing_token", None)
    return token(prefix) if token is not None else None


def list_keys(store: ObjectStore, prefix: str) -> Iterator[str]:
    """The keys ``store.list(prefix)`` would give, in key order, without their sizes and times
    where the store can skip them (a local store then does one ``stat`` less per object).

    Optional for a store: one without a ``list_keys`` method is listed with ``list``."""
    keys = getattr(store, "list_keys", None)
    return keys(prefix) if keys is not None else (info.key for info in store.list(prefix))
