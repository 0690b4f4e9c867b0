"""Search snapshots kept on disk: a manifest version's run tables and search index, built once per machine.

The first search of a version loads the run-keyed tables into DuckDB, sorts them and builds the
search index (``evtrack.query.run_index``): about a second on 100,000 runs. A version's files never
change, so for a store of at least ``EVTRACK_SNAPSHOT_MIN_RUNS`` runs (default 10,000; 0 = every
store) the first process to search it writes that work to a directory beside the cache of
immutable table files, and every later process (a notebook, a CLI call, a server worker) attaches
it read-only instead of building it again:

  <cache>/<store digest>/snapshots/<version:020d>-<content key>/
      db.duckdb        base_<run table> sorted by run_id, s_runs, s_experiments
      <name>.arrow     the run documents (RunDocs), Arrow IPC files read memory-mapped
      meta.json        written last: format, version, content key, run count

``<cache>`` is ``EVTRACK_CACHE_DIR`` (``evtrack.state.table_files.cache_root``). The content key
hashes the version's run-table files and the library versions that wrote it, so a store rebuilt at
the same URI, or a DuckDB upgrade, never reads a stale snapshot. A directory is built under a
temporary name and renamed into place, so a reader sees a whole snapshot or none; concurrent
builders race harmlessly (the loser drops its copy). The newest ``KEEP`` snapshots of a store are
kept. A snapshot that cannot be written (a read-only cache) or read (damaged) is skipped with a
warning: the search then builds its index in memory, as it does for small stores.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import orjson

from evtrack.errors import InvalidParameterError
from evtrack.version import __version__
from evtrack.query.run_index import ENTRY_TABLES, RunDocs, _Entries, create_search_tables, load_sorted
from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.state.table_files import cache_root, max_cache_bytes
from evtrack.store.base import ObjectStore

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

log = logging.getLogger(__name__)

FORMAT = 1  # bump on any change to what a snapshot holds (create_search_tables, RunDocs, the files)
KEEP = 2  # snapshots kept per store (the newest versions)
DEFAULT_MIN_RUNS = 10_000
DB_FILE = "db.duckdb"
META_FILE = "meta.json"
SEARCH_TABLES = ("s_runs", "s_experiments")
TMP_PREFIX = ".tmp-"


def min_runs() -> int:
    """``EVTRACK_SNAPSHOT_MIN_RUNS``: the smallest store (in runs) whose snapshots are kept on disk."""
    raw = os.environ.get("EVTRACK_SNAPSHOT_MIN_RUNS", "").strip()
    if not raw:
        return DEFAULT_MIN_RUNS
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameterError(f"EVTRACK_SNAPSHOT_MIN_RUNS={raw!r} is not a whole number of runs") from None
    if value < 0:
        raise InvalidParameterError(f"EVTRACK_SNAPSHOT_MIN_RUNS must be 0 (every store) or more, got {raw}")
    return value


def run_count(manifest: mf.Manifest) -> int:
    """Rows of the version's runs table (created runs, placeholders of early events included)."""
    return sum(int(f.get("rows") or 0) for f in manifest.files("runs"))


def location(store: ObjectStore, manifest: mf.Manifest) -> Path:
    """The directory of this version's snapshot (whether or not it exists)."""
    import duckdb
    import pyarrow as pa

    files = sorted(f["path"] for name in tables.RUN_TABLES for f in manifest.files(name))
    key = hashlib.sha256(
        orjson.dumps([FORMAT, __version__, duckdb.__version__, pa.__version__, tables.SCHEMA_VERSIONS, files])
    ).hexdigest()[:16]
    return _store_dir(store) / f"{manifest.version:020d}-{key}"


def _store_dir(store: ObjectStore) -> Path:
    return cache_root() / hashlib.sha256(store.uri.encode()).hexdigest()[:20] / "snapshots"


def usable(
    store: ObjectStore, manifest: mf.Manifest, load_run_tables: Callable[[], dict[str, "pa.Table"]]
) -> Path | None:
    """The snapshot directory of ``manifest`` — built now from ``load_run_tables()`` when missing —
    or None when the store is too small to keep one, or it cannot be written."""
    if not manifest.version or run_count(manifest) < min_runs():
        return None
    target = location(store, manifest)
    if (target / META_FILE).exists():
        try:
            os.utime(target)  # recently used: trimmed last
        except OSError:
            pass
        return target
    newer = _snapshots_of(target.parent)[-KEEP:]
    if len(newer) == KEEP and target.name < newer[0].name:
        return None  # an old version (a time-travel read): it would be trimmed at once
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _build(target, load_run_tables)
    except Exception as exc:  # noqa: BLE001 - any failure to write leaves the in-memory build
        log.warning("evtrack: could not keep a search snapshot in %s (%s); searching without it", target, exc)
        return None
    _trim(target.parent, target)
    return target


def is_damage(exc: BaseException) -> bool:
    """Whether a DuckDB error says a database file is damaged."""
    text = str(exc).lower()
    return "corrupt" in text or "checksum" in text


def discard(path: Path, why: BaseException) -> None:
    """Drop a snapshot that could not be read, so the next process builds it again."""
    log.warning("evtrack: the search snapshot in %s cannot be read (%s); it is removed and built again", path, why)
    shutil.rmtree(path, ignore_errors=True)


