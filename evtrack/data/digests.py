"""Content digests of datasets, and their schemas in MLflow's column-spec form.

Every digest is the first 16 hex digits of a sha256 (MLflow caps digests at 36
characters). What is hashed depends on the kind of data:

- a file up to ``full_hash_limit()`` bytes (64 MiB by default,
  ``EVTRACK_DATASET_FULL_HASH_BYTES``): every byte, so the digest is the prefix of
  the file's ``sha256sum``;
- a larger file: a **sampled** hash of its size and three ``SAMPLE_BYTES`` chunks
  (head, middle, tail). It changes when the size or a sampled byte changes, and
  can miss an edit elsewhere that keeps the size: the profile says
  ``"digest_method": "sampled-sha256"`` so nobody mistakes it for a full hash;
- a directory or S3 prefix: the file digests with their relative paths;
- an Arrow table or pandas DataFrame: the Arrow IPC stream of its columns
  (schema metadata dropped, string/binary types widened, null slots zeroed and
  validity hashed apart), so the same values give the same digest in any
  process and however the table was chunked or built;
- a numpy array: dtype, shape and bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    import pyarrow as pa

DIGEST_CHARS = 16
SAMPLE_BYTES = 1 << 20
DEFAULT_FULL_HASH_LIMIT = 64 << 20
FULL_HASH_ENV = "EVTRACK_DATASET_FULL_HASH_BYTES"

FULL = "sha256"
SAMPLED = "sampled-sha256"
TABLE = "arrow-ipc-sha256"
ARRAY = "ndarray-sha256"


def full_hash_limit() -> int:
    """Files up to this many bytes are hashed whole; larger ones are sampled."""
    try:
        return int(os.environ.get(FULL_HASH_ENV, DEFAULT_FULL_HASH_LIMIT))
    except ValueError:
        return DEFAULT_FULL_HASH_LIMIT


def short(h: "hashlib._Hash") -> str:
    """The digest string of a finished hash."""
    return h.hexdigest()[:DIGEST_CHARS]


# -- files --------------------------------------------------------------------------------

ReadRange = Callable[[int, int], bytes]  # (offset, length) -> bytes


def sample_ranges(size: int, chunk: int = SAMPLE_BYTES) -> list[tuple[int, int]]:
    """The (offset, length) of the head, middle and tail chunks of a file of ``size`` bytes."""
    middle = max(0, size // 2 - chunk // 2)
    return [(0, chunk), (middle, chunk), (max(0, size - chunk), chunk)]


def sampled_digest(size: int, read: ReadRange) -> tuple[str, str]:
    """(digest, method) of a large file from its size and three sampled chunks."""
    h = hashlib.sha256(b"evtrack-sampled-v1\0" + struct.pack(">Q", size))
    for offset, length in sample_ranges(size):
        h.update(read(offset, min(length, size - offset)))
    return short(h), SAMPLED


def stream_digest(chunks: Iterable[bytes]) -> tuple[str, str]:
    """(digest, full sha256 hex) of a byte stream hashed whole."""
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return short(h), h.hexdigest()


def tree_digest(entries: Iterable[tuple[str, int, str]]) -> str:
    """The digest of a directory from its (relative path, size, digest) entries."""
    h = hashlib.sha256(b"evtrack-tree-v1\0")
    for path, size, digest in sorted(entries):
        h.update(f"{path}\0{size}\0{digest}\n".encode())
    return short(h)


# -- tables and arrays -------------------------------------------------------------------


class _HashSink(io.RawIOBase):
    """A write-only file object that feeds a hash (so a table is hashed without a copy)."""

    def __init__(self, h: "hashlib._Hash") -> None:
        self.h = h

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.h.update(data)
        return len(data)


def _widened(t: "pa.DataType") -> "pa.DataType":
    import pyarrow as pa

    if pa.types.is_string(t):
        return pa.large_string()
    if pa.types.is_binary(t):
        return pa.large_binary()
    return t


def _zero(t: "pa.DataType") -> Any:
    """A filler for null slots of type ``t``, or None when the type has none."""
    import pyarrow as pa

    try:
        if pa.types.is_large_string(t):
            return pa.scalar("", t)
        if pa.types.is_large_binary(t):
            return pa.scalar(b"", t)
        if pa.types.is_boolean(t):
            return pa.scalar(False)
        if pa.types.is_floating(t):
            return pa.scalar(0.0, pa.float64()).cast(t)
        if pa.types.is_integer(t) or pa.types.is_temporal(t) or pa.types.is_decimal(t):
            return pa.scalar(0, pa.int64()).cast(t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return None
    return None


def canonical_table(table: "pa.Table") -> "pa.Table":
    """The table as it is hashed: one chunk per column, widened types, no metadata, null slots
    filled with a zero and the validity as an extra column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names: list[str] = []
    columns: list[Any] = []
    for field, column in zip(table.schema, table.columns):
        wide = _widened(field.type)
        if wide != field.type:
            column = column.cast(wide)
        filler = _zero(wide) if column.null_count else None
        if filler is not None:
            names += [field.name, f"\0valid\0{field.name}"]
            columns += [pc.fill_null(column, filler), pc.is_valid(column)]
        else:
            names.append(field.name)
            columns.append(column)
    return pa.Table.from_arrays(columns, names=names).combine_chunks()


def table_digest(table: "pa.Table") -> str:
    """The content digest of an Arrow table (see the module docstring)."""
    import pyarrow as pa

    canon = canonical_table(table)
    h = hashlib.sha256(b"evtrack-table-v1\0")
    with pa.ipc.new_stream(_HashSink(h), canon.schema) as writer:
        for batch in canon.to_batches():
            writer.write_batch(batch)
    return short(h)


def array_digest(*arrays: Any) -> str:
    """The content digest of numpy arrays (dtype, shape and bytes of each; None skipped)."""
    import numpy as np

    h = hashlib.sha256(b"evtrack-ndarray-v1\0")
    for array in arrays:
        if array is None:
            h.update(b"\0none")
            continue
        a = np.ascontiguousarray(array)
        h.update(f"{a.dtype.str}|{a.shape}\0".encode())
        if a.dtype.hasobject:
            for item in a.ravel():
                h.update(repr(item).encode() + b"\0")
        else:
            h.update(memoryview(a).cast("B"))
    return short(h)


# -- schemas -----------------------------------------------------------------------------


def colspec_type(t: "pa.DataType") -> str:
    """MLflow's column type name for an Arrow type."""
    import pyarrow as pa

    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "long" if t.bit_width == 64 or pa.types.is_unsigned_integer(t) else "integer"
    if pa.types.is_float32(t) or pa.types.is_float16(t):
        return "float"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "double"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_temporal(t):
        return "datetime"
    return str(t)


def colspec(schema: "pa.Schema", required: Callable[[Any], bool] | None = None) -> dict[str, Any]:
    """A schema as MLflow writes a tabular dataset's: ``{"mlflow_colspec": [...]}``."""
    cols = []
    for i, field in enumerate(schema):
        is_required = required(i) if required is not None else not field.nullable
        cols.append({"type": colspec_type(field.type), "name": field.name, "required": bool(is_required)})
    return {"mlflow_colspec": cols}
