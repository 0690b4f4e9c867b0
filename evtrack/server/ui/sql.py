"""The SQL page: one read-only query over the served store, as ``evtrack.sql`` runs it.

The query goes through the same function as ``evtrack.sql`` (one SELECT, in the
locked DuckDB snapshot: no files, no network, no other databases). Only the first
rows are fetched: a plain SELECT is wrapped in ``SELECT * FROM (…) LIMIT n``
(the wrapped text is checked again as one SELECT); a query that cannot be
wrapped runs as written and is cut afterwards.
"""

from __future__ import annotations

from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.server.rest.protocol import read_body
from evtrack.server.ui.forms import check_same_origin, parse_form
from evtrack.server.ui.render import error_page, page, render

MAX_ROWS = 1000
MAX_QUERY_CHARS = 100_000
EXAMPLES = (
    "SELECT run_id, run_name, status, start_time FROM runs ORDER BY start_time DESC LIMIT 20",
    'SELECT "params.alpha", avg("metrics.rmse") AS rmse FROM runs_wide GROUP BY 1 ORDER BY 2',
    "SELECT key, count(*) AS points FROM metrics GROUP BY key ORDER BY points DESC",
    "SELECT name, version, current_stage, run_id FROM model_versions",
)


def _is_select(query: str) -> bool:
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error:
        return False
    return len(statements) == 1 and statements[0].type == duckdb.StatementType.SELECT


def run_query(backend: Any, query: str, max_rows: int = MAX_ROWS, timeout: float | None = None):
    """(column names, rows as tuples, whether more rows exist) of one read-only query, stopped
    after ``timeout`` seconds (None: the environment's limit, see ``evtrack.query.limits``)."""
    from evtrack.query.limits import QueryLimitError, SqlLimits
    from evtrack.query.search import run_sql

    limits = SqlLimits.from_env().overriding(timeout=timeout).started()  # one limit for both tries
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidParameterError(f"The query is over {MAX_QUERY_CHARS:,} characters")
    table = None
    if _is_select(query):
        body = query.rstrip().rstrip(";")
        try:
            table = run_sql(backend, f"SELECT * FROM (\n{body}\n) LIMIT {max_rows + 1}", limits=limits)
        except QueryLimitError:
            raise  # the query itself ran into a limit: running it again would only double the wait
        except InvalidParameterError:
            table = None  # e.g. a trailing comment after ';': run it as written, for its own message
    if table is None:
        table = run_sql(backend, query, limits=limits)
    more = table.num_rows > max_rows
    table = table.slice(0, max_rows)
    columns = table.column_names
    data = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return columns, list(zip(*data)) if data else [], more


def _cell(value: Any) -> tuple[str, bool]:
    """(text, whether it is a number) of one result value."""
    if value is None:
        return "NULL", False
    if isinstance(value, bool):
        return str(value).lower(), False
    if isinstance(value, float):
        return f"{value:.10g}", True
    return str(value), isinstance(value, int)


def _page(request, query: str):
    message = columns = rows = None
    more = False
    if query.strip():
        try:
            timeout = request.app.state.config.sql_timeout or 0
            columns, raw_rows, more = run_query(request.app.state.client._backend, query, timeout=timeout)
            rows = [[_cell(v) for v in row] for row in raw_rows]
        except InvalidParameterError as exc:
            message = exc.message
    return render(
        request,
        "sql.html",
        status=400 if message else 200,
        title="SQL",
        query=query,
        columns=columns,
        rows=rows,
        more=more,
        message=message,
        max_rows=MAX_ROWS,
        examples=EXAMPLES,
    )


@page
def sql_get(request):
    """``GET /sql?q=…``: the query form, and the result of ``q`` when given."""
    return _page(request, request.query_params.get("q") or "")


@page
def _sql_posted(request):
    return _page(request, request.state.sql_form.get("q", ""))


async def sql_post(request):
    """``POST /sql`` (form field ``q``): the same, for long queries (reads only, same origin)."""
    from evtrack.errors import EvtrackError

    try:
        check_same_origin(request)
        request.state.sql_form = parse_form(await read_body(request, request.app.state.config.max_request_bytes))
    except EvtrackError as exc:
        return error_page(request, exc)
    return await _sql_posted(request)


def routes() -> list:
    """The SQL page."""
    from starlette.routing import Route

    return [Route("/sql", sql_get, methods=["GET"]), Route("/sql", sql_post, methods=["POST"])]
