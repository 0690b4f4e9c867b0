"""``evtrack server`` and ``evtrack ui``: the tracking server with MLflow's REST API and the web UI."""

from __future__ import annotations

import click

from evtrack.cli.options import Duration, resolve_uri
from evtrack.server.config import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_ARTIFACT_BYTES,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_REQUEST_BYTES,
)


def _server_options(f):
    options = [
        click.option(
            "--backend-store-uri",
            "backend_store_uri",
            default=None,
            metavar="URI",
            help="The store to serve: a directory or s3:// URI (default: $EVTRACK_TRACKING_URI or ./evtrack-store).",
        ),
        click.option(
            "--default-artifact-root",
            default=None,
            metavar="URI",
            help="Where experiments created through the server keep artifacts (default: <store>/artifacts).",
        ),
        click.option(
            "--serve-artifacts/--no-serve-artifacts",
            default=True,
            show_default=True,
            help="Proxy artifact uploads and downloads through the server, so clients "
            "need no credentials for the artifact store.",
        ),
        click.option(
            "-h",
            "--host",
            default="127.0.0.1",
            show_default=True,
            help="Address to listen on (0.0.0.0 to accept connections from other machines).",
        ),
        click.option(
            "-p", "--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
        ),
        click.option(
            "-w", "--workers", default=1, show_default=True, type=click.IntRange(1), help="Number of server processes."
        ),
        click.option(
            "--auth-file",
            default=None,
            type=click.Path(dir_okay=False, exists=True),
            help="YAML file of users and tokens with their roles (also $EVTRACK_AUTH_FILE, "
            "$EVTRACK_AUTH_USERS, $EVTRACK_AUTH_TOKENS); without any, no authentication.",
        ),
        click.option(
            "--max-request-size",
            default=DEFAULT_MAX_REQUEST_BYTES,
            show_default=True,
            type=click.IntRange(1024),
            metavar="BYTES",
            help="Largest REST or form request body.",
        ),
        click.option(
            "--max-artifact-size",
            default=DEFAULT_MAX_ARTIFACT_BYTES,
            show_default=True,
            type=click.IntRange(1),
            metavar="BYTES",
            help="Largest proxied artifact upload.",
        ),
        click.option(
            "--compact-every",
            type=Duration(),
            default=60.0,
            show_default="60s",
            metavar="DURATION",
            help="Compact the store every DURATION from the server (0 to leave it to 'evtrack compact').",
        ),
        click.option(
            "--sql-timeout",
            type=Duration(),
            default=30.0,
            envvar="EVTRACK_SQL_TIMEOUT",
            show_default="30s",
            metavar="DURATION",
            help="Time limit of one query on the SQL page (0 for none; also $EVTRACK_SQL_TIMEOUT).",
        ),
        click.option(
            "--max-concurrent-requests",
            type=click.IntRange(0),
            default=DEFAULT_MAX_CONCURRENT_REQUESTS,
            show_default=True,
            metavar="N",
            help="Requests one server process works on at once; more are answered 429 (0 for no limit).",
        ),
        click.option(
            "--body-timeout",
            type=Duration(),
            default=DEFAULT_BODY_TIMEOUT,
            show_default="60s",
            metavar="DURATION",
            help="Time a client has to send a request body before it is answered 408 (0 for none).",
        ),
        click.option(
            "--write-check-ttl",
            type=Duration(),
            default=1.0,
            show_default="1s",
            metavar="DURATION",
            help="How long a worker trusts that a run is writable before a write checks the store again "
            "(a run deleted by another worker or process stops taking writes within it).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _run(
    backend_store_uri,
    default_artifact_root,
    serve_artifacts,
    host,
    port,
    workers,
    auth_file,
    max_request_size,
    max_artifact_size,
    compact_every,
    sql_timeout,
    max_concurrent_requests,
    body_timeout,
    write_check_ttl,
) -> None:
    from evtrack.server.app import serve
    from evtrack.server.config import ServerConfig

    config = ServerConfig(
        tracking_uri=resolve_uri(backend_store_uri),
        default_artifact_root=default_artifact_root,
        serve_artifacts=serve_artifacts,
        auth_file=auth_file,
        max_request_bytes=max_request_size,
        max_artifact_bytes=max_artifact_size,
        compact_every=compact_every or None,
        sql_timeout=sql_timeout or None,
        max_concurrent_requests=max_concurrent_requests or None,
        body_timeout=body_timeout or None,
        write_check_ttl=write_check_ttl,
    )
    click.echo(f"evtrack {config.tracking_uri} on http://{host}:{port} (Ctrl+C to stop)", err=True)
    serve(config, host=host, port=port, workers=workers)


@click.command()
@_server_options
def server(**options) -> None:
    """Run the tracking server: MLflow's REST API and the web UI.

    MLflow's own client works against it with MLFLOW_TRACKING_URI=http://HOST:PORT;
    every write becomes an event in the store's log. Bound to 127.0.0.1 unless
    --host says otherwise; add --auth-file for users and tokens.

    Example:

        evtrack server --backend-store-uri s3://ml-bucket/tracking --host 0.0.0.0 --auth-file users.yaml
    """
    _run(**options)


@click.command()
@_server_options
def ui(**options) -> None:
    """Open the web UI on the local store (the same server as 'evtrack server').

    Example:

        evtrack ui --port 5000
    """
    _run(**options)


def register(cli: click.Group) -> None:
    """Add the server commands to the top-level group."""
    cli.add_command(server)
    cli.add_command(ui)
