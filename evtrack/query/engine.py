"""The query engine: DuckDB over one manifest's tables, with the inbox tail folded on top.

A :class:`Snapshot` is an in-memory DuckDB database whose views are the
documented tables. The run-keyed state tables are DuckDB tables (loaded here, or
attached from the version's snapshot file: ``evtrack.query.snapshot_file``), the
other state tables Arrow tables (cached per version); the append-only ``metrics``
and ``events`` tables are views scanning the cached Parquet files with DuckDB's
reader (projection and filter pushdown), the only files the locked database may read. The tail (inbox segments the manifest does not
cover) is folded with the compactor's fold onto the compacted rows of the runs
it touches, and those runs' rows replace theirs in the views — a tail status
change or newer metric point overrides the compacted one.

Once built, the connection is locked: no file, network or database access,
no configuration changes. Search SQL is rendered with bound parameters only, over
search tables the first search of a version adds to its database (``evtrack.query.run_index``:
runs by integer id in MLflow's default order, one dense column per searched key).

Views (columns):
  experiments(experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
  experiment_tags(experiment_id, key, value)
  runs(run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri,
       lifecycle_stage, parent_run_id)
  params(run_id, key, value)   tags(run_id, key, value)
  metrics(run_id, key, value, step, timestamp)          -- full history, exact duplicates once
  latest_metrics(run_id, key, value, step, timestamp)   -- MLflow's latest value per key
  artifacts(run_id, path, size, digest)                 -- files not deleted since their upload
  inputs(run_id, name, digest, context, source_type, source, schema, profile, tags)
                                                        -- datasets used by runs; alias: datasets
  events(eid, type, v, ts, experiment_id, run_id, key, value, metric_value, step, timestamp, body)
  registered_models(name, creation_timestamp, last_updated_timestamp, description, model_id)
  registered_model_tags(name, key, value)   registered_model_aliases(name, alias, version)
  model_versions(name, version, creation_timestamp, last_updated_timestamp, current_stage, description,
                 source, run_id, run_link, status, status_message, user_id, model_id)
  model_version_tags(name, version, key, value)          -- live models and versions only
  logged_model_metrics(model_id, run_id, experiment_id, key, value, step, timestamp, dataset_name,
                       dataset_digest)                  -- MLflow 3: metric points of logged models
  model_inputs(run_id, model_id)   model_outputs(run_id, model_id, step)
  runs_wide: runs plus one column per param ("params.<key>"), latest metric ("metrics.<key>")
             and tag ("tags.<key>")
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import TYPE_CHECKING, Any

from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.state.domains import domains
from evtrack.state.fold import RUN_KEYED, State
from evtrack.query import view_sql
from evtrack.query.run_index import RunDocs, RunIndex, TailRuns, load_sorted
from evtrack.query import snapshot_file
from evtrack.state.table_files import local_path, read_files

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from evtrack.read.backend import Backend

# On a store of up to MERGE_MAX_RUNS runs, a fresh snapshot with a tail that is taken MERGE_AFTER
# times (searches with no write between them) is rebuilt over a database of its own in which the
# tail is merged: later searches scan one set of tables. A snapshot used once is never merged, so a
# search after each write costs no more.
MERGE_MAX_RUNS = 5_000
MERGE_AFTER = 3


class Database:
    """The locked DuckDB database of one manifest version, and its search index (made on first use)."""

    def __init__(
        self, version: int, con: "duckdb.DuckDBPyConnection", docs: RunDocs | None = None, path: Any = None
    ) -> None:
        self.version = version
        self.con = con
        self.path = path  # the snapshot directory attached, if any
        self._docs = docs  # the run documents of a snapshot file (its search tables exist already)
        self.lock = threading.Lock()  # shared by every snapshot of this database
        self._index: RunIndex | None = None
        self._serial = itertools.count()
        self._retired: list[str] = []  # tables of tail runs no snapshot uses any more
        self.registered: dict[str, Any] = {}  # what each registered name holds now
        self.view_mode: tuple[bool, bool] | None = None  # (separate tail, fresh) of the all_* views
        self.wide_of: int | None = None  # the serial of the snapshot runs_wide was made for

    def serial(self) -> int:
        """A number no other snapshot of this database has."""
        return next(self._serial)

    def index(self) -> RunIndex:
        """The search tables and run documents of the version (the caller holds ``lock``)."""
        if self._index is None:
            self._index = RunIndex(self.con, self._docs)
            self._docs = None
        while self._retired:
            import duckdb

            try:
                self.con.unregister(self._retired.pop())
            except duckdb.Error:  # already gone
                pass
        return self._index

    def tail_runs(self, index: RunIndex, tables: dict[str, "pa.Table"], tail_ids: frozenset[str]) -> TailRuns:
        """A snapshot's tail runs, in tables of their own (the caller holds ``lock``); they are
        dropped once the returned object is garbage."""
        tail = TailRuns(self.con, index, f"s_tail_{self.serial()}", tables, tail_ids)
        weakref.finalize(tail, self._retired.extend, tail.tables)  # no lock here: dropped by index()
        return tail


class Snapshot:
    """One locked DuckDB connection over a manifest version (and, when fresh, the tail)."""

    def __init__(
        self,
        db: Database,
        tail_runs: int,
        tail_ids: frozenset[str] = frozenset(),
        tail_tables: dict[str, "pa.Table"] | None = None,
        registered: dict[str, Any] | None = None,
    ) -> None:
        self.con = db.con
        self.version = db.version
        self.tail_runs = tail_runs
        self.lock = db.lock
        self.tail_ids = tail_ids
        self._db = db
        self._tail_tables = tail_tables or {}
        self._tail: TailRuns | None = None
        self._deleted_experiments: set[str] | None = None
        self._registered = registered or {}
        self.serial = db.serial()

    def cursor(self) -> "duckdb.DuckDBPyConnection":
        """A connection of its own to the snapshot's database, seeing the same views (for free SQL:
        it runs without ``lock``, so a long query does not hold up searches)."""
        cursor = self.con.cursor()
        for name, data in self._registered.items():
            cursor.register(name, data)
        with self.lock:
            if self._db.wide_of != self.serial:  # made on demand (searches never use it), from this snapshot's keys
                view_sql.create_wide(cursor)
                self._db.wide_of = self.serial
        return cursor

    def search_scope(self) -> tuple[RunIndex, TailRuns | None]:
        """The version's search index and this snapshot's tail runs, if any (the caller holds ``lock``)."""
        index = self._db.index()
        if self.tail_ids and self._tail is None:
            self._tail = self._db.tail_runs(index, self._tail_tables, self.tail_ids)
        return index, self._tail

    def deleted_experiments(self) -> set[str]:
        """Ids of experiments in the deleted stage (their runs count as deleted)."""
        if self._deleted_experiments is None:
            self._deleted_experiments = {
                r[0] for r in self.rows("SELECT experiment_id FROM base_experiments WHERE lifecycle_stage = 'deleted'")
            }
        return self._deleted_experiments

    def execute(self, sql: str, params: list[Any] | None = None) -> "duckdb.DuckDBPyConnection":
        """Run one statement (the caller holds no other cursor)."""
        return self.con.execute(sql, params or [])

    def arrow(self, sql: str, params: list[Any] | None = None) -> "pa.Table":
        """A query's result as an Arrow table."""
        with self.lock:
            return self.con.sql(sql, params=params or None).to_arrow_table()

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """A query's result as tuples."""
        with self.lock:
            return self.con.execute(sql, params or []).fetchall()


