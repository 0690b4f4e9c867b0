"""``evtrack artifacts list|download|log-artifact``, as MLflow's ``mlflow artifacts``."""

from __future__ import annotations

import click

from evtrack.cli.options import open_client, tracking_uri_option
from evtrack.cli.output import emit, flush_or_warn, format_option


def _run_id_option(f):
    return click.option("-r", "--run-id", "run_id", required=True, help="Run whose artifacts to use.")(f)


@click.group()
def artifacts() -> None:
    """List, download and upload the artifacts of runs.

    Example:

        evtrack artifacts list -r 0f5b3dc1311498b84832e8c93ed516b1
    """


@artifacts.command("list")
@tracking_uri_option
@_run_id_option
@click.option(
    "-a",
    "--artifact-path",
    "artifact_path",
    default=None,
    metavar="PATH",
    help="Directory inside the run's artifacts (default: the root).",
)
@format_option
def list_artifacts(tracking_uri: str | None, run_id: str, artifact_path: str | None, fmt: str) -> None:
    """List the files and directories directly under a path of a run's artifacts.

    Example:

        evtrack artifacts list -r 0f5b3dc1311498b84832e8c93ed516b1 -a model
    """
    infos = open_client(tracking_uri).list_artifacts(run_id, artifact_path)
    emit(["path", "is_dir", "file_size"], [[f.path, f.is_dir, f.file_size] for f in infos], fmt)


@artifacts.command("download")
@tracking_uri_option
@_run_id_option
@click.option(
    "-a",
    "--artifact-path",
    "artifact_path",
    default="",
    metavar="PATH",
    help="File or directory to download (default: every artifact of the run).",
)
@click.option(
    "-d",
    "--dst-path",
    "dst_path",
    default=None,
    type=click.Path(file_okay=False),
    help="Local directory to download into (default: a new temporary directory).",
)
def download(tracking_uri: str | None, run_id: str, artifact_path: str, dst_path: str | None) -> None:
    """Download a run's artifact file or directory and print its local path.

    Example:

        evtrack artifacts download -r 0f5b3dc1311498b84832e8c93ed516b1 -a model -d ./model
    """
    click.echo(open_client(tracking_uri).download_artifacts(run_id, artifact_path, dst_path))


@artifacts.command("log-artifact")
@tracking_uri_option
@click.option("-l", "--local-file", "local_file", required=True, help="Local file to upload.")
@_run_id_option
@click.option(
    "-a",
    "--artifact-path",
    "artifact_path",
    default=None,
    metavar="PATH",
    help="Directory inside the run's artifacts to put it in (default: the root).",
)
def log_artifact(tracking_uri: str | None, local_file: str, run_id: str, artifact_path: str | None) -> None:
    """Upload a local file into a run's artifacts.

    Example:

        evtrack artifacts log-artifact -l report.html -r 0f5b3dc1311498b84832e8c93ed516b1 -a reports
    """
    client = open_client(tracking_uri)
    client.log_artifact(run_id, local_file, artifact_path)
    flush_or_warn(client)
    click.echo(f"Logged artifact from local file {local_file} to artifact_path={artifact_path}")


def register(cli: click.Group) -> None:
    """Add these commands to the ``evtrack`` group."""
    cli.add_command(artifacts)
