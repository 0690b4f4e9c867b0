"""Render a parsed MLflow search (filter AST + order_by) as DuckDB SQL with bound parameters.

Every identifier comes from an allowlist; every value the user wrote is a bound
parameter, never SQL text. The query selects the ids of one page of runs; the
caller fetches their params, tags and metrics. Two renderings, one semantics:
:func:`render_search` over the documented views (``runs``, ``params``, …), and
:func:`render_indexed_search` over the search tables of ``evtrack.query.run_index``
(what ``search_runs`` runs: a key's filter or order is a column of a positional join).

Semantics, as MLflow's: clauses are ANDed; a run lacking the key never matches
(even ``!=``); metric comparisons use the latest value, with IEEE semantics for
NaN (it satisfies only ``!=``; MLflow's SQL store compares NaN as 0); dataset clauses
hold when some input of the run satisfies them; LIKE is
case-sensitive, ILIKE not. Ordering: the given keys (default ``start_time DESC``), then
``run_id``; NaN after every number and missing values last, in both directions.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from evtrack.query.nodes import Comparison, OrderBy, effective_run_order

# filter/order attribute -> column of the ``runs`` view
ATTRIBUTE_COLUMNS = {
    "run_id": "run_id",
    "run_name": "run_name",
    "user_id": "user_id",
    "status": "status",
    "start_time": "start_time",
    "end_time": "end_time",
    "artifact_uri": "artifact_uri",
}
_OPS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "LIKE": "LIKE", "ILIKE": "ILIKE"}
_KEYED_VIEWS = {"metric": "latest_metrics", "param": "params", "tag": "tags"}


def _clause(c: Comparison, params: list[Any], keys: "_KeyColumns | None" = None) -> str:
    if c.entity == "attribute":
        column = f"r.{ATTRIBUTE_COLUMNS[c.key]}"
        if c.op in ("IN", "NOT IN"):
            values = list(c.value)  # type: ignore[arg-type]
            params.extend(values)
            marks = ", ".join("?" for _ in values)
            return f"{column} {c.op} ({marks})"
        params.append(c.value)
        return f"({column} IS NOT NULL AND {column} {_OPS[c.op]} ?)"
    if c.entity == "dataset":
        return _dataset_clause(c, params)
    dense = keys.ref(c.entity, c.key) if keys is not None else None
    if dense is not None:  # the run's value, NULL when the run lacks the key
        if c.op in ("IS NULL", "IS NOT NULL"):
            return f"{dense} {c.op}"
        return f"({dense} IS NOT NULL AND {_value_test(c, dense, params)})"
    view = _KEYED_VIEWS[c.entity]
    params.append(c.key)
    exists = f"EXISTS (SELECT 1 FROM {view} k WHERE k.run_id = r.run_id AND k.key = ?"
    if c.op == "IS NULL":
        return f"NOT {exists})"
    if c.op == "IS NOT NULL":
        return f"{exists})"
    return f"{exists} AND {_value_test(c, 'k.value', params)})"


def _value_test(c: Comparison, expr: str, params: list[Any]) -> str:
    """The test of a present value; for metrics with IEEE semantics: NaN only ever satisfies !=."""
    if c.entity == "metric":
        params.append(float(c.value))  # type: ignore[arg-type]
        if c.op == "!=":
            return f"(isnan({expr}) OR {expr} != ?)"
        return f"NOT isnan({expr}) AND {expr} {_OPS[c.op]} ?"
    params.append(c.value)
    return f"{expr} {_OPS[c.op]} ?"


_DATASET_COLUMNS = {"name": "name", "digest": "digest", "context": "context"}


def _dataset_clause(c: Comparison, params: list[Any]) -> str:
    """MLflow's dataset filter: some input of the run satisfies the comparison (so ``!=`` and
    ``NOT IN`` need an input with another value, and a run without inputs never matches)."""
    column = f"d.{_DATASET_COLUMNS[c.key]}"
    if c.op in ("IN", "NOT IN"):
        values = list(c.value)  # type: ignore[arg-type]
        params.extend(values)
        test = f"{column} {c.op} ({', '.join('?' for _ in values)})"
    else:
        params.append(c.value)
        test = f"{column} {_OPS[c.op]} ?"
    return f"EXISTS (SELECT 1 FROM inputs d WHERE d.run_id = r.run_id AND {column} IS NOT NULL AND {test})"


def _order(
    order: Sequence[OrderBy],
    params: list[Any],
    keys_in: "_KeyColumns | None" = None,
    filters: Sequence[Comparison] = (),
) -> tuple[list[str], list[str]]:
    """(LEFT JOINs, ORDER BY keys); a key the filters already require to be present (and a
    number, not NaN) gets no sort key for missing (NaN) values."""
    present = {(c.entity, c.key) for c in filters if c.entity in _KEYED_VIEWS and c.op != "IS NULL"}
    numbers = {(c.entity, c.key) for c in filters if c.entity == "metric" and c.op in _OPS and c.op != "!="}
    joins, keys = [], []
    for i, o in enumerate(order):
        direction = "ASC" if o.ascending else "DESC"
        if o.entity == "attribute":
            expr = f"r.{ATTRIBUTE_COLUMNS[o.key]}"
            keys += [f"({expr} IS NULL)", f"{expr} {direction}"]
            continue
        expr = keys_in.ref(o.entity, o.key) if keys_in is not None else None
        if expr is None:
            view = _KEYED_VIEWS[o.entity]
            alias = f"o{i}"
            joins.append(f"LEFT JOIN {view} {alias} ON {alias}.run_id = r.run_id AND {alias}.key = ?")
            params.append(o.key)
            expr = f"{alias}.value"
        if (o.entity, o.key) not in present:
            keys.append(f"({expr} IS NULL)")
        if o.entity == "metric" and (o.entity, o.key) not in numbers:
            keys.append(f"coalesce(isnan({expr}), FALSE)")
        keys.append(f"{expr} {direction}")
    return joins, keys


def render_search(
    filters: Sequence[Comparison],
    order_by: Sequence[OrderBy],
    experiment_ids: Sequence[str],
    stages: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[str, list[Any]]:
    """(sql, params) selecting the ids of one page of matching runs, in MLflow's order, over the
    documented views (``runs``, ``params``, …)."""
    join_params: list[Any] = []
    joins, keys = _order(effective_run_order(order_by), join_params)
    where_params: list[Any] = list(experiment_ids) + list(stages)
    where = [
        f"r.experiment_id IN ({', '.join('?' for _ in experiment_ids)})",
        f"r.lifecycle_stage IN ({', '.join('?' for _ in stages)})",
    ]
    where += [_clause(c, where_params) for c in filters]
    sql = (
        f"SELECT r.run_id FROM runs r {' '.join(joins)} WHERE {' AND '.join(where)} "
        f"ORDER BY {', '.join(keys)} LIMIT ? OFFSET ?"
    )
    return sql, join_params + where_params + [limit, offset]


# -- over the search tables of evtrack.query.run_index ----------------------------------------

_SOURCE_COLUMNS = (
    "rid",
    "run_id",
    "xid",
    "active",
    "deleted",
    "run_name",
    "user_id",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
)
_DEFAULT_ORDER = [OrderBy("attribute", "start_time", False), OrderBy("attribute", "run_id", True)]
_STAGE_COLUMNS = {"active": "r.active", "deleted": "r.deleted"}
_KEY_TABLE = re.compile(r"\As_key_[0-9]+\Z")
_TAIL_TABLE = re.compile(r"\As_tail_[0-9]+\Z")


class _KeyColumns:
    """The dense key columns one search uses, exposed as columns ``c0``, ``c1``, … of its source."""

    def __init__(self, column: Callable[[str, str], str | None]) -> None:
        self._column = column
        self.used: dict[tuple[str, str], tuple[str, str]] = {}  # (entity, key) -> (alias, table)

    def ref(self, entity: str, key: str) -> str | None:
        """``r.cN`` for the key's column, or None when it has none (then a semi-join is rendered)."""
        hit = self.used.get((entity, key))
        if hit is None:
            table = self._column(entity, key)
            if table is None:
                return None
            if not _KEY_TABLE.match(table):
                raise ValueError(f"not a key column table: {table!r}")
            hit = self.used[(entity, key)] = (f"c{len(self.used)}", table)
        return f"r.{hit[0]}"

    def source(self, tail: str | None, params: list[Any]) -> str:
        """The runs to search, with one column per used key: the base's rows (minus those the
        tail replaces), plus the tail's rows when there is a tail (then ``pos, sub`` give the
        default order, otherwise ``rid`` does)."""
        dense = self.used.values()
        cols = ", ".join(f"b.{c}" for c in _SOURCE_COLUMNS) + "".join(f", {a}.v AS {a}" for a, _ in dense)
        base = "FROM s_runs b" + "".join(f" POSITIONAL JOIN {t} {a}" for a, t in dense)
        if not tail:
            return f"(SELECT {cols} {base}) r"
        if not _TAIL_TABLE.match(tail):
            raise ValueError(f"not a tail table: {tail!r}")
        base = f"SELECT {cols}, b.rid AS pos, 0 AS sub {base} WHERE b.rid NOT IN (SELECT rid FROM {tail}_hidden)"
        cols = ", ".join(f"t.{c}" for c in _SOURCE_COLUMNS) + "".join(f", {a}.value AS {a}" for a, _ in dense)
        joins = []
        for (entity, key), (alias, _) in self.used.items():
            joins.append(
                f" LEFT JOIN (SELECT run_id, value FROM {tail}_{_KEYED_VIEWS[entity]} WHERE key = ?) {alias} "
                f"ON {alias}.run_id = t.run_id"
            )
            params.append(key)
        return f"({base} UNION ALL SELECT {cols}, t.pos, t.sub FROM {tail} t{''.join(joins)}) r"


