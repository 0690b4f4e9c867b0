"""``evtrack runs list|describe|delete|restore``, as MLflow's ``mlflow runs``."""

from __future__ import annotations

from typing import Any, Sequence

import click

from evtrack.cli.options import open_client, tracking_uri_option, view_option
from evtrack.cli.output import dumps, emit, flush_or_warn, format_option, ms_to_local
from evtrack.entities import Run, ViewType

PAGE = 50_000


def all_runs(
    client: Any,
    experiment_ids: Sequence[str],
    filter_string: str = "",
    view_type: int = ViewType.ACTIVE_ONLY,
    order_by: Sequence[str] | None = None,
    max_results: int | None = None,
) -> list[Run]:
    """Every run matching a search (up to ``max_results``), fetched page by page."""
    runs: list[Run] = []
    token = None
    while max_results is None or len(runs) < max_results:
        size = PAGE if max_results is None else min(PAGE, max_results - len(runs))
        page = client.search_runs(list(experiment_ids), filter_string, view_type, size, order_by, token)
        runs.extend(page)
        token = page.token
        if token is None:
            break
    return runs


@click.group()
def runs() -> None:
    """List, describe, delete and restore runs.

    Example:

        evtrack runs list --experiment-id 1
    """


@runs.command("list")
@tracking_uri_option
@click.option("--experiment-id", "experiment_id", required=True, help="Experiment whose runs to list.")
@view_option
@format_option
def list_runs(tracking_uri: str | None, experiment_id: str, view_type: int, fmt: str) -> None:
    """List the runs of an experiment, newest first: run id, name, status, start time.

    Example:

        evtrack runs list --experiment-id 1 --view all
    """
    client = open_client(tracking_uri)
    client.get_experiment(experiment_id)  # a clear error for an unknown id
    found = all_runs(client, [experiment_id], view_type=view_type)
    columns = ["run_id", "name", "status", "start_time"]
    human = fmt == "table"
    rows = [
        [r.info.run_id, r.info.run_name, r.info.status, ms_to_local(r.info.start_time) if human else r.info.start_time]
        for r in found
    ]
    emit(columns, rows, fmt)


@runs.command("describe")
@tracking_uri_option
@click.option("--run-id", "run_id", required=True, help="Run to describe.")
def describe(tracking_uri: str | None, run_id: str) -> None:
    """Print a run as JSON: its info (id, name, status, times, ...) and data (metrics, params, tags).

    Example:

        evtrack runs describe --run-id 0f5b3dc1311498b84832e8c93ed516b1
    """
    run = open_client(tracking_uri).get_run(run_id)
    click.echo(dumps(run.to_dictionary(), indent=4))


@runs.command("delete")
@tracking_uri_option
@click.option("--run-id", "run_id", required=True, help="Run to delete.")
def delete(tracking_uri: str | None, run_id: str) -> None:
    """Mark a run deleted ("runs restore" brings it back).

    Example:

        evtrack runs delete --run-id 0f5b3dc1311498b84832e8c93ed516b1
    """
    client = open_client(tracking_uri)
    client.delete_run(run_id)
    flush_or_warn(client)
    click.echo(f"Run with ID {run_id} has been deleted.")


@runs.command("restore")
@tracking_uri_option
@click.option("--run-id", "run_id", required=True, help="Run to restore.")
def restore(tracking_uri: str | None, run_id: str) -> None:
    """Bring a deleted run back.

    Example:

        evtrack runs restore --run-id 0f5b3dc1311498b84832e8c93ed516b1
    """
    client = open_client(tracking_uri)
    client.restore_run(run_id)
    flush_or_warn(client)
    click.echo(f"Run with ID {run_id} has been restored.")


def register(cli: click.Group) -> None:
    """Add these commands to the ``evtrack`` group."""
    cli.add_command(runs)
