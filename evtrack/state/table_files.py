"""Local access to the immutable Parquet files of a store, with a bounded cache.

On a local store the files are read in place. On S3 each file is downloaded once
into ``$EVTRACK_CACHE_DIR`` (default ``~/.cache/evtrack/tables``), keyed by its
path: files are never rewritten, so a cached copy is always valid. The cache is
trimmed to ``EVTRACK_CACHE_MAX_BYTES`` (default 2 GiB), least recently used first.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evtrack.store import LocalStore
from evtrack.store.base import ObjectStore

if TYPE_CHECKING:
    import pyarrow as pa

_lock = threading.Lock()


def cache_root() -> Path:
    """Where downloaded table files are kept."""
    env = os.environ.get("EVTRACK_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "evtrack" / "tables"


def max_cache_bytes() -> int:
    """``EVTRACK_CACHE_MAX_BYTES``: the size the cache is trimmed to."""
    try:
        return int(os.environ.get("EVTRACK_CACHE_MAX_BYTES", 2 << 30))
    except ValueError:
        return 2 << 30


def local_path(store: ObjectStore, key: str) -> str:
    """A local file holding the object ``key`` (the file itself on a local store)."""
    if isinstance(store, LocalStore):
        return os.path.join(store.root, *key.split("/"))
    digest = hashlib.sha256(store.uri.encode()).hexdigest()[:20]
    target = cache_root() / digest / key
    if target.exists():
        os.utime(target)
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{target.name}")
    store.get_file(key, str(tmp))
    os.replace(tmp, target)
    _trim()
    return str(target)


def _trim() -> None:
    with _lock:
        root = cache_root()
        files = [(p.stat().st_atime, p.stat().st_size, p) for p in root.rglob("*.parquet") if p.is_file()]
        total = sum(size for _, size, _ in files)
        limit = max_cache_bytes()
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= limit:
                break
            try:
                path.unlink()
                total -= size
            except OSError:
                pass


def read_table(store: ObjectStore, key: str, columns: list[str] | None = None, filters: Any = None) -> "pa.Table":
    """Read one Parquet file of the store, with optional projection and row filter: equalities
    ``[(column, "=", value), …]`` (all must hold; row groups whose statistics rule a value out
    are skipped), or a pyarrow expression. The equalities are read with
    ``pyarrow.parquet.ParquetFile``: ``pq.read_table`` goes through ``pyarrow.dataset``, whose
    import costs a quarter of a second (it imports pandas when installed)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = local_path(store, key)
    if filters is not None and not isinstance(filters, list):  # a pyarrow expression (gc's)
        return pq.read_table(path, columns=columns, filters=filters)
    source = pq.ParquetFile(path)
    if not filters:
        return source.read(columns=columns)
    for _, op, _ in filters:
        if op != "=":
            raise ValueError(f"read_table filters are equalities, got {op!r}")
    names = source.schema_arrow.names
    wanted = [name for name in (columns or names)]
    needed = list(dict.fromkeys(wanted + [column for column, _, _ in filters]))
    groups = [g for g in range(source.num_row_groups) if _may_hold(source.metadata.row_group(g), names, filters)]
    data = (
        source.read_row_groups(groups, columns=needed) if groups else source.schema_arrow.empty_table().select(needed)
    )
    mask = None
    for column, _, value in filters:
        test = pc.equal(data.column(column), value)
        mask = test if mask is None else pc.and_(mask, test)
    return data.filter(mask).select(wanted)


def _may_hold(group: Any, names: list[str], filters: list[tuple[str, str, Any]]) -> bool:
    """Whether a row group's min/max statistics allow every equality."""
    for column, _, value in filters:
        stats = group.column(names.index(column)).statistics
        if stats is not None and stats.has_min_max and not (stats.min <= value <= stats.max):
            return False
    return True


def read_files(
    store: ObjectStore, keys: list[str], schema: "pa.Schema", columns: list[str] | None = None, filters: Any = None
) -> "pa.Table":
    """Read and concatenate several Parquet files of one table."""
    import pyarrow as pa

    if not keys:
        empty = schema if columns is None else pa.schema([schema.field(c) for c in columns])
        return empty.empty_table()
    parts = [read_table(store, k, columns, filters) for k in keys]
    return pa.concat_tables(parts, promote_options="default")
