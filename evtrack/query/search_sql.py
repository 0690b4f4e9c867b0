"""Render a parsed MLflow search (filter AST + order_by) as DuckDB SQL with bound parameters.

Every identifier comes from an allowlist; every value the user wrote is a bound
parameter, never SQL text. The query selects the ids of one page of runs; the
caller fetches their params, tags and metrics.

Semantics, as MLflow's: clauses are ANDed; a run lacking the key never matches
(even ``!=``); metric comparisons use the latest value, with IEEE semantics for
NaN (it satisfies only ``!=``; MLflow's SQL store compares NaN as 0); dataset clauses
hold when some input of the run satisfies them; LIKE is
case-sensitive, ILIKE not. Ordering: the given keys (default ``start_time DESC``), then
``run_id``; NaN after every number and missing values last, in both directions.
"""

from __future__ import annotations

from typing import Any, Sequence

from evtrack.query.nodes import Comparison, OrderBy, effective_run_order

# filter/order attribute -> column of the ``runs`` view
ATTRIBUTE_COLUMNS = {
    "run_id": "run_id", "run_name": "run_name", "user_id": "user_id", "status": "status",
    "start_time": "start_time", "end_time": "end_time", "artifact_uri": "artifact_uri",
}
_OPS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "LIKE": "LIKE", "ILIKE": "ILIKE"}
_KEYED_VIEWS = {"metric": "latest_metrics", "param": "params", "tag": "tags"}


def _clause(c: Comparison, params: list[Any]) -> str:
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
    view = _KEYED_VIEWS[c.entity]
    params.append(c.key)
    exists = f"EXISTS (SELECT 1 FROM {view} k WHERE k.run_id = r.run_id AND k.key = ?"
    if c.op == "IS NULL":
        return f"NOT {exists})"
    if c.op == "IS NOT NULL":
        return f"{exists})"
    if c.entity == "metric":  # IEEE semantics: NaN only ever satisfies !=
        params.append(float(c.value))  # type: ignore[arg-type]
        if c.op == "!=":
            return f"{exists} AND (isnan(k.value) OR k.value != ?))"
        return f"{exists} AND NOT isnan(k.value) AND k.value {_OPS[c.op]} ?)"
    params.append(c.value)
    return f"{exists} AND k.value {_OPS[c.op]} ?)"


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


def _order(order: Sequence[OrderBy], params: list[Any]) -> tuple[list[str], list[str]]:
    joins, keys = [], []
    for i, o in enumerate(order):
        direction = "ASC" if o.ascending else "DESC"
        if o.entity == "attribute":
            expr = f"r.{ATTRIBUTE_COLUMNS[o.key]}"
            keys += [f"({expr} IS NULL)", f"{expr} {direction}"]
            continue
        view = _KEYED_VIEWS[o.entity]
        alias = f"o{i}"
        joins.append(f"LEFT JOIN {view} {alias} ON {alias}.run_id = r.run_id AND {alias}.key = ?")
        params.append(o.key)
        expr = f"{alias}.value"
        keys.append(f"({expr} IS NULL)")
        if o.entity == "metric":
            keys.append(f"coalesce(isnan({expr}), FALSE)")
        keys.append(f"{expr} {direction}")
    return joins, keys


def render_search(filters: Sequence[Comparison], order_by: Sequence[OrderBy], experiment_ids: Sequence[str],
                  stages: Sequence[str], limit: int, offset: int) -> tuple[str, list[Any]]:
    """(sql, params) selecting the ids of one page of matching runs, in MLflow's order."""
    join_params: list[Any] = []
    joins, keys = _order(effective_run_order(order_by), join_params)
    where_params: list[Any] = list(experiment_ids) + list(stages)
    where = [
        f"r.experiment_id IN ({', '.join('?' for _ in experiment_ids)})",
        f"r.lifecycle_stage IN ({', '.join('?' for _ in stages)})",
    ]
    where += [_clause(c, where_params) for c in filters]
    sql = (f"SELECT r.run_id FROM runs r {' '.join(joins)} WHERE {' AND '.join(where)} "
           f"ORDER BY {', '.join(keys)} LIMIT ? OFFSET ?")
    return sql, join_params + where_params + [limit, offset]
