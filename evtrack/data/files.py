"""Datasets from files: a local file or directory, an S3 object or an S3 prefix.

Only what the digest and profile need is read: small files whole, large files
as three sampled chunks (ranged GETs on S3), Parquet files by their footer.
A directory (or prefix) is the sorted list of its files, hidden ones skipped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import io
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

from evtrack.data import digests
from evtrack.errors import InvalidParameterError, ResourceNotFoundError

CHUNK = 1 << 20
MAX_FOOTERS = 256  # Parquet row counts of a directory are summed up to this many files
_TEXT_FORMATS = {".csv": ",", ".tsv": "\t", ".txt": None}
_JSON_FORMATS = (".jsonl", ".ndjson", ".json")
_PARQUET_FORMATS = (".parquet", ".pq")


class Blob(ABC):
    """One file to read: its URI, path relative to the dataset root, and size."""

    uri: str
    rel: str
    size: int

    @abstractmethod
    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end)."""

    def chunks(self) -> Iterator[bytes]:
        """The whole content, in chunks."""
        offset = 0
        while offset < self.size:
            data = self.read(offset, min(CHUNK * 8, self.size - offset))
            if not data:
                return
            offset += len(data)
            yield data

    def open(self) -> io.RawIOBase:
        """A seekable file object over the content (for Parquet footers)."""
        return _RangeFile(self)


class _RangeFile(io.RawIOBase):
    """A read-only, seekable file over a blob's ranged reads."""

    def __init__(self, blob: Blob) -> None:
        self.blob, self.pos = blob, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.blob.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.blob.size - self.pos)
        if n <= 0:
            return 0
        data = self.blob.read(self.pos, n)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


@dataclass
class LocalBlob(Blob):
    """A local file."""

    path: str
    rel: str
    size: int

    @property
    def uri(self) -> str:  # type: ignore[override]
        return self.path

    def read(self, offset: int, length: int) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    def chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while data := fh.read(CHUNK * 8):
                yield data

    def open(self) -> io.RawIOBase:
        return open(self.path, "rb")  # type: ignore[return-value]


@lru_cache(maxsize=16)
def _bucket_store(bucket: str) -> Any:
    from evtrack.store import open_store

    return open_store(f"s3://{bucket}")


