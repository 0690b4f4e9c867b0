"""Loading and rewriting the state partitions a compaction touches.

A ``PartitionedState`` starts empty and loads a run partition (all the run
tables of one bucket), the experiment tables or a feature domain's tables (the registry's) the first
time an event needs them; at the end it writes exactly those partitions again.

Params and tags are folded column-wise (``compaction.kv_fold``): a loaded
partition's params and tags stay Arrow tables, the new param and tag events are
gathered as columns (``add_kv``), and each partition's rows are folded at once
when it is written. The fold state keeps only the tags a run's creation carries.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from evtrack.state import tables
from evtrack.state.domains import Domain, domain_of, domains
from evtrack.state.fold import RUN_KEYED, State
from evtrack.state.manifest import Manifest
from evtrack.store.base import ObjectStore
from evtrack.state.table_files import read_files

from compaction import kv_fold
from compaction.files import WrittenFile, write_table

_KV_TABLES = ("params", "tags")


class PartitionedState:
    """The fold state of the partitions touched so far, on top of a manifest."""

    def __init__(self, store: ObjectStore, base: Manifest) -> None:
        self.store, self.base = store, base
        self.state = State()
        self.partitions: set[str] = set()
        self.experiments_loaded = False
        self.domains_loaded: set[str] = set()  # the feature domains (the registry) loaded
        self._seen_runs: set[str] = set()  # runs whose partition is loaded
        self.base_kv: dict[tuple[str, str], Any] = {}  # (params|tags, partition) -> its compacted rows
        self.new_kv: dict[str, list[Any]] = {name: [] for name in _KV_TABLES}  # new rows (KV_COLUMNS)

    def _load(self, names: tuple[str, ...], partition: str) -> None:
        loaded: dict[str, Any] = {}
        for name in names:
            keys = [f["path"] for f in self.base.files(name) if f.get("partition") == partition]
            if keys:
                loaded[name] = read_files(self.store, keys, tables.schema(name))
        for name in _KV_TABLES:
            if name in loaded:
                self.base_kv[(name, partition)] = loaded.pop(name)
        tables.load_state(loaded, self.state)

    def add_kv(self, kv: Any) -> None:
        """Gather param and tag events given as columns (``compaction.inbox.KV_BATCH_COLUMNS``)."""
        import pyarrow.compute as pc

        for run_id in pc.unique(kv.column("run_id")).to_pylist():
            self.need_run(run_id)
        is_param = pc.equal(kv.column("type"), "param")
        for name, rows in (("params", kv.filter(is_param)), ("tags", kv.filter(pc.invert(is_param)))):
            if rows.num_rows:
                self.new_kv[name].append(rows.select(kv_fold.KV_COLUMNS))

    def need_run(self, run_id: str) -> None:
        """Make sure the partition of ``run_id`` is loaded."""
        if run_id in self._seen_runs:
            return
        self._seen_runs.add(run_id)
        part = tables.partition_of(run_id)
        if part not in self.partitions:
            self.partitions.add(part)
            self._load(tables.RUN_TABLES, part)

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

    def add_metric(self, run_id: str, key: str, value: float, step: int, timestamp: int) -> None:
        """Update a metric's latest value (history goes to the metrics table, not the state)."""
        self.state.note_latest(run_id, key, step, timestamp, value)

    def _runs_by_partition(self) -> dict[str, set[str]]:
        st = self.state
        by_part: dict[str, set[str]] = {part: set() for part in self.partitions}
        for run_id in set().union(*(getattr(st, name) for name in RUN_KEYED)):
            part = tables.partition_of(run_id)
            if part in by_part:
                by_part[part].add(run_id)
        return by_part

    def write(self, version: int, threads: int = 8) -> tuple[dict[str, list[WrittenFile]], dict[str, set[str]]]:
        """Write the touched partitions; returns (new files per table, replaced partitions per table).

        The files are encoded and uploaded by ``threads`` threads (Parquet encoding and
        uploads release the GIL), in a fixed order in the result.
        """
        jobs: list[tuple[str, str, Any]] = []  # (table, partition, rows)
        new_kv = {name: kv_fold.split_by_partition(kv_fold.concat(name, rows)) for name, rows in self.new_kv.items()}
        for part, run_ids in sorted(self._runs_by_partition().items()):
            run_tables = tables.run_tables(self.state, run_ids)
            for name in _KV_TABLES:
                rows = [
                    t
                    for t in (self.base_kv.get((name, part)), run_tables[name], new_kv[name].get(part))
                    if t is not None and t.num_rows
                ]
                if name == "params":
                    run_tables[name], conflicts = kv_fold.fold_params(rows)
                    self.state.conflicts += conflicts
                else:
                    run_tables[name] = kv_fold.fold_tags(rows)
            jobs += [(name, part, data) for name, data in run_tables.items()]
        if self.experiments_loaded:
            jobs += [
                (name, tables.EXPERIMENT_PARTITION, data) for name, data in tables.experiment_tables(self.state).items()
            ]
        for dom in domains():
            if dom.name in self.domains_loaded:
                jobs += [(name, tables.EXPERIMENT_PARTITION, data) for name, data in dom.to_tables(self.state).items()]
        replaced: dict[str, set[str]] = {}
        for name, part, _ in jobs:
            replaced.setdefault(name, set()).add(part)
        jobs = [job for job in jobs if job[2].num_rows]
        with ThreadPoolExecutor(max(1, min(threads, len(jobs)))) as pool:
            files = list(pool.map(lambda job: write_table(self.store, job[0], job[2], version, job[1]), jobs))
        new: dict[str, list[WrittenFile]] = {}
        for (name, _, _), written in zip(jobs, files):
            new.setdefault(name, []).append(written)
        return new, replaced


def replace_partitions(
    base_files: list[dict[str, Any]], replaced: set[str], new_files: list[WrittenFile]
) -> list[dict[str, Any]]:
    """A table's new file list: the base files outside ``replaced`` partitions, plus the new ones."""
    kept = [f for f in base_files if f.get("partition") not in replaced]
    return kept + [f.entry() for f in new_files]
