"""The search tables of one manifest version: runs by integer id, and one dense column per key.

Built in the engine's DuckDB database of a version, on the first search:

  s_runs(rid, run_id, experiment_id, xid, lifecycle_stage, active, deleted, run_name, user_id,
         status, start_time, end_time, artifact_uri)

holds every created run at row ``rid``, its position in MLflow's default order (start_time DESC,
run_id); ``xid`` is a small integer per experiment id. A searched ``(entity, key)`` gets, on first
use, a one-column table ``v`` with each run's value at the run's row (NULL when the run lacks the
key, or its tag is deleted): a filter or an order on the key is then a ``POSITIONAL JOIN``, a
column scan, rather than a semi-join over every param. The runs' info, params, tags and latest
metrics are kept as Arrow columns by rid (:class:`RunDocs`), so a page of results becomes ``Run``
entities without another query.

A fresh snapshot with a tail adds tables of its own: its folded tail-touched runs (rids after the
base's) and the base rids they replace; see :class:`TailRuns`.

Every method that touches the database expects the caller to hold the database's lock.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

KEY_TABLES = {"metric": "latest_metrics", "param": "params", "tag": "tags"}
ENTRY_TABLES = ("latest_metrics", "params", "tags")  # the order of RunDocs.entries
MAX_KEY_COLUMNS = 256  # dense columns per version; searches on further keys use semi-joins
MAX_KEY_CELLS = 32_000_000  # and at most this many values in them (runs x columns)
RUN_COLUMNS = (
    "rid",
    "run_id",
    "experiment_id",
    "xid",
    "lifecycle_stage",
    "active",
    "deleted",
    "run_name",
    "user_id",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
)
_INFO_COLUMNS = "run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage"


class RunDocs:
    """The ``RunInfo`` fields, latest metrics, params and live tags of the runs with rids
    ``first``, ``first + 1``, …: Arrow columns, turned into Python objects a run at a time when a
    search first returns it, then kept (a page of runs is then a few list lookups and dict copies)."""

    def __init__(self, info: "pa.Table", entries: "list[_Entries]", has_inputs: bool, first: int) -> None:
        self.first = first
        self.info = info
        self.size = info.num_rows
        self.entries = entries  # latest_metrics, params, tags
        self.has_inputs = has_inputs
        self._rows: list[tuple[tuple, dict, dict, dict] | None] = [None] * self.size
        self._points: list[dict[str, tuple[int, int]] | None] = [None] * self.size

    @classmethod
    def query(cls, con: "duckdb.DuckDBPyConnection", runs: str, tables: str, first: int) -> "RunDocs":
        """The documents of the runs in the search table ``runs``, from the tables ``<tables>_<name>``."""
        info = con.sql(f"SELECT {_INFO_COLUMNS} FROM {runs} ORDER BY rid").to_arrow_table().combine_chunks()
        entries = [
            _Entries.query(con, runs, f"{tables}_{name}", first, info.num_rows, points=name == "latest_metrics")
            for name in ENTRY_TABLES
        ]
        has_inputs = bool(con.execute(f"SELECT count(*) FROM {tables}_inputs").fetchall()[0][0])
        return cls(info, entries, has_inputs, first)

    @classmethod
    def of_tables(cls, runs: "pa.Table", tables: "dict[str, pa.Table]", first: int) -> "RunDocs":
        """The documents of the runs in ``runs`` (in their order), from their folded run tables:
        Arrow compute, no query (a snapshot's few tail runs)."""
        info = runs.select(_INFO_COLUMNS.split(", ")).combine_chunks()
        ids = info.column("run_id").combine_chunks()
        entries = [_Entries.of_runs(tables[name], ids, points=name == "latest_metrics") for name in ENTRY_TABLES]
        return cls(info, entries, tables["inputs"].num_rows > 0, first)

    def rows(self, positions: list[int]) -> list[tuple[tuple, dict, dict, dict]]:
        """(RunInfo fields, metrics, params, tags) of the runs at ``positions`` (rid - first).
        The dicts are shared: copy them before handing them out."""
        cache = self._rows
        missing = list(dict.fromkeys(p for p in positions if cache[p] is None))
        if missing:
            import pyarrow as pa

            taken = self.info.take(pa.array(missing, pa.int64()))
            info = zip(*(column.to_pylist() for column in taken.columns))
            metrics, params, tags = (entries.dicts(missing) for entries in self.entries)
            for p, row in zip(missing, zip(info, metrics, params, tags)):
                cache[p] = row
        return [cache[p] for p in positions]  # type: ignore[misc]

    def points(self, positions: list[int]) -> list[dict[str, tuple[int, int]]]:
        """``key -> (step, timestamp)`` of the latest metric values of the runs at ``positions``
        (kept once made, as ``rows``: shared, not to be changed)."""
        cache = self._points
        missing = list(dict.fromkeys(p for p in positions if cache[p] is None))
        if missing:
            for p, found in zip(missing, self.entries[0].dicts(missing, points=True)):
                cache[p] = found
        return [cache[p] for p in positions]  # type: ignore[misc]


class _Entries:
    """The ``key -> value`` entries of runs (a params, tags or latest_metrics table), sorted by rid:
    ``data`` has the columns key (dictionary-encoded), value (and step, timestamp for metrics);
    the entries of the run at position p are rows ``starts[p]:ends[p]``."""

    def __init__(self, data: "pa.Table", starts: list[int], ends: list[int]) -> None:
        keys = data.column("key").combine_chunks()
        self.data = data
        self._key_codes = keys.indices
        self._key_names = keys.dictionary.to_pylist()
        self._values = data.column("value")
        # a latest metric's step and timestamp (MLflow's REST answers carry them)
        self._points = (data.column("step"), data.column("timestamp")) if "step" in data.column_names else None
        self.starts, self.ends = starts, ends

    @classmethod
    def query(
        cls, con: "duckdb.DuckDBPyConnection", runs: str, table: str, first: int, n: int, points: bool = False
    ) -> "_Entries":
        """The entries of ``table`` for the runs of the search table ``runs`` (rids first … first + n - 1)."""
        extra = ", k.step, k.timestamp" if points else ""
        data = con.sql(
            f"SELECT s.rid, k.key, k.value{extra} FROM {table} k JOIN {runs} s USING (run_id) "
            "WHERE k.value IS NOT NULL ORDER BY s.rid, k.key"
        ).to_arrow_table()
        return cls.sorted(data, first, n, points)

    @classmethod
    def of_runs(cls, table: "pa.Table", run_ids: "pa.Array", points: bool = False) -> "_Entries":
        """The entries of ``table`` (rows with a run_id) for the runs ``run_ids``, at their positions."""
        import pyarrow.compute as pc

        table = table.combine_chunks()
        rid = pc.index_in(table.column("run_id").combine_chunks(), value_set=run_ids)
        keep = pc.and_(pc.is_valid(rid), pc.is_valid(table.column("value").combine_chunks()))
        columns = ["key", "value", "step", "timestamp"] if points else ["key", "value"]
        data = (
            table.select(columns)
            .append_column("rid", rid)
            .filter(keep)
            .sort_by([("rid", "ascending"), ("key", "ascending")])
        )
        return cls.sorted(data, 0, len(run_ids), points)

    @classmethod
    def sorted(cls, data: "pa.Table", first: int, n: int, points: bool) -> "_Entries":
        """From rows (rid, key, value[, step, timestamp]) sorted by rid and key."""
        import pyarrow as pa
        import pyarrow.compute as pc

        data = data.combine_chunks()
        starts, ends = [0] * n, [0] * n
        runs_of = pc.run_end_encode(data.column("rid")).combine_chunks()
        start = 0
        for rid, end in zip(runs_of.values.to_pylist(), runs_of.run_ends.to_pylist()):
            starts[rid - first], ends[rid - first] = start, end
            start = end
        keys = pc.dictionary_encode(data.column("key")).combine_chunks()
        columns = {"key": keys, "value": data.column("value")}
        if points:
            columns.update(step=data.column("step"), timestamp=data.column("timestamp"))
        return cls(pa.table(columns), starts, ends)

    def dicts(self, positions: list[int], points: bool = False) -> list[dict]:
        """One new ``key -> value`` dict per run position (``key -> (step, timestamp)`` with ``points``)."""
        import itertools

        import pyarrow as pa

        starts, ends = self.starts, self.ends
        rows: list[int] = []
        for p in positions:
            rows.extend(range(starts[p], ends[p]))
        if not rows:
            return [{} for _ in positions]
        taken = pa.array(rows, pa.int64())
        names = self._key_names
        keys = [names[c] for c in self._key_codes.take(taken).to_pylist()]
        if points:
            assert self._points is not None, "points of a table without them"
            steps, stamps = (column.take(taken).to_pylist() for column in self._points)
            entries = zip(keys, zip(steps, stamps))
        else:
            entries = zip(keys, self._values.take(taken).to_pylist())
        islice = itertools.islice
        return [dict(islice(entries, ends[p] - starts[p])) for p in positions]


def load_sorted(con: "duckdb.DuckDBPyConnection", name: str, parts: list["pa.Table"]) -> None:
    """A native table ``name`` of the rows of ``parts`` (tables of one schema), sorted by run_id:
    how the base run tables are loaded, in memory or into a snapshot file."""
    for i, data in enumerate(parts):
        con.register(f"_load{i}", data)
    union = " UNION ALL ".join(f"SELECT * FROM _load{i}" for i in range(len(parts)))
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM ({union}) ORDER BY run_id")
    for i in range(len(parts)):
        con.unregister(f"_load{i}")


def create_search_tables(con: "duckdb.DuckDBPyConnection") -> None:
    """``s_experiments`` and ``s_runs`` of the base tables (``base_runs``) in ``con``."""
    con.execute("""CREATE OR REPLACE TABLE s_experiments AS
                   SELECT (row_number() OVER (ORDER BY experiment_id) - 1)::INTEGER AS xid, experiment_id
                   FROM (SELECT DISTINCT experiment_id FROM base_runs WHERE created_ts >= 0)""")
    con.execute("""CREATE OR REPLACE TABLE s_runs AS
                   SELECT (row_number() OVER (ORDER BY r.start_time IS NULL, r.start_time DESC, r.run_id)
                           - 1)::INTEGER AS rid,
                          r.run_id, r.experiment_id, x.xid, r.lifecycle_stage,
                          r.lifecycle_stage = 'active' AS active, r.lifecycle_stage = 'deleted' AS deleted,
                          r.run_name, r.user_id, r.status, r.start_time, r.end_time, r.artifact_uri
                   FROM base_runs r LEFT JOIN s_experiments x USING (experiment_id)
                   WHERE r.created_ts >= 0 ORDER BY rid""")


class RunIndex:
    """The search tables and run documents of one manifest version (the base, without a tail)."""

    def __init__(self, con: "duckdb.DuckDBPyConnection", docs: RunDocs | None = None) -> None:
        """Over ``s_runs`` and ``s_experiments`` (made here from the base tables unless ``docs``,
        read from a snapshot file, says they exist already)."""
        if docs is None:
            create_search_tables(con)
        self.experiment_codes: dict[str, int] = dict(
            con.execute("SELECT experiment_id, xid FROM s_experiments").fetchall()
        )
        self.docs = docs if docs is not None else RunDocs.query(con, "s_runs", "base", 0)
        self.size = self.docs.size
        self._columns: dict[tuple[str, str], str | None] = {}
        self._order: tuple[list, list] | None = None

    def position(self, start_time: int | None, run_id: str) -> int:
        """How many base runs come before a run with this start_time and run_id in MLflow's
        default order (start_time DESC, missing last, then run_id)."""
        if self._order is None:
            self._order = (self.docs.info.column("start_time").to_pylist(), self.docs.info.column("run_id").to_pylist())
        starts, ids = self._order

        def key(i: int) -> tuple:
            return _order_key(starts[i], ids[i])

        return bisect.bisect_left(range(self.size), _order_key(start_time, run_id), key=key)

    def column(self, con: "duckdb.DuckDBPyConnection", entity: str, key: str) -> str | None:
        """The dense column table of ``entity.key`` (made on first use), or None past the caps."""
        name_key = (entity, key)
        if name_key in self._columns:
            return self._columns[name_key]
        name = None
        if len(self._columns) < min(MAX_KEY_COLUMNS, MAX_KEY_CELLS // max(self.size, 1)):
            name = f"s_key_{len(self._columns)}"
            con.execute(
                f"CREATE OR REPLACE TABLE {name} AS SELECT k.value AS v FROM s_runs r "
                f"LEFT JOIN (SELECT run_id, value FROM base_{KEY_TABLES[entity]} WHERE key = ?) k "
                "ON k.run_id = r.run_id ORDER BY r.rid",
                [key],
            )
            if con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] != self.size:  # a duplicate key row
                con.execute(f"DROP TABLE {name}")
                name = None
        self._columns[name_key] = name
        return name


def _order_key(start_time: int | None, run_id: str) -> tuple:
    return (start_time is None, -(start_time or 0), run_id)


class TailRuns:
    """The tail-touched runs of a fresh snapshot, as search rows after the base's.

    Registered under names of their own (``name``): ``name`` has the rows (the columns of
    ``s_runs`` plus ``pos, sub``), ``name_hidden`` the base rids they replace, ``name_params``,
    ``name_tags``, … the snapshot's folded tail tables. A tail run's place in the default order
    is ``(pos, sub)``: it comes after the ``pos`` first base runs (the base's own rows being
    ``(rid, 0)``), ``sub`` < 0 ordering the tail runs of one gap.
    """

    def __init__(
        self,
        con: "duckdb.DuckDBPyConnection",
        index: RunIndex,
        name: str,
        tables: "dict[str, pa.Table]",
        tail_ids: frozenset[str],
    ) -> None:
        import pyarrow as pa

        import pyarrow.compute as pc

        self.name = name
        keyed = sorted(set(KEY_TABLES.values()))  # the tables searches join (search_sql)
        self.tables = [name, f"{name}_hidden"] + [f"{name}_{t}" for t in keyed]
        for table in keyed:
            con.register(f"{name}_{table}", tables[table])
        created = tables["runs"].filter(pc.greater_equal(tables["runs"].column("created_ts"), 0))
        runs = created.take(  # MLflow's default order: start_time DESC (missing last), run_id
            pc.sort_indices(
                created.append_column("_missing", pc.is_null(created.column("start_time"))),
                sort_keys=[("_missing", "ascending"), ("start_time", "descending"), ("run_id", "ascending")],
            )
        )
        codes = dict(index.experiment_codes)
        for experiment_id in runs.column("experiment_id").to_pylist():
            codes.setdefault(experiment_id, len(codes))
        self.experiment_codes = codes
        stages = runs.column("lifecycle_stage").to_pylist()
        m = runs.num_rows
        place = [
            index.position(start, run_id)
            for start, run_id in zip(runs.column("start_time").to_pylist(), runs.column("run_id").to_pylist())
        ]
        con.register(
            name,
            pa.table(
                {
                    "rid": pa.array(range(index.size, index.size + m), pa.int32()),
                    "run_id": runs.column("run_id"),
                    "experiment_id": runs.column("experiment_id"),
                    "xid": pa.array([codes[e] for e in runs.column("experiment_id").to_pylist()], pa.int32()),
                    "lifecycle_stage": runs.column("lifecycle_stage"),
                    "active": pa.array([s == "active" for s in stages], pa.bool_()),
                    "deleted": pa.array([s == "deleted" for s in stages], pa.bool_()),
                    **{c: runs.column(c) for c in RUN_COLUMNS[7:]},
                    "pos": pa.array(place, pa.int32()),
                    "sub": pa.array(range(-m, 0), pa.int32()),
                }
            ),
        )
        base_ids = index.docs.info.column(
            "run_id"
        ).combine_chunks()  # (a chunked array of no chunks crashes indices_nonzero)
        replaced = pc.is_in(base_ids, value_set=pa.array(sorted(tail_ids), pa.string()))
        con.register(f"{name}_hidden", pa.table({"rid": pc.indices_nonzero(replaced).cast(pa.int32())}))
        self.docs = RunDocs.of_tables(runs, tables, index.size)
