"""An experiment's page (its runs table with search, order, paging) and its CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from evtrack.entities import PagedList, Run
from evtrack.errors import InvalidParameterError
from evtrack.server.ui import queries
from evtrack.server.ui.render import format_time, page, render
from evtrack.server.ui.runs_table import INFO_COLUMNS, Column, RunsQuery, default_columns, is_system_tag
from evtrack.read.views import decode_page_token, encode_page_token

CSV_PAGE = 5000
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@page
def experiment_page(request):
    """``/experiments/{id}``: one page of the experiment's runs."""
    client = request.app.state.client
    experiment = client.get_experiment(request.path_params["experiment_id"])
    path = f"/experiments/{experiment.experiment_id}"
    message = None
    try:
        query = RunsQuery.from_request(request)
    except InvalidParameterError as exc:
        query, message = RunsQuery(filter=request.query_params.get("filter") or ""), exc.message
    runs: PagedList = PagedList([], None)
    if message is None:
        try:
            runs = client.search_runs(
                [experiment.experiment_id],
                query.filter,
                query.view_type,
                query.max_results,
                query.order_list,
                query.page_token,
            )
        except InvalidParameterError as exc:
            message = exc.message
    columns = query.columns or default_columns(runs, query.show_tags)
    offset = decode_page_token(query.page_token) if message is None else 0
    prev_url = None
    if offset > 0:
        prev_offset = max(0, offset - query.max_results)
        prev_url = query.url(path, page_token=encode_page_token(prev_offset) if prev_offset else None)
    return render(
        request,
        "experiment.html",
        status=400 if message else 200,
        title=experiment.name,
        experiment=experiment,
        runs=runs,
        query=query,
        columns=columns,
        path=path,
        info_columns=INFO_COLUMNS,
        message=message,
        first_index=offset + 1,
        next_url=query.url(path, page_token=runs.token) if runs.token else None,
        prev_url=prev_url,
        csv_url=query.url(f"{path}/runs.csv", page_token=None, max_results=None),
        tags_toggle_url=query.url(path, show_tags=None if query.show_tags else "1"),
        experiment_tags={k: v for k, v in sorted(experiment.tags.items()) if not is_system_tag(k)},
        description=experiment.tags.get("mlflow.note.content"),
    )


# -- CSV ---------------------------------------------------------------------------------------

_INFO_HEADER = [
    "run_id",
    "run_name",
    "experiment_id",
    "status",
    "user_id",
    "start_time",
    "end_time",
    "duration_s",
    "lifecycle_stage",
    "artifact_uri",
]


def _cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.match(value):
        return "'" + value
    return value


def _csv_row(run: Run, columns: list[Column]) -> list[Any]:
    info = run.info
    duration = (info.end_time - info.start_time) / 1000 if info.start_time and info.end_time else ""
    row = [
        info.run_id,
        info.run_name,
        info.experiment_id,
        info.status,
        info.user_id,
        format_time(info.start_time),
        format_time(info.end_time),
        duration,
        info.lifecycle_stage,
        info.artifact_uri,
    ]
    row += [col.value(run) for col in columns]
    return [_cell(v) if v is not None else "" for v in row]


def _csv_chunks(client, experiment_id: str, query: RunsQuery, columns: list[Column], first: PagedList) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(_INFO_HEADER + [c.name for c in columns])
    page_runs = first
    while True:
        for run in page_runs:
            writer.writerow(_csv_row(run, columns))
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if not page_runs.token:
            return
        page_runs = client.search_runs(
            [experiment_id], query.filter, query.view_type, CSV_PAGE, query.order_list, page_runs.token
        )


@page
def runs_csv(request):
    """``/experiments/{id}/runs.csv``: every run matching the page's filter and order, streamed."""
    from starlette.responses import StreamingResponse

    client = request.app.state.client
    experiment = client.get_experiment(request.path_params["experiment_id"])
    query = RunsQuery.from_request(request)
    first = client.search_runs(
        [experiment.experiment_id], query.filter, query.view_type, CSV_PAGE, query.order_list, None
    )  # a bad filter fails here, as an error page
    columns = query.columns or queries.experiment_keys(client, experiment.experiment_id)
    filename = f"runs-experiment-{experiment.experiment_id}.csv"
    return StreamingResponse(
        _csv_chunks(client, experiment.experiment_id, query, columns, first),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def routes() -> list:
    """The experiment page and its CSV export."""
    from starlette.routing import Route

    return [
        Route("/experiments/{experiment_id}", experiment_page, methods=["GET"]),
        Route("/experiments/{experiment_id}/runs.csv", runs_csv, methods=["GET"]),
    ]
