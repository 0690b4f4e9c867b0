"""``evtrack experiments create|list|get|rename|delete|restore|csv``, as MLflow's ``mlflow experiments``."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import click

from evtrack.cli.options import open_client, tracking_uri_option, view_option
from evtrack.cli.output import dumps, emit, flush_or_warn, format_csv, format_option
from evtrack.cli.runs_cmds import all_runs
from evtrack.entities import Run, ViewType

_CSV_INFO = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")


def _experiment_id_option(f):
    return click.option(
        "-x", "--experiment-id", "experiment_id", required=True, metavar="ID", help="Id of the experiment."
    )(f)


@click.group()
def experiments() -> None:
    """Create, list, rename, delete and restore experiments; export their runs as CSV.

    Example:

        evtrack experiments create -n nyc-taxi
    """


@experiments.command("create")
@tracking_uri_option
@click.option("-n", "--experiment-name", "name", required=True, help="Name of the new experiment.")
@click.option(
    "-l",
    "--artifact-location",
    "artifact_location",
    default=None,
    metavar="URI",
    help="Where its runs' artifacts go (default: <store>/artifacts/<id>).",
)
def create(tracking_uri: str | None, name: str, artifact_location: str | None) -> None:
    """Create an experiment and print its id.

    Example:

        evtrack experiments create -n nyc-taxi -l s3://ml-bucket/artifacts/nyc-taxi
    """
    click.echo(open_client(tracking_uri).create_experiment(name, artifact_location))


@click.command("list")
@tracking_uri_option
@view_option
@format_option
def list_experiments(tracking_uri: str | None, view_type: int, fmt: str) -> None:
    """List experiments: id, name, lifecycle stage, artifact location (alias: search).

    Example:

    \b
        evtrack experiments list --view all
        evtrack experiments search --format json
    """
    client = open_client(tracking_uri)
    found, token = [], None
    while True:
        page = client.search_experiments(view_type=view_type, page_token=token)
        found.extend(page)
        token = page.token
        if token is None:
            break
    rows = [[e.experiment_id, e.name, e.lifecycle_stage, e.artifact_location] for e in found]
    emit(["experiment_id", "name", "lifecycle_stage", "artifact_location"], rows, fmt)


experiments.add_command(list_experiments, "list")
experiments.add_command(list_experiments, "search")


@experiments.command("get")
@tracking_uri_option
@_experiment_id_option
def get(tracking_uri: str | None, experiment_id: str) -> None:
    """Print an experiment as JSON (id, name, artifact location, stage, tags, times).

    Example:

        evtrack experiments get -x 1
    """
    exp = open_client(tracking_uri).get_experiment(experiment_id)
    keys = (
        "experiment_id",
        "name",
        "artifact_location",
        "lifecycle_stage",
        "tags",
        "creation_time",
        "last_update_time",
    )
    click.echo(dumps({k: getattr(exp, k) for k in keys}, indent=4))


@experiments.command("rename")
@tracking_uri_option
@_experiment_id_option
@click.option("--new-name", "new_name", required=True, help="The new name.")
def rename(tracking_uri: str | None, experiment_id: str, new_name: str) -> None:
    """Give an active experiment a new name.

    Example:

        evtrack experiments rename -x 1 --new-name nyc-taxi-2024
    """
    client = open_client(tracking_uri)
    client.rename_experiment(experiment_id, new_name)
    flush_or_warn(client)
    click.echo(f"Experiment with id {experiment_id} has been renamed to '{new_name}'.")


@experiments.command("delete")
@tracking_uri_option
@_experiment_id_option
def delete(tracking_uri: str | None, experiment_id: str) -> None:
    """Mark an experiment (and so its runs) deleted; "restore" brings it back.

    Example:

        evtrack experiments delete -x 1
    """
    client = open_client(tracking_uri)
    client.delete_experiment(experiment_id)
    flush_or_warn(client)
    click.echo(f"Experiment with ID {experiment_id} has been deleted.")


@experiments.command("restore")
@tracking_uri_option
@_experiment_id_option
def restore(tracking_uri: str | None, experiment_id: str) -> None:
    """Bring a deleted experiment back.

    Example:

        evtrack experiments restore -x 1
    """
    client = open_client(tracking_uri)
    client.restore_experiment(experiment_id)
    flush_or_warn(client)
    click.echo(f"Experiment with id {experiment_id} has been restored.")


def _utc_text(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(sep=" ", timespec="milliseconds")


def runs_csv(runs: list[Run]) -> str:
    """MLflow's ``experiments csv``: info columns, then metrics.*, params.*, tags.* (pandas optional)."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    else:
        from evtrack.tracking.fluent_search import runs_to_pandas

        return runs_to_pandas(runs).to_csv(index=False, lineterminator="\n")
    columns: list[str] = list(_CSV_INFO)
    getters: list[Any] = [
        lambda r, c=c: getattr(r.info, c) for c in ("run_id", "experiment_id", "status", "artifact_uri")
    ]
    getters += [lambda r: _utc_text(r.info.start_time), lambda r: _utc_text(r.info.end_time)]
    for prefix in ("metrics", "params", "tags"):
        for key in sorted({k for r in runs for k in getattr(r.data, prefix)}):
            columns.append(f"{prefix}.{key}")
            getters.append(lambda r, p=prefix, k=key: getattr(r.data, p).get(k))
    rows = [[_as_pandas_writes(get(r)) for get in getters] for r in runs]
    return format_csv(columns, rows)


def _as_pandas_writes(value: Any) -> Any:
    """Non-finite floats as pandas' ``to_csv`` writes them (NaN empty, ``inf``), so both paths agree."""
    if isinstance(value, float) and not math.isfinite(value):
        return "" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


@experiments.command("csv")
@tracking_uri_option
@_experiment_id_option
@click.option(
    "-o",
    "--filename",
    "filename",
    default=None,
    type=click.Path(dir_okay=False, writable=True),
    help="Write the CSV to this file (default: standard output).",
)
def csv_cmd(tracking_uri: str | None, experiment_id: str, filename: str | None) -> None:
    """Every active run of an experiment as CSV: info columns, then metrics.*, params.*, tags.*.

    Example:

        evtrack experiments csv -x 1 -o runs.csv
    """
    client = open_client(tracking_uri)
    client.get_experiment(experiment_id)  # a clear error for an unknown id
    text = runs_csv(all_runs(client, [experiment_id], view_type=ViewType.ACTIVE_ONLY))
    if filename is None:
        click.echo(text, nl=False)
    else:
        with open(filename, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)


def register(cli: click.Group) -> None:
    """Add these commands to the ``evtrack`` group."""
    cli.add_command(experiments)