def _build(target: Path, load_run_tables: Callable[[], dict[str, "pa.Table"]]) -> None:
    import duckdb

    from evtrack.query.limits import apply_database_settings

    tmp = target.with_name(f"{TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{target.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        run_tables = load_run_tables()
        con = duckdb.connect(str(tmp / DB_FILE))
        try:
            apply_database_settings(con)
            con.execute("SET preserve_insertion_order = true")
            for name in tables.RUN_TABLES:
                load_sorted(con, f"base_{name}", [run_tables[name]])
            create_search_tables(con)
            docs = RunDocs.query(con, "s_runs", "base", 0)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        _write_docs(tmp, docs)
        sizes = {p.name: p.stat().st_size for p in tmp.iterdir()}
        meta = {"format": FORMAT, "version": int(target.name.split("-")[0]), "runs": docs.size, "sizes": sizes}
        (tmp / META_FILE).write_bytes(orjson.dumps(meta))
        _sync(tmp)  # whole on disk before its name says so (a power cut leaves no zero-filled files)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / META_FILE).exists():  # not a concurrent builder's whole copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sync(directory: Path) -> None:
    """fsync every file of ``directory``, then the directory."""
    for path in directory.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_docs(directory: Path, docs: RunDocs) -> None:
    import pyarrow as pa

    _write_ipc(directory / "info.arrow", docs.info)
    _write_ipc(directory / "flags.arrow", pa.table({"has_inputs": [docs.has_inputs]}))
    for name, entries in zip(ENTRY_TABLES, docs.entries):
        _write_ipc(directory / f"{name}.arrow", entries.data)
        offsets = pa.table({"start": pa.array(entries.starts, pa.int64()), "end": pa.array(entries.ends, pa.int64())})
        _write_ipc(directory / f"{name}.offsets.arrow", offsets)


def _write_ipc(path: Path, table: "pa.Table") -> None:
    import pyarrow as pa

    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read_ipc(path: Path) -> "pa.Table":
    import pyarrow as pa

    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


def attach(con: "duckdb.DuckDBPyConnection", path: Path) -> RunDocs:
    """Attach the snapshot at ``path`` to ``con`` read-only, with views ``base_<run table>``,
    ``s_runs`` and ``s_experiments`` over it; the run documents, memory-mapped."""
    meta = orjson.loads((path / META_FILE).read_bytes())
    if meta.get("format") != FORMAT:
        raise ValueError(f"snapshot format {meta.get('format')!r}, expected {FORMAT}")
    for name, size in meta.get("sizes", {}).items():
        if (path / name).stat().st_size != size:
            raise ValueError(f"{name} has {(path / name).stat().st_size} bytes, {size} were written")
    db = str(path / DB_FILE).replace("'", "''")
    con.execute(f"ATTACH '{db}' AS snap (READ_ONLY)")
    for name in [f"base_{t}" for t in tables.RUN_TABLES] + list(SEARCH_TABLES):
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM snap.{name}")
    info = _read_ipc(path / "info.arrow")
    entries = []
    for name in ENTRY_TABLES:
        offsets = _read_ipc(path / f"{name}.offsets.arrow")
        starts, ends = offsets.column("start").to_pylist(), offsets.column("end").to_pylist()
        if len(starts) != info.num_rows:
            raise ValueError(f"{name} offsets cover {len(starts)} runs, the snapshot has {info.num_rows}")
        entries.append(_Entries(_read_ipc(path / f"{name}.arrow"), starts, ends))
    has_inputs = bool(_read_ipc(path / "flags.arrow").column("has_inputs")[0].as_py())
    if info.num_rows != meta.get("runs"):
        raise ValueError(f"the snapshot lists {info.num_rows} runs, its meta.json {meta.get('runs')}")
    return RunDocs(info, entries, has_inputs, 0)


def _snapshots_of(directory: Path) -> list[Path]:
    """A store's whole snapshots, oldest version first."""
    try:
        return sorted(p for p in directory.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError:
        return []


def _trim(directory: Path, built: Path) -> None:
    """Keep the newest ``KEEP`` snapshots of a store, and every store's together within
    ``EVTRACK_CACHE_MAX_BYTES``, least recently used first, never the one just ``built`` (an
    open snapshot stays readable: its files are unlinked, not overwritten); the temporary
    directories of builders that died an hour ago or more go too."""
    for old in _snapshots_of(directory)[:-KEEP]:
        if old != built:
            shutil.rmtree(old, ignore_errors=True)
    kept = []
    cutoff = time.time() - 3600
    for path in cache_root().glob("*/snapshots/*"):
        try:
            if path.name.startswith(TMP_PREFIX):
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
            elif not path.name.startswith("."):
                kept.append((path.stat().st_mtime, sum(f.stat().st_size for f in path.iterdir()), path))
        except OSError:  # removed meanwhile
            continue
    total, limit = sum(size for _, size, _ in kept), max_cache_bytes()
    for _, size, path in sorted(kept, key=lambda k: k[0]):
        if total <= limit:
            break
        if path != built:
            shutil.rmtree(path, ignore_errors=True)
            total -= size