@dataclass
class S3Blob(Blob):
    """An S3 object, read with ranged GETs."""

    bucket: str
    key: str
    rel: str
    size: int

    @property
    def uri(self) -> str:  # type: ignore[override]
        return f"s3://{self.bucket}/{self.key}"

    def read(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        store = _bucket_store(self.bucket)
        with store._errors("ranged get", self.key):
            response = store._client.get_object(
                Bucket=self.bucket, Key=self.key, Range=f"bytes={offset}-{offset + length - 1}"
            )
            with response["Body"] as body:
                return body.read()


def list_blobs(uri: str) -> tuple[list[Blob], bool, str]:
    """(files, is_directory, canonical URI) of a local path, ``file://`` URI or S3 URI."""
    if uri.startswith("s3://"):
        return _s3_blobs(uri)
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(path):
        return [LocalBlob(path, os.path.basename(path), os.path.getsize(path))], False, path
    if not os.path.isdir(path):
        raise ResourceNotFoundError(f"No such file or directory: {path!r}")
    blobs: list[Blob] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                full = os.path.join(root, name)
                rel = os.path.relpath(full, path).replace(os.sep, "/")
                blobs.append(LocalBlob(full, rel, os.path.getsize(full)))
    blobs.sort(key=lambda b: b.rel)
    return blobs, True, path


def _s3_blobs(uri: str) -> tuple[list[Blob], bool, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidParameterError(f"Invalid S3 URI {uri!r}: expected s3://bucket/key")
    store = _bucket_store(bucket)
    key = key.strip("/") if uri.endswith("/") else key
    if key and not uri.endswith("/"):
        info = store.head(key)
        if info is not None:
            return [S3Blob(bucket, key, key.rsplit("/", 1)[-1], info.size)], False, uri
    prefix = f"{key}/" if key else ""
    blobs: list[Blob] = []
    for info in store.list(prefix):
        rel = info.key[len(prefix) :]
        if not any(part.startswith(".") for part in rel.split("/")):
            blobs.append(S3Blob(bucket, info.key, rel, info.size))
    if not blobs:
        raise ResourceNotFoundError(f"No S3 object or prefix at {uri!r}")
    return blobs, True, uri.rstrip("/")


# -- digest, schema and profile ------------------------------------------------------------


def _suffix(name: str) -> str:
    base = name[:-3] if name.endswith(".gz") else name
    return os.path.splitext(base)[1].lower()


def _parse_text(data: bytes, suffix: str) -> Any:
    """A pyarrow table parsed from CSV/TSV/JSON-lines bytes, or None."""
    import pyarrow as pa

    try:
        if suffix in _JSON_FORMATS:
            import pyarrow.json as pj

            return pj.read_json(io.BytesIO(data))
        import pyarrow.csv as pc

        delimiter = _TEXT_FORMATS.get(suffix) or ","
        return pc.read_csv(io.BytesIO(data), parse_options=pc.ParseOptions(delimiter=delimiter))
    except (pa.ArrowException, ValueError):
        return None


def _table_facts(table: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = digests.colspec(table.schema, lambda i: table.column(i).null_count == 0)
    return schema, {"num_rows": table.num_rows, "num_elements": table.num_rows * table.num_columns}


def _file_facts(blob: Blob, whole: bytes | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(schema, profile facts) of one data file; ``whole`` is its content when it was read whole."""
    suffix = _suffix(blob.rel)
    if blob.rel.endswith(".gz"):
        return None, {}
    if suffix in _PARQUET_FORMATS:
        import pyarrow.parquet as pq

        try:
            with blob.open() as fh:
                meta = pq.ParquetFile(fh).metadata
                schema = digests.colspec(meta.schema.to_arrow_schema())
                return schema, {"num_rows": meta.num_rows, "num_elements": meta.num_rows * meta.num_columns}
        except Exception:  # noqa: BLE001 - not Parquet after all: no schema, no failure
            return None, {}
    if suffix in _TEXT_FORMATS or suffix in _JSON_FORMATS:
        if whole is not None:
            table = _parse_text(whole, suffix)
            return _table_facts(table) if table is not None else (None, {})
        head = blob.read(0, min(blob.size, digests.SAMPLE_BYTES))
        head = head[: head.rfind(b"\n") + 1] or head
        table = _parse_text(head, suffix)
        return (_table_facts(table)[0], {}) if table is not None else (None, {})
    return None, {}


def describe(uri: str) -> tuple[str, dict[str, Any] | None, dict[str, Any], str]:
    """(digest, schema, profile, canonical URI) of the data at a path or URI."""
    blobs, is_dir, canonical = list_blobs(uri)
    total = sum(b.size for b in blobs)
    full = total <= digests.full_hash_limit()
    profile: dict[str, Any] = {"size_bytes": total, "digest_method": digests.FULL if full else digests.SAMPLED}
    parquet_dir = is_dir and len(blobs) <= MAX_FOOTERS and all(_suffix(b.rel) in _PARQUET_FORMATS for b in blobs)
    entries = []
    schema: dict[str, Any] | None = None
    counts: list[int] | None = [0, 0]  # rows, elements
    for i, blob in enumerate(blobs):
        whole = None
        if full:
            needs_text = i == 0 and _suffix(blob.rel) not in _PARQUET_FORMATS
            whole = b"".join(blob.chunks()) if needs_text or not isinstance(blob, LocalBlob) else None
            digest, sha = digests.stream_digest([whole] if whole is not None else blob.chunks())
            if not is_dir:
                profile["sha256"] = sha
        else:
            digest, _ = digests.sampled_digest(blob.size, blob.read)
        entries.append((blob.rel, blob.size, digest))
        if i == 0 or parquet_dir:
            file_schema, facts = _file_facts(blob, whole)
            schema = schema or file_schema
            if "num_rows" not in facts:
                counts = None
            elif counts is not None:
                counts[0] += facts["num_rows"]
                counts[1] += facts["num_elements"]
    if counts is not None and (parquet_dir or not is_dir):
        profile["num_rows"], profile["num_elements"] = counts
    if is_dir:
        profile["num_files"] = len(blobs)
        return digests.tree_digest(entries), schema, profile, canonical
    return entries[0][2], schema, profile, canonical
