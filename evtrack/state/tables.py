"""The compacted tables: their pyarrow schemas, and conversion to and from fold state.

Declared once here, versioned per table (``SCHEMA_VERSIONS``); the compactor writes
them and readers read them. State tables keep the ``(ts, eid)`` order of the event
that set each value, so events folded later (the tail, or the next compaction)
resolve against them exactly as the pure fold would.

Partitioning: run-keyed state tables (runs, params, tags, latest_metrics,
artifacts, inputs) are split into ``PARTITIONS`` buckets by ``crc32(run_id)``; a compaction
rewrites only the buckets its events touched. Experiment tables, and the tables of
every registered state domain (``evtrack.state.domains``: the model registry's), are
one bucket each.
Append-only tables (events, metrics) get new files per compaction.

pyarrow is imported lazily: ``import evtrack`` must stay light.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, Iterable

from evtrack.state.domains import Domain, domains, on_register
from evtrack.state.fold import Artifact, DatasetInput, ExperimentState, MetricSeries, RunState, Stamped, State

if TYPE_CHECKING:
    import pyarrow as pa

PARTITIONS = 16
RUN_TABLES = ("runs", "params", "tags", "latest_metrics", "artifacts", "inputs")
EXPERIMENT_TABLES = ("experiments", "experiment_tags")
APPEND_TABLES = ("events", "metrics")
SCHEMA_VERSIONS = {name: 1 for name in APPEND_TABLES + RUN_TABLES + EXPERIMENT_TABLES}  # + domain tables
EXPERIMENT_PARTITION = "all"

_S, _I, _F = "string", "int64", "float64"
_COLUMNS: dict[str, list[tuple[str, str, bool]]] = {
    # (name, type, nullable)
    "events": [
        ("eid", _S, False),
        ("type", _S, False),
        ("v", "int16", False),
        ("ts", _I, False),
        ("experiment_id", _S, True),
        ("run_id", _S, True),
        ("key", _S, True),
        ("value", _S, True),
        ("metric_value", _F, True),
        ("step", _I, True),
        ("timestamp", _I, True),
        ("body", _S, True),
    ],
    "metrics": [
        ("run_id", _S, False),
        ("key", _S, False),
        ("value", _F, False),
        ("step", _I, False),
        ("timestamp", _I, False),
    ],
    "runs": [
        ("run_id", _S, False),
        ("experiment_id", _S, False),
        ("run_name", _S, False),
        ("user_id", _S, False),
        ("status", _S, False),
        ("start_time", _I, True),
        ("end_time", _I, True),
        ("artifact_uri", _S, False),
        ("lifecycle_stage", _S, False),
        ("parent_run_id", _S, True),
        ("created_ts", _I, False),
        ("created_eid", _S, False),
        ("status_ts", _I, False),
        ("status_eid", _S, False),
        ("name_ts", _I, False),
        ("name_eid", _S, False),
        ("lifecycle_ts", _I, False),
        ("lifecycle_eid", _S, False),
    ],
    "params": [("run_id", _S, False), ("key", _S, False), ("value", _S, False), ("ts", _I, False), ("eid", _S, False)],
    "tags": [("run_id", _S, False), ("key", _S, False), ("value", _S, True), ("ts", _I, False), ("eid", _S, False)],
    "latest_metrics": [
        ("run_id", _S, False),
        ("key", _S, False),
        ("value", _F, False),
        ("step", _I, False),
        ("timestamp", _I, False),
    ],
    "artifacts": [
        ("run_id", _S, False),
        ("path", _S, False),
        ("size", _I, False),
        ("digest", _S, False),
        ("ts", _I, False),
        ("eid", _S, False),
    ],
    "inputs": [
        ("run_id", _S, False),
        ("name", _S, False),
        ("digest", _S, False),
        ("context", _S, True),
        ("source_type", _S, False),
        ("source", _S, False),
        ("schema", _S, True),
        ("profile", _S, True),
        ("tags", _S, False),  # tags: JSON object
        ("ts", _I, False),
        ("eid", _S, False),
    ],
    "experiments": [
        ("experiment_id", _S, False),
        ("name", _S, False),
        ("artifact_location", _S, False),
        ("lifecycle_stage", _S, False),
        ("creation_time", _I, True),
        ("last_update_time", _I, True),
        ("created_ts", _I, False),
        ("created_eid", _S, False),
        ("name_ts", _I, False),
        ("name_eid", _S, False),
        ("lifecycle_ts", _I, False),
        ("lifecycle_eid", _S, False),
    ],
    "experiment_tags": [
        ("experiment_id", _S, False),
        ("key", _S, False),
        ("value", _S, True),
        ("ts", _I, False),
        ("eid", _S, False),
    ],
}


def _add_domain(domain: Domain) -> None:
    for name, columns in domain.columns.items():
        if name in _COLUMNS:
            raise RuntimeError(f"table {name!r} of domain {domain.name!r} is declared twice")
        _COLUMNS[name] = list(columns)
        SCHEMA_VERSIONS[name] = 1


on_register(_add_domain)


def domain_tables() -> tuple[str, ...]:
    """The tables of every registered state domain (one partition each, like the experiment tables)."""
    return tuple(name for d in domains() for name in d.tables)


def state_tables() -> tuple[str, ...]:
    """Every state table: run-keyed, experiment and domain tables."""
    return RUN_TABLES + EXPERIMENT_TABLES + domain_tables()


def all_tables() -> tuple[str, ...]:
    """Every compacted table: append-only then state tables."""
    return APPEND_TABLES + state_tables()


_schemas: dict[str, "pa.Schema"] = {}


def schema(table: str) -> "pa.Schema":
    """The pyarrow schema of a table (with its schema version in the metadata)."""
    if table not in _schemas:
        import pyarrow as pa

        fields = [pa.field(n, getattr(pa, t)(), nullable=null) for n, t, null in _COLUMNS[table]]
        meta = {b"evtrack.table": table.encode(), b"evtrack.schema_version": str(SCHEMA_VERSIONS[table]).encode()}
        _schemas[table] = pa.schema(fields, metadata=meta)
    return _schemas[table]


def column_names(table: str) -> list[str]:
    """The column names of a table, in order."""
    return [c[0] for c in _COLUMNS[table]]


def partition_of(run_id: str) -> str:
    """The state-table bucket of a run: ``p00`` … ``p15``."""
    return f"p{zlib.crc32(run_id.encode()) % PARTITIONS:02d}"


def _table(name: str, rows: dict[str, list[Any]]) -> "pa.Table":
    import pyarrow as pa

    return pa.table(rows, schema=schema(name))


def _empty_rows(table: str) -> dict[str, list[Any]]:
    return {c: [] for c in column_names(table)}


# -- state -> tables ----------------------------------------------------------


def run_tables(state: State, run_ids: Iterable[str]) -> dict[str, "pa.Table"]:
    """The run-keyed state tables for the given runs, sorted by run_id and key."""
    out: dict[str, list[tuple]] = {t: [] for t in RUN_TABLES}  # rows in column order
    runs, params, tags, latest, artifacts, inputs = (out[t] for t in RUN_TABLES)
    for run_id in sorted(run_ids):
        run = state.runs.get(run_id)
        if run is not None:
            runs.append(
                (
                    run_id,
                    run.experiment_id,
                    run.run_name,
                    run.user_id,
                    run.status,
                    run.start_time,
                    run.end_time,
                    run.artifact_uri,
                    run.lifecycle_stage,
                    run.parent_run_id,
                    *run.created,
                    *run.status_order,
                    *run.name_order,
                    *run.lifecycle_order,
                )
            )
        for key, s in sorted(state.params.get(run_id, {}).items()):
            params.append((run_id, key, s.value, *s.order))
        for key, s in sorted(state.tags.get(run_id, {}).items()):
            tags.append((run_id, key, s.value, *s.order))
        for key, series in sorted(state.metrics.get(run_id, {}).items()):
            if series.latest is not None:
                step, timestamp, value = series.latest
                latest.append((run_id, key, value, step, timestamp))
        for path, a in sorted(state.artifacts.get(run_id, {}).items()):
            artifacts.append((run_id, path, a.size, a.digest, *a.order))
        for _, d in sorted(state.inputs.get(run_id, {}).items()):
            inputs.append(
                (
                    run_id,
                    d.name,
                    d.digest,
                    d.context,
                    d.source_type,
                    d.source,
                    d.schema,
                    d.profile,
                    _json_tags(d.tags),
                    *d.order,
                )
            )
    return {name: _rows_table(name, rows) for name, rows in out.items()}


def _rows_table(name: str, rows: list[tuple]) -> "pa.Table":
    """A table from rows given as tuples in the table's column order."""
    return _table(name, {c: [r[i] for r in rows] for i, c in enumerate(column_names(name))})


