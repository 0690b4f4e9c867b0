"""Reading one artifact for the UI: its first bytes (previews) and a stream of it (downloads).

The ``ObjectStore`` protocol reads whole objects; a preview needs only the first
MiB and a download should not hold a large file in memory, so the two stores
are read natively here (a local file opened, an S3 object fetched with a range
or streamed), and any other store falls back to ``get``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from evtrack.errors import ObjectNotFoundError, StoreError
from evtrack.store.local import LocalStore, validate_key

CHUNK = 1 << 20


def local_path(store: Any, key: str) -> str | None:
    """The file behind ``key`` when the store is a local directory (None otherwise)."""
    if isinstance(store, LocalStore):
        return os.path.join(store.root, *validate_key(key).split("/"))
    return None


def _is_s3(store: Any) -> bool:
    return type(store).__name__ == "S3Store" and hasattr(store, "bucket")


def read_head(store: Any, key: str, limit: int) -> bytes:
    """Up to ``limit`` bytes from the start of the object."""
    path = local_path(store, key)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                return fh.read(limit)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(f"object not found: {key!r} in {store.uri}") from None
        except OSError as exc:
            raise StoreError(f"Reading {key!r} in {store.uri} failed: {exc.strerror}") from None
    if _is_s3(store):
        with store._errors("get", key):
            response = store._client.get_object(Bucket=store.bucket, Key=store._key(key),
                                                Range=f"bytes=0-{max(limit, 1) - 1}")
            with contextlib.closing(response["Body"]) as body:
                return body.read(limit)
    return store.get(key)[:limit]


def iter_object(store: Any, key: str) -> Iterator[bytes]:
    """The object's bytes in chunks (for a streamed download of a non-local store)."""
    if _is_s3(store):
        with store._errors("get", key):
            response = store._client.get_object(Bucket=store.bucket, Key=store._key(key))
        with contextlib.closing(response["Body"]) as body:
            yield from body.iter_chunks(CHUNK)
        return
    yield store.get(key)