class QueryEngine:
    """Builds and caches snapshots for one backend (store + reader)."""

    def __init__(self, backend: "Backend") -> None:
        self.backend = backend
        self._base: dict[int, dict[str, Any]] = {}
        self._db: Database | None = None
        self._snapshots: dict[tuple, list] = {}  # key -> [snapshot, times taken]
        self._lock = threading.Lock()

    # -- base tables of a version ------------------------------------------------

    def _base_tables(self, manifest: mf.Manifest) -> dict[str, Any]:
        """The version's state tables other than the run-keyed and append-only ones (those are
        DuckDB's, see ``_connection``)."""
        cached = self._base.get(manifest.version)
        if cached is not None:
            return cached
        store = self.backend.store
        base: dict[str, Any] = {}
        for name in tables.state_tables():
            if name not in tables.RUN_TABLES:
                base[name] = read_files(store, [f["path"] for f in manifest.files(name)], tables.schema(name))
        self._base = {manifest.version: base}  # keep only the newest version's base in memory
        return base

    def _run_tables(self, manifest: mf.Manifest) -> dict[str, "pa.Table"]:
        """The version's run-keyed state tables, read whole."""
        store = self.backend.store
        return {
            name: read_files(store, [f["path"] for f in manifest.files(name)], tables.schema(name))
            for name in tables.RUN_TABLES
        }

    # -- tail ----------------------------------------------------------------------

    @staticmethod
    def _base_rows(con: "duckdb.DuckDBPyConnection", run_ids: list[str]) -> dict[str, "pa.Table"]:
        """The compacted rows of some runs, from the database's run tables."""
        return {
            name: con.sql(
                f"SELECT * FROM base_{name} WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", params=[run_ids]
            ).to_arrow_table()
            for name in tables.RUN_TABLES
        }

    def _tail(
        self, con: "duckdb.DuckDBPyConnection", version: int
    ) -> tuple[dict[str, "pa.Table"], "pa.Table", dict[str, "pa.Table"] | None]:
        """(run tables of tail-touched runs, tail metric points, experiment tables or None)."""

        reader = self.backend.reader
        run_ids = reader.tail_run_ids()
        merged = State()
        for rid, st in zip(run_ids, reader.runs(run_ids, lambda ids: self._base_rows(con, ids), version)):
            for attr in RUN_KEYED:
                src = getattr(st, attr)
                if rid in src:
                    getattr(merged, attr)[rid] = src[rid]
        run_rows = tables.run_tables(merged, run_ids)
        tail_points = reader.tail_points.table()
        exp_rows = tables.experiment_tables(reader.experiments()) if reader.tail_experiments else None
        return run_rows, tail_points, exp_rows

    # -- snapshots -------------------------------------------------------------------

    def snapshot(self, version: int | None = None, fresh: bool = True) -> Snapshot:
        """A snapshot of the newest version with the tail (default), or of ``version`` without it."""
        backend = self.backend
        if version is None:
            if fresh:
                backend.refresh()
            else:
                backend.reader.refresh()
            manifest = backend.reader.manifest
        else:
            manifest = mf.load(backend.store, version)
            fresh = False
        with self._lock:
            key = (manifest.version, fresh, len(backend.reader._folded) if fresh else 0)
            entry = self._snapshots.get(key)
            if entry is None:
                import duckdb

                try:
                    snap = self._build(manifest, fresh)
                except duckdb.Error as exc:
                    if self._db is None or not self._forget_damaged(self._db, exc):
                        raise
                    snap = self._build(manifest, fresh)  # again, without the damaged file
                self._snapshots = {key: [snap, 1]}
                return snap
            snap, entry[1] = entry[0], entry[1] + 1
            if (
                entry[1] == MERGE_AFTER
                and snap.tail_ids
                and snapshot_file.run_count(manifest) + len(snap.tail_ids) <= MERGE_MAX_RUNS
            ):
                snap = entry[0] = self._merge(manifest, snap)
            return snap

    def _connection(self, manifest: mf.Manifest) -> Database:
        """One locked DuckDB database per manifest version, with the run-keyed tables as native
        DuckDB tables sorted by run_id: every search joins them, and native scans and joins are
        much faster than over registered Arrow. They come from the version's snapshot file when
        the store keeps one (``evtrack.query.snapshot_file``), else they are loaded here, in
        memory. Tail snapshots reuse the database."""
        if self._db is not None and self._db.version == manifest.version:
            return self._db
        import duckdb

        from evtrack.query.limits import apply_database_settings

        con = duckdb.connect(":memory:")
        apply_database_settings(con)
        docs = None
        path = snapshot_file.usable(self.backend.store, manifest, lambda: self._run_tables(manifest))
        if path is not None:
            try:
                docs = snapshot_file.attach(con, path)
            except (duckdb.Error, OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                snapshot_file.discard(path, exc)
                con.close()
                con = duckdb.connect(":memory:")
                apply_database_settings(con)
        if docs is None:
            for name, data in self._run_tables(manifest).items():
                load_sorted(con, f"base_{name}", [data])
        self._lock_down(con, manifest)
        self._db = Database(manifest.version, con, docs, path if docs is not None else None)
        return self._db

    def drop_damaged(self, snap: Snapshot, exc: Exception) -> bool:
        """When ``exc`` is DuckDB finding the snapshot file behind ``snap`` damaged (its block
        checksums are checked as blocks are read, not when it is attached): remove the file and
        forget its database, so the next snapshot is built again; whether it was that."""
        with self._lock:
            return self._forget_damaged(snap._db, exc)

    def _forget_damaged(self, db: Database, exc: Exception) -> bool:
        if db.path is None or not snapshot_file.is_damage(exc):
            return False
        snapshot_file.discard(db.path, exc)
        if self._db is db:
            self._db, self._snapshots = None, {}
        return True

    def _merged(self, db: Database, manifest: mf.Manifest, run_rows: dict[str, "pa.Table"], ids: list[str]) -> Database:
        """A database of this snapshot alone, whose run tables are the version's with the tail
        runs' rows replaced by their folded ones: on a small store, searches then scan one set of
        native tables instead of the base's plus the tail's (a third of a search's time at 600
        runs). Building it costs a copy of the run tables, bounded by ``MERGE_MAX_RUNS``."""
        import duckdb

        from evtrack.query.limits import apply_database_settings

        with db.lock:
            kept = {
                name: db.con.sql(
                    f"SELECT * FROM base_{name} WHERE run_id NOT IN (SELECT unnest(?::VARCHAR[]))", params=[ids]
                ).to_arrow_table()
                for name in tables.RUN_TABLES
            }
        con = duckdb.connect(":memory:")
        apply_database_settings(con)
        for name in tables.RUN_TABLES:
            load_sorted(con, f"base_{name}", [kept[name], run_rows[name]])
        self._lock_down(con, manifest)
        return Database(manifest.version, con)

    def _lock_down(self, con: "duckdb.DuckDBPyConnection", manifest: mf.Manifest) -> None:
        """The append-only tables' views, then the settings that hold from here on: no file,
        network or configuration access but the version's own files."""
        allowed = self._append_tables(con, manifest)
        con.execute("SET preserve_insertion_order = true")  # searches rely on it (see run_index)
        con.execute(f"SET allowed_paths = [{', '.join(allowed)}]")  # the only files left readable
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")

    def _append_tables(self, con: "duckdb.DuckDBPyConnection", manifest: mf.Manifest) -> list[str]:
        """Views ``base_metrics`` and ``base_events`` scanning the version's Parquet files (cached
        locally) with DuckDB's reader, projection and filters pushed down; the files, as SQL strings."""
        allowed = []
        for name in tables.APPEND_TABLES:
            files = [local_path(self.backend.store, f["path"]) for f in manifest.files(name)]
            if files:
                patterns = [view_sql.sql_string(_glob_literal(path)) for path in files]
                con.execute(
                    f"CREATE VIEW base_{name} AS SELECT * FROM read_parquet([{', '.join(patterns)}], union_by_name = true)"
                )
                allowed += sorted({view_sql.sql_string(path) for path in files} | set(patterns))
            else:
                con.register("_load", tables.schema(name).empty_table())
                con.execute(f"CREATE TABLE base_{name} AS SELECT * FROM _load")
                con.unregister("_load")
        return allowed

    def _build(self, manifest: mf.Manifest, fresh: bool) -> Snapshot:
        import pyarrow as pa

        items = {f"base_{name}": data for name, data in self._base_tables(manifest).items()}
        db = self._connection(manifest)
        tail_count, tail_ids, run_rows = 0, frozenset[str](), None
        if fresh:
            with db.lock:
                run_rows, points, exp_rows = self._tail(db.con, db.version)
            tail_count = run_rows["runs"].num_rows
            tail_ids = frozenset(set().union(*(data.column("run_id").to_pylist() for data in run_rows.values())))
            if tail_ids:
                items.update({f"tail_{name}": data for name, data in run_rows.items()})
                items["tail_ids"] = pa.table({"run_id": pa.array(sorted(tail_ids), pa.string())})
            items["tail_metrics"] = points
            if exp_rows is not None:
                for name, data in exp_rows.items():
                    items[f"base_{name}"] = data  # the folded experiments replace the table
            for domain in domains():
                if self.backend.reader.tail_domains.get(domain.name):
                    for name, data in domain.to_tables(self.backend.reader.domain(domain.name)).items():
                        items[f"base_{name}"] = data  # so does a folded domain (the registry)
        return self._assemble(db, items, fresh, tail_count, tail_ids, run_rows)

    def _merge(self, manifest: mf.Manifest, snap: Snapshot) -> Snapshot:
        """``snap`` (fresh, with tail tables) again, over a database of its own in which the tail
        runs' rows replace the base's (see ``_merged``)."""
        assert snap._tail_tables is not None, "a snapshot without tail tables"
        db = self._merged(snap._db, manifest, snap._tail_tables, sorted(snap.tail_ids))
        tail_names = {f"tail_{name}" for name in tables.RUN_TABLES} | {"tail_ids"}
        items = {name: data for name, data in snap._registered.items() if name not in tail_names}
        return self._assemble(db, items, True, snap.tail_runs, frozenset(), None)

    def _assemble(
        self,
        db: Database,
        items: dict[str, Any],
        fresh: bool,
        tail_count: int,
        tail_ids: frozenset[str],
        run_rows: dict[str, "pa.Table"] | None,
    ) -> Snapshot:
        """A snapshot over ``db`` with ``items`` registered (the tables the views read by name;
        those already registered stay) and the views of its kind made, if the last were not."""
        con = db.con
        separate_tail = bool(tail_ids)  # the tail's runs in tables of their own
        with db.lock:
            for name, data in items.items():
                if db.registered.get(name) is not data:
                    con.register(name, data)
                    db.registered[name] = data
            if db.view_mode != (separate_tail, fresh):  # views name tables, bound when queried
                view_sql.create_all_views(con, separate_tail, fresh)
                if db.view_mode is None:
                    view_sql.create_views(con)
                db.view_mode = (separate_tail, fresh)
        if separate_tail:
            return Snapshot(db, tail_count, tail_ids, run_rows, items)
        return Snapshot(db, tail_count, registered=items)


def _glob_literal(path: str) -> str:
    """A DuckDB file pattern matching exactly ``path`` (its glob characters in brackets)."""
    return "".join(f"[{c}]" if c in "*?[{" else c for c in path)
