"""``evtrack sql`` (free read-only SQL over the views) and ``evtrack search`` (MLflow's search_runs)."""

from __future__ import annotations

import sys
from typing import Any, Sequence

import click

from evtrack.cli.options import Duration, open_client, tracking_uri_option, view_option
from evtrack.cli.output import emit, format_option, ms_to_local
from evtrack.cli.runs_cmds import all_runs
from evtrack.entities import Run, RunInfo, ViewType
from evtrack.errors import ResourceNotFoundError

_PREFIXES = ("metrics", "params", "tags")
_INFO_COLUMNS = tuple(RunInfo.__slots__)
_FIXED = ("run_id", "run_name", "status")
_TIMES = ("start_time", "end_time")


@click.command()
@tracking_uri_option
@click.argument("query")
@format_option
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Query manifest version N as it was compacted (time travel; no tail).",
)
@click.option(
    "--fresh/--no-fresh",
    default=True,
    show_default=True,
    help="Include events not compacted yet (--no-fresh reads the newest manifest only).",
)
@click.option(
    "--timeout",
    type=Duration(),
    default=None,
    metavar="DURATION",
    help="Stop the query after DURATION (default: $EVTRACK_SQL_TIMEOUT, else no limit).",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Fail rather than print more than N rows (default: $EVTRACK_SQL_MAX_ROWS, else 1,000,000).",
)
def sql(
    tracking_uri: str | None,
    query: str,
    fmt: str,
    version: int | None,
    fresh: bool,
    timeout: float | None,
    max_rows: int | None,
) -> None:
    """Run one read-only SELECT over the views and print the result ("-" reads it from stdin).

    Views: experiments, experiment_tags, runs, params, tags, metrics,
    latest_metrics, artifacts, events and runs_wide (one column per
    "params.<key>", "metrics.<key>" and "tags.<key>").

    Example:

    \b
        evtrack sql 'SELECT "params.alpha", avg("metrics.rmse") AS rmse
                     FROM runs_wide GROUP BY 1 ORDER BY 2' --format csv
    """
    from evtrack.query.limits import SqlLimits
    from evtrack.query.search import run_sql

    if query == "-":
        query = sys.stdin.read()
    limits = SqlLimits.from_env().overriding(timeout, max_rows)
    client = open_client(tracking_uri)
    table = run_sql(client._backend, query, None, version, fresh, limits)
    columns = list(table.column_names)
    rows = list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns))))
    emit(columns, rows, fmt)


def _parse_columns(text: str | None) -> list[str] | None:
    if text is None:
        return None
    out: list[str] = []
    for raw in text.split(","):
        col = raw.strip()
        if not col or col in _FIXED or col in out:
            continue
        prefix, dot, key = col.partition(".")
        if not ((dot and key and prefix in _PREFIXES) or (not dot and col in _INFO_COLUMNS)):
            raise click.BadParameter(
                f"unknown column {col!r}: use metrics.KEY, params.KEY, tags.KEY or one of {', '.join(_INFO_COLUMNS)}",
                param_hint="'--columns'",
            )
        out.append(col)
    return out


def _experiment_ids(client: Any, names: Sequence[str], ids: Sequence[str]) -> list[str]:
    found: list[str] = []
    for name in names:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise ResourceNotFoundError(f"No experiment named {name!r}")
        found.append(exp.experiment_id)
    for experiment_id in ids:
        found.append(client.get_experiment(experiment_id).experiment_id)
    if not names and not ids:
        token = None
        while True:
            page = client.search_experiments(view_type=ViewType.ALL, page_token=token)
            found.extend(e.experiment_id for e in page)
            token = page.token
            if token is None:
                break
    return list(dict.fromkeys(found))


def _value(run: Run, column: str, human: bool) -> Any:
    prefix, _, key = column.partition(".")
    if prefix in _PREFIXES and key:
        return getattr(run.data, prefix).get(key)
    value = getattr(run.info, column)
    return ms_to_local(value) if human and column in _TIMES else value


@click.command()
@tracking_uri_option
@click.option(
    "--experiment",
    "experiment_names",
    multiple=True,
    metavar="NAME",
    help="Experiment to search, by name (repeatable).",
)
@click.option(
    "--experiment-id",
    "experiment_ids",
    multiple=True,
    metavar="ID",
    help="Experiment to search, by id (repeatable). Default: every experiment.",
)
@click.option(
    "--filter",
    "filter_string",
    default="",
    metavar="FILTER",
    help="MLflow filter, e.g. \"metrics.rmse < 1 and params.model = 'lasso'\".",
)
@click.option(
    "--order-by",
    "order_by",
    multiple=True,
    metavar="CLAUSE",
    help='e.g. "metrics.rmse ASC" (repeatable). Default: newest first.',
)
@click.option(
    "--max-results",
    "max_results",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Print at most this many runs.",
)
@view_option
@format_option
@click.option(
    "--columns",
    "columns",
    default=None,
    metavar="COLS",
    help="Comma-separated columns after run_id, run_name, status, e.g. metrics.rmse,params.alpha "
    "(default: every metric and param).",
)
def search(
    tracking_uri: str | None,
    experiment_names: tuple[str, ...],
    experiment_ids: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    view_type: int,
    fmt: str,
    columns: str | None,
) -> None:
    """Search runs with MLflow's filter grammar and print them, one row per run.

    Example:

    \b
        evtrack search --experiment nyc-taxi --filter "params.model = 'lasso'" \\
            --order-by "metrics.rmse ASC" --max-results 10 --columns metrics.rmse,params.alpha
    """
    chosen = _parse_columns(columns)
    client = open_client(tracking_uri)
    ids = _experiment_ids(client, experiment_names, experiment_ids)
    found = all_runs(client, ids, filter_string, view_type, list(order_by) or None, max_results)
    if chosen is None:
        chosen = [
            f"{prefix}.{key}"
            for prefix in ("metrics", "params")
            for key in sorted({k for r in found for k in getattr(r.data, prefix)})
        ]
    header = list(_FIXED) + chosen
    human = fmt == "table"
    emit(header, [[_value(r, c, human) for c in header] for r in found], fmt)


def register(cli: click.Group) -> None:
    """Add these commands to the ``evtrack`` group."""
    cli.add_command(sql)
    cli.add_command(search)
