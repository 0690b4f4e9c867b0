"""The ``evtrack`` command line: thin click commands over the library."""

from __future__ import annotations

import sys

import click

from evtrack.errors import EvtrackError


class EvtrackGroup(click.Group):
    """A click group that turns evtrack errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EvtrackError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            sys.exit(1)


@click.group(cls=EvtrackGroup)
@click.version_option(package_name="evtrack")
def cli() -> None:
    """evtrack: experiment tracking on an event log in object storage.

    The store is taken from --tracking-uri where a command has it, else from
    EVTRACK_TRACKING_URI, else ./evtrack-store.
    """


@cli.command()
@click.option("--tracking-uri", default=None, metavar="URI",
              help="Store to use (default: $EVTRACK_TRACKING_URI or ./evtrack-store).")
def quickstart(tracking_uri: str | None) -> None:
    """Track a small hyper-parameter sweep, compact it and print the best runs.

    Example:

        evtrack quickstart
    """
    from evtrack.quickstart import main as run_quickstart

    run_quickstart(tracking_uri)


def _register() -> None:
    from evtrack.cli import compaction_cmds

    compaction_cmds.register(cli)


_register()


def main() -> None:
    """Entry point of the ``evtrack`` console script."""
    cli(prog_name="evtrack")