def _scope(active: Sequence[int], deleted: Sequence[int], stages: Sequence[str], params: list[Any]) -> str:
    """Runs of the experiments ``active`` in one of ``stages``, and every run of the deleted
    experiments ``deleted`` when ``stages`` has "deleted" (their runs count as deleted)."""
    parts = []
    tests = [_STAGE_COLUMNS[s] for s in dict.fromkeys(stages) if s in _STAGE_COLUMNS]
    if active and tests:
        params.extend(active)
        parts.append(f"(r.xid IN ({', '.join('?' for _ in active)}) AND ({' OR '.join(tests)}))")
    if deleted and "deleted" in stages:
        params.extend(deleted)
        parts.append(f"r.xid IN ({', '.join('?' for _ in deleted)})")
    return f"({' OR '.join(parts)})" if parts else "FALSE"


def render_indexed_search(
    filters: Sequence[Comparison],
    order_by: Sequence[OrderBy],
    active: Sequence[int],
    deleted: Sequence[int],
    stages: Sequence[str],
    column: Callable[[str, str], str | None],
    tail: str | None,
    limit: int,
    offset: int,
) -> tuple[str, list[Any]]:
    """(sql, params) selecting the rids of one page of matching runs, in MLflow's order, over the
    search tables (``s_runs`` and its key columns, the tail's tables): the same semantics as
    :func:`render_search`. ``active``/``deleted`` are the ``xid`` of the searched experiments
    that are live/deleted; ``column(entity, key)`` names a key's dense column table, or None;
    ``tail`` is the name of the snapshot's tail runs (``TailRuns.name``), if any."""
    keys_in = _KeyColumns(column)
    join_params: list[Any] = []
    order = effective_run_order(order_by)
    default = order[-2:] == _DEFAULT_ORDER  # the order of the search rows: rid, or (pos, sub) with a tail
    joins, keys = _order(order[:-2] if default else order, join_params, keys_in, filters)
    if default:
        keys += ["r.pos", "r.sub"] if tail else ["r.rid"]
    where_params: list[Any] = []
    where = [_scope(active, deleted, stages, where_params)]
    where += [_clause(c, where_params, keys_in) for c in filters]
    scans_only = not joins and all(
        c.entity == "attribute" or (c.entity in _KEYED_VIEWS and keys_in.ref(c.entity, c.key)) for c in filters
    )
    source_params: list[Any] = []
    source = keys_in.source(tail, source_params)
    order_sql = f" ORDER BY {', '.join(keys)}"
    if keys == ["r.rid"] and scans_only:
        # s_runs is stored in rid order, positional joins keep it, and DuckDB keeps insertion
        # order without ORDER BY (preserve_insertion_order, set by the engine): the rows come in
        # rid order, and LIMIT ends the scan early.
        order_sql = ""
    sql = f"SELECT r.rid FROM {source} {' '.join(joins)} WHERE {' AND '.join(where)}{order_sql} LIMIT ? OFFSET ?"
    return sql, source_params + join_params + where_params + [limit, offset]