def _json_tags(tags: dict[str, str]) -> str:
    import json

    return json.dumps(tags, sort_keys=True, separators=(",", ":"))


def experiment_tables(state: State) -> dict[str, "pa.Table"]:
    """The experiment tables of every experiment in the state."""
    out = {t: _empty_rows(t) for t in EXPERIMENT_TABLES}
    for exp_id in sorted(state.experiments):
        e = state.experiments[exp_id]
        _add(
            out["experiments"],
            experiment_id=exp_id,
            name=e.name,
            artifact_location=e.artifact_location,
            lifecycle_stage=e.lifecycle_stage,
            creation_time=e.creation_time,
            last_update_time=e.last_update_time,
            created_ts=e.created[0],
            created_eid=e.created[1],
            name_ts=e.name_order[0],
            name_eid=e.name_order[1],
            lifecycle_ts=e.lifecycle_order[0],
            lifecycle_eid=e.lifecycle_order[1],
        )
        for key, s in sorted(e.tags.items()):
            _add(out["experiment_tags"], experiment_id=exp_id, key=key, value=s.value, ts=s.order[0], eid=s.order[1])
    return {name: _table(name, rows) for name, rows in out.items()}


def _add(rows: dict[str, list[Any]], **values: Any) -> None:
    for name, value in values.items():
        rows[name].append(value)


