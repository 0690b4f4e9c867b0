"""search_runs, metric history and free SQL, answered by the query engine; search_experiments."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

import orjson

from evtrack.entities import PagedList, Run, RunData, RunInfo, RunInputs, ViewType
from evtrack.errors import InvalidParameterError
from evtrack.state.fold import DatasetInput as DatasetInputState
from evtrack.state.fold import State
from evtrack.query import search_grammar as grammar
from evtrack.query.nodes import Comparison, OrderBy
from evtrack.query.search_sql import render_indexed_search
from evtrack.read.views import (
    SEARCH_MAX_RESULTS_DEFAULT,
    check_max_results,
    dataset_inputs,
    decode_page_token,
    encode_page_token,
    experiment,
    page,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from evtrack.read.backend import Backend
    from evtrack.query.engine import Snapshot
    from evtrack.query.limits import SqlLimits
    from evtrack.query.run_index import RunIndex, TailRuns

_EXPLAIN_PREFIX = re.compile(r"\A\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?", re.IGNORECASE)


def engine_of(backend: "Backend"):
    """The backend's query engine (created on first use)."""
    if backend.engine is None:
        from evtrack.query.engine import QueryEngine

        backend.engine = QueryEngine(backend)
    return backend.engine


_PAGE = "(SELECT unnest(?::VARCHAR[]) AS run_id)"


def _runs(snap: "Snapshot", index: "RunIndex", tail: "TailRuns | None", rids: Sequence[int]) -> list[Run]:
    """The ``Run`` entities of search rows, from the run documents of the index and the tail."""
    size = index.size
    if tail is None:
        rows = index.docs.rows(list(rids))
    else:
        base_rows = iter(index.docs.rows([rid for rid in rids if rid < size]))
        tail_rows = iter(tail.docs.rows([rid - size for rid in rids if rid >= size]))
        rows = [next(base_rows) if rid < size else next(tail_rows) for rid in rids]
    out = [
        Run(RunInfo(*fields), RunData(metrics.copy(), params.copy(), tags.copy()))
        for fields, metrics, params, tags in rows
    ]
    deleted = snap.deleted_experiments()
    if deleted:
        for run in out:
            if run.info.experiment_id in deleted:
                run.info.lifecycle_stage = "deleted"
    if out and (index.docs.has_inputs or (tail is not None and tail.docs.has_inputs)):
        _add_inputs(snap, out)
    return out


def _add_inputs(snap: "Snapshot", runs: list[Run]) -> None:
    """Set the dataset inputs of runs that have some."""
    inputs: dict[str, list] = {}
    for row in snap.rows(
        "SELECT run_id, name, digest, source_type, source, schema, profile, context, "
        f"tags, ts, eid FROM all_inputs SEMI JOIN {_PAGE} page USING (run_id)",
        [[run.info.run_id for run in runs]],
    ):
        rid, name, digest, source_type, source, schema, profile, context, tags, ts, eid = row
        inputs.setdefault(rid, []).append(
            DatasetInputState(
                name, digest, source_type, source, schema, profile, context, orjson.loads(tags), (ts, eid)
            )
        )
    for run in runs:
        found = inputs.get(run.info.run_id)
        if found:
            run.inputs = RunInputs(dataset_inputs(found))


def search_rids(
    snap: "Snapshot",
    filters: Sequence[Comparison],
    orders: Sequence[OrderBy],
    experiment_ids: Sequence[str],
    stages: Sequence[str],
    limit: int,
    offset: int,
) -> "tuple[list[int], RunIndex, TailRuns | None]":
    """The search rows of one page of matching runs, with the index and tail they refer to."""
    deleted = snap.deleted_experiments()
    with snap.lock:
        index, tail = snap.search_scope()
        codes = tail.experiment_codes if tail is not None else index.experiment_codes
        wanted = [e for e in dict.fromkeys(experiment_ids) if e in codes]
        live = [codes[e] for e in wanted if e not in deleted]
        dead = [codes[e] for e in wanted if e in deleted]
        if not live and not dead:
            return [], index, tail
        sql, params = render_indexed_search(
            filters,
            orders,
            live,
            dead,
            stages,
            lambda entity, key: index.column(snap.con, entity, key),
            tail.name if tail is not None else None,
            limit,
            offset,
        )
        return [row[0] for row in snap.con.execute(sql, params).fetchall()], index, tail


