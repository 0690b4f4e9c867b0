"""Loading and rewriting the state partitions a compaction touches.

A ``PartitionedState`` starts empty and notes each run partition (one bucket of
all the run tables) that new events touch; it loads the experiment tables or a
feature domain's tables (the registry's) the first time an event needs them. At
the end it writes those partitions again, one partition at a time, and in each only
the tables that new rows or events change: the others keep their files.

Run events, params, tags and latest metric values are folded column-wise
(``compaction.run_fold``, ``compaction.kv_fold``): the new rows arrive as Arrow
tables (``add_runs``, ``add_kv``, ``add_latest``), are split by partition at once,
and each partition's rows are folded with its compacted rows when it is written,
so only the partitions in flight are held whole. The other run events (artifacts,
dataset inputs) are few and go through the per-event fold (``evtrack.state.fold``)
on the partition's compacted artifacts and inputs; anything folded that way into
runs, params, tags or metrics (``rebuild`` of a store written by older code, tests)
joins the columnar fold as compacted rows do.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from evtrack.state import tables
from evtrack.state.domains import Domain, domain_of, domains
from evtrack.state.fold import RUN_KEYED, ParamConflict, State
from evtrack.state.manifest import Manifest
from evtrack.store.base import ObjectStore
from evtrack.state.table_files import read_files

from compaction import kv_fold, run_fold
from compaction.files import WrittenFile, write_table
from compaction.spill import PartitionRows

_COLUMNAR = ("runs", "params", "tags", "latest_metrics")  # folded column-wise
_PER_EVENT = ("artifacts", "inputs")  # loaded into the fold state when an event of the partition folds one by one


def _pending_schema(name: str) -> Any:
    """The schema new rows of a columnar table are kept in (one per table, for the spill files)."""
    if name == "runs":
        return run_fold.run_schema().remove(run_fold.RUN_COLUMNS.index("body"))
    return tables.schema(name)


class PartitionedState:
    """The fold state of the partitions touched so far, on top of a manifest."""

    def __init__(self, store: ObjectStore, base: Manifest) -> None:
        self.store, self.base = store, base
        self.state = State()
        self.partitions: set[str] = set()  # touched by new rows or events
        self._per_event: set[str] = set()  # of those, the ones an event folds into one by one
        self.experiments_loaded = False
        self.domains_loaded: set[str] = set()  # the feature domains (the registry) loaded
        self._seen_runs: set[str] = set()  # runs whose partition is touched (per-event path)
        self._partitions: dict[str, str] = {}  # run_id -> its partition, for the runs of the new rows
        self.pending = PartitionRows()  # the new rows of the columnar tables, until each partition is folded

    def _base_files(self, name: str, partition: str) -> list[str]:
        return [f["path"] for f in self.base.files(name) if f.get("partition") == partition]

    def _load(self, names: tuple[str, ...], partition: str) -> None:
        loaded: dict[str, Any] = {}
        for name in names:
            keys = self._base_files(name, partition)
            if keys:
                loaded[name] = read_files(self.store, keys, tables.schema(name))
        tables.load_state(loaded, self.state)

    def _partition_of(self, run_id: str) -> str:
        part = self._partitions.get(run_id)
        if part is None:
            part = self._partitions[run_id] = tables.partition_of(run_id)
        return part

    def _touch(self, part: str, per_event: bool = False) -> None:
        """Note a partition new rows go to; ``per_event``: an event folds into its fold state
        (its artifacts and inputs are loaded first, and written again)."""
        self.partitions.add(part)
        if per_event and part not in self._per_event:
            self._per_event.add(part)
            self._load(_PER_EVENT, part)

    def _add(self, name: str, rows: Any) -> None:
        """New rows of a columnar table, split by partition (copies: the batch's buffers are let go)."""
        if rows is None or not rows.num_rows:
            return
        schema = _pending_schema(name)
        for part, piece in kv_fold.split_by_partition(rows, self._partition_of).items():
            self._touch(part)
            self.pending.add(part, name, piece.cast(schema))

    def add_kv(self, kv: Any) -> None:
        """Gather param and tag events given as columns (``compaction.inbox.KV_BATCH_COLUMNS``)."""
        import pyarrow.compute as pc

        is_param = pc.equal(kv.column("type"), "param")
        self._add("params", kv.filter(is_param).select(kv_fold.KV_COLUMNS))
        self._add("tags", kv.filter(pc.invert(is_param)).select(kv_fold.KV_COLUMNS))

    def add_runs(self, runs: Any, creation_tags: Any = None) -> None:
        """Gather run events given as columns (``run_fold.RUN_COLUMNS``) and the tags their creations carry."""
        if runs is not None:
            self._add("runs", runs.drop_columns(["body"]))
        self._add("tags", creation_tags)

    def add_latest(self, latest: Any) -> None:
        """Gather latest metric points (run_id, key, value, step, timestamp) of a batch."""
        self._add("latest_metrics", latest)

    def need_run(self, run_id: str) -> None:
        """Make sure the partition of ``run_id`` is touched (its artifacts and inputs loaded)."""
        if run_id not in self._seen_runs:
            self._seen_runs.add(run_id)
            self._touch(tables.partition_of(run_id), per_event=True)

    def need_experiments(self) -> None:
        """Make sure the experiment tables are loaded."""
        if not self.experiments_loaded:
            self.experiments_loaded = True
            self._load(tables.EXPERIMENT_TABLES, tables.EXPERIMENT_PARTITION)

    def need_domain(self, dom: Domain) -> None:
        """Make sure a feature domain's tables (the registry's) are loaded."""
        if dom.name not in self.domains_loaded:
            self.domains_loaded.add(dom.name)
            self._load(dom.tables, tables.EXPERIMENT_PARTITION)

    def need_for(self, event) -> None:
        """Make sure the partition an event (not a metric) folds into is loaded."""
        run_id = getattr(event, "run_id", None)
        if run_id is not None:
            self.need_run(run_id)
        else:
            dom = domain_of(event)
            if dom is not None:
                self.need_domain(dom)
            else:
                self.need_experiments()

    def _state_runs(self) -> dict[str, set[str]]:
        """The runs of the fold state, by touched partition."""
        st = self.state
        by_part: dict[str, set[str]] = {part: set() for part in self.partitions}
        for run_id in set().union(*(getattr(st, name) for name in RUN_KEYED)):
            part = tables.partition_of(run_id)
            if part in by_part:
                by_part[part].add(run_id)
        return by_part

    def _fold_partition(self, part: str, run_ids: set[str]) -> tuple[dict[str, Any], list[ParamConflict]]:
        """The run tables of one partition that change: its compacted rows, the fold state's and
        the new ones, folded. A table with nothing new in the partition is left out (its files
        stay as they are): a pass of metric points rewrites only the latest values."""
        state_rows = tables.run_tables(self.state, run_ids)
        pending = self.pending.take(part)
        changed = {
            name for name in _COLUMNAR if pending.get(name) or (name in state_rows and state_rows[name].num_rows)
        }
        out = {name: state_rows[name] for name in _PER_EVENT if part in self._per_event}
        base = {
            name: read_files(self.store, keys, tables.schema(name))
            for name in changed
            if (keys := self._base_files(name, part))
        }

        def given(name: str) -> list[Any]:
            return [t for t in (base.get(name), state_rows[name]) if t is not None and t.num_rows]

        conflicts: list[ParamConflict] = []
        if "runs" in changed:
            out["runs"] = run_fold.fold_runs(kv_fold.concat_as("runs", given("runs")), pending.get("runs", []))
        if "params" in changed:
            out["params"], conflicts = kv_fold.fold_params(given("params") + pending.get("params", []))
        if "tags" in changed:
            out["tags"] = kv_fold.fold_tags(given("tags") + pending.get("tags", []))
        if "latest_metrics" in changed:
            out["latest_metrics"] = run_fold.fold_latest(given("latest_metrics") + pending.get("latest_metrics", []))
        return out, conflicts

    def write(self, version: int, threads: int = 4) -> tuple[dict[str, list[WrittenFile]], dict[str, set[str]]]:
        """Write the touched partitions; returns (new files per table, replaced partitions per table).

        Partitions are folded, encoded and uploaded by ``threads`` threads (Arrow's
        compute, Parquet encoding and uploads release the GIL), each partition's new rows
        let go as soon as it is folded; the result is in a fixed order.
        """
        replaced: dict[str, set[str]] = {}
        state_runs = self._state_runs()

        def run_partition(part: str) -> tuple[list[str], list[tuple[str, WrittenFile]], list[ParamConflict]]:
            folded, conflicts = self._fold_partition(part, state_runs[part])
            nonempty = [(name, data) for name, data in folded.items() if data.num_rows]
            written = [(name, write_table(self.store, name, data, version, part)) for name, data in nonempty]
            return list(folded), written, conflicts

        jobs: list[tuple[str, str, Any]] = []  # (table, partition, rows) of the one-bucket tables
        if self.experiments_loaded:
            jobs += [
                (name, tables.EXPERIMENT_PARTITION, data) for name, data in tables.experiment_tables(self.state).items()
            ]
        for dom in domains():
            if dom.name in self.domains_loaded:
                jobs += [(name, tables.EXPERIMENT_PARTITION, data) for name, data in dom.to_tables(self.state).items()]
        for name, part, _ in jobs:
            replaced.setdefault(name, set()).add(part)
        jobs = [job for job in jobs if job[2].num_rows]
        parts = sorted(self.partitions)
        try:
            with ThreadPoolExecutor(max(1, threads)) as pool:
                by_part = list(pool.map(run_partition, parts))
                others = list(pool.map(lambda job: write_table(self.store, job[0], job[2], version, job[1]), jobs))
        finally:
            self.pending.close()
        new: dict[str, list[WrittenFile]] = {}
        for part, (folded_names, written, conflicts) in zip(parts, by_part):
            for name in folded_names:  # a table folded empty is replaced by no file
                replaced.setdefault(name, set()).add(part)
            self.state.conflicts += conflicts
            for name, f in written:
                new.setdefault(name, []).append(f)
        for (name, _, _), f in zip(jobs, others):
            new.setdefault(name, []).append(f)
        return new, replaced


def replace_partitions(
    base_files: list[dict[str, Any]], replaced: set[str], new_files: list[WrittenFile]
) -> list[dict[str, Any]]:
    """A table's new file list: the base files outside ``replaced`` partitions, plus the new ones."""
    kept = [f for f in base_files if f.get("partition") not in replaced]
    return kept + [f.entry() for f in new_files]