# -- tables -> state ----------------------------------------------------------


def load_state(tables: dict[str, "pa.Table"], state: State | None = None) -> State:
    """Fold-compatible state from state tables (any subset of them)."""
    st = state if state is not None else State()
    for domain in domains():
        if any(name in tables for name in domain.tables):
            domain.load(tables, st)
    if "experiments" in tables:
        for r in tables["experiments"].to_pylist():
            e = st.experiments.setdefault(r["experiment_id"], ExperimentState(r["experiment_id"]))
            e.name, e.artifact_location = r["name"], r["artifact_location"]
            e.lifecycle_stage = r["lifecycle_stage"]
            e.creation_time, e.last_update_time = r["creation_time"], r["last_update_time"]
            e.created = (r["created_ts"], r["created_eid"])
            e.name_order = (r["name_ts"], r["name_eid"])
            e.lifecycle_order = (r["lifecycle_ts"], r["lifecycle_eid"])
    if "experiment_tags" in tables:
        for r in tables["experiment_tags"].to_pylist():
            e = st.experiments.setdefault(r["experiment_id"], ExperimentState(r["experiment_id"]))
            e.tags[r["key"]] = Stamped(r["value"], (r["ts"], r["eid"]))
    if "runs" in tables:
        for r in tables["runs"].to_pylist():
            st.runs[r["run_id"]] = RunState(
                run_id=r["run_id"],
                experiment_id=r["experiment_id"],
                run_name=r["run_name"],
                user_id=r["user_id"],
                start_time=r["start_time"],
                artifact_uri=r["artifact_uri"],
                parent_run_id=r["parent_run_id"],
                created=(r["created_ts"], r["created_eid"]),
                status=r["status"],
                end_time=r["end_time"],
                status_order=(r["status_ts"], r["status_eid"]),
                name_order=(r["name_ts"], r["name_eid"]),
                lifecycle_stage=r["lifecycle_stage"],
                lifecycle_order=(r["lifecycle_ts"], r["lifecycle_eid"]),
            )
    for name, target in (("params", st.params), ("tags", st.tags)):
        if name in tables:
            for r in tables[name].to_pylist():
                target.setdefault(r["run_id"], {})[r["key"]] = Stamped(r["value"], (r["ts"], r["eid"]))
    if "latest_metrics" in tables:
        for r in tables["latest_metrics"].to_pylist():
            per_run = st.metrics.setdefault(r["run_id"], {})
            per_run.setdefault(r["key"], MetricSeries()).add(r["step"], r["timestamp"], r["value"])
    if "artifacts" in tables:
        for r in tables["artifacts"].to_pylist():
            st.artifacts.setdefault(r["run_id"], {})[r["path"]] = Artifact(
                r["path"], r["size"], r["digest"], (r["ts"], r["eid"])
            )
    if "inputs" in tables:
        import json

        for r in tables["inputs"].to_pylist():
            d = DatasetInput(
                r["name"],
                r["digest"],
                r["source_type"],
                r["source"],
                r["schema"],
                r["profile"],
                r["context"],
                json.loads(r["tags"]),
                (r["ts"], r["eid"]),
            )
            st.inputs.setdefault(r["run_id"], {})[(d.name, d.digest, d.context or "")] = d
    return st