def search_runs(
    backend: "Backend",
    experiment_ids: Sequence[str],
    filter_string: str | None = None,
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
    version: int | None = None,
    fresh: bool = True,
    points: dict[str, dict[str, tuple[int, int]]] | None = None,
) -> PagedList:
    """One page of runs matching MLflow's filter grammar, in MLflow's order. Given a ``points``
    dict, it is filled with run_id -> metric key -> (step, timestamp) of the page's latest
    metric values (MLflow's REST answers carry them), from the same snapshot."""
    if isinstance(experiment_ids, (str, int)):
        experiment_ids = [experiment_ids]
    limit = check_max_results(max_results, SEARCH_MAX_RESULTS_DEFAULT)
    filters = grammar.parse_run_filter(filter_string)
    orders = grammar.parse_order_by(list(order_by) if order_by else None, kind="run")
    stages = ViewType.stages(run_view_type)
    offset = decode_page_token(page_token)
    ids = [str(e) for e in experiment_ids]
    if not ids:
        return PagedList([], None)
    import duckdb

    engine = engine_of(backend)
    snap = engine.snapshot(version, fresh)
    try:
        found, index, tail = search_rids(snap, filters, orders, ids, stages, limit + 1, offset)
    except duckdb.Error as exc:
        if not engine.drop_damaged(snap, exc):
            raise
        snap = engine.snapshot(version, fresh)  # built again, without the damaged file
        found, index, tail = search_rids(snap, filters, orders, ids, stages, limit + 1, offset)
    token = encode_page_token(offset + limit) if len(found) > limit else None
    rids = found[:limit]
    runs = PagedList(_runs(snap, index, tail, rids), token)
    if points is not None:
        points.update((run.info.run_id, p) for run, p in zip(runs, _points(index, tail, rids)) if p)
    return runs


def _points(index: "RunIndex", tail: "TailRuns | None", rids: Sequence[int]) -> list[dict[str, tuple[int, int]]]:
    """``key -> (step, timestamp)`` of each searched run's latest metrics, from the same snapshot."""
    size = index.size
    if tail is None:
        return index.docs.points(list(rids))
    base = iter(index.docs.points([rid for rid in rids if rid < size]))
    added = iter(tail.docs.points([rid - size for rid in rids if rid >= size]))
    return [next(base) if rid < size else next(added) for rid in rids]


def run_sql(
    backend: "Backend",
    query: str,
    params: Sequence[Any] | None = None,
    version: int | None = None,
    fresh: bool = True,
    limits: "SqlLimits | None" = None,
) -> "pa.Table":
    """Run one read-only SELECT over the documented views under ``limits`` (default: the
    environment's, see ``evtrack.query.limits``); returns an Arrow table."""
    import duckdb

    from evtrack.query.limits import SqlLimits, run_limited

    if not isinstance(query, str) or not query.strip():
        raise InvalidParameterError("sql() needs a SELECT statement")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidParameterError(f"SQL syntax error: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise InvalidParameterError(f"sql() runs exactly one statement, got {len(statements)}")
    if statements[0].type not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
        raise InvalidParameterError(
            f"sql() is read-only: only SELECT queries are allowed (got {statements[0].type.name})"
        )
    if statements[0].type == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE executes its statement ("EXPLAIN ANALYZE DROP VIEW runs" would break
        # the cached snapshot): only a plain EXPLAIN [ANALYZE] of one SELECT is allowed.
        inner = _EXPLAIN_PREFIX.sub("", query, count=1)
        try:
            inner_statements = duckdb.extract_statements(inner)
        except duckdb.Error:
            inner_statements = []
        if len(inner_statements) != 1 or inner_statements[0].type != duckdb.StatementType.SELECT:
            raise InvalidParameterError("sql() is read-only: only EXPLAIN [ANALYZE] of a SELECT is allowed")
    limits = (limits or SqlLimits.from_env()).started()  # the time limit covers the snapshot too
    engine = engine_of(backend)
    return run_limited(lambda: engine.snapshot(version, fresh), query, list(params or []), limits)


def search_experiments(
    state: State,
    view_type: int,
    max_results: int | None,
    filter_string: str | None,
    order_by: list[str] | None,
    page_token: str | None,
) -> PagedList:
    """Experiments matching MLflow's experiment filter, ordered and paged as MLflow does."""
    stages = ViewType.stages(view_type)
    limit = check_max_results(max_results)
    clauses = grammar.parse_experiment_filter(filter_string)
    orders = grammar.parse_order_by(order_by, kind="experiment")
    found = []
    for st in state.experiments.values():
        if not st.exists or st.lifecycle_stage not in stages:
            continue
        exp = experiment(st)
        if grammar.match_experiment(clauses, exp.name, exp.creation_time or 0, exp.last_update_time or 0, exp.tags):
            found.append(exp)
    found.sort(key=grammar.experiment_sort_key(orders))
    return page(found, limit, page_token)
