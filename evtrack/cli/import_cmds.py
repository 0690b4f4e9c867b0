"""``evtrack import``: copy an MLflow tracking store into an evtrack store."""

from __future__ import annotations

import sys

import click

from evtrack.cli.options import resolve_uri


@click.command(name="import")
@click.argument("source")
@click.argument("dest", required=False, metavar="[STORE]")
@click.option(
    "--tracking-uri",
    default=None,
    metavar="URI",
    help="evtrack store to import into (also the STORE argument; default: $EVTRACK_TRACKING_URI or ./evtrack-store).",
)
@click.option("--quiet", is_flag=True, help="No progress bar; only the summary.")
def import_(source: str, dest: str | None, tracking_uri: str | None, quiet: bool) -> None:
    """Copy everything from an MLflow tracking store into an evtrack store.

    SOURCE is an MLflow tracking URI: sqlite:///mlflow.db, postgresql://…, an mlruns
    directory, or http(s):// of an MLflow server. Experiments, runs (params, tags, the whole
    metric history, dataset inputs, artifacts) and the model registry are copied, read through
    MLflow's own client (pip install 'evtrack[import]'). Running it again copies only what is
    new or changed; an interrupted import resumes. Traces, prompts and logged models are not
    copied; the summary counts them.

    Example:

        evtrack import sqlite:///mlflow.db ./evtrack-store
    """
    from evtrack.client import MlflowClient
    from evtrack.importer import import_store

    if dest and tracking_uri and dest != tracking_uri:
        raise click.UsageError("give the store once: as STORE or as --tracking-uri")
    client = MlflowClient(resolve_uri(dest or tracking_uri))
    summary = import_store(source, client, progress=None if quiet else sys.stderr)
    for line in summary.lines():
        click.echo(line)


def register(cli: click.Group) -> None:
    """Add the command to the ``evtrack`` group."""
    cli.add_command(import_)
