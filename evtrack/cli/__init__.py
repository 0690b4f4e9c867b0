"""The ``evtrack`` command line: thin click commands over the library."""

from __future__ import annotations

import sys

import click

from evtrack.errors import EvtrackError


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


class OneLineUsageError(click.UsageError):
    """A click usage error shown as one ``Error: …`` line naming the command's --help."""

    def show(self, file=None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {_one_line(self.format_message())}{hint}", file=file, err=file is None)


def _one_line_usage(exc: click.UsageError) -> click.UsageError:
    if isinstance(exc, (OneLineUsageError, click.exceptions.NoArgsIsHelpError)):
        return exc  # a group called without a command prints its help, as click does
    short = OneLineUsageError(exc.format_message(), exc.ctx)
    short.exit_code = exc.exit_code
    return short


class EvtrackGroup(click.Group):
    """A click group that turns evtrack errors into one clear line and exit status 1.

    Usage errors (a missing option, a bad value) become one line too, with exit status 2.
    """

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _one_line_usage(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EvtrackError as exc:
            click.echo(f"Error: {_one_line(exc.message)}", err=True)
            sys.exit(1)
        except click.UsageError as exc:
            raise _one_line_usage(exc) from None


@click.group(cls=EvtrackGroup)
@click.version_option(package_name="evtrack")
def cli() -> None:
    """evtrack: experiment tracking on an event log in object storage.

    The store is taken from --tracking-uri where a command has it, else from
    EVTRACK_TRACKING_URI, else ./evtrack-store.
    """


@cli.command()
@click.option(
    "--tracking-uri",
    default=None,
    metavar="URI",
    help="Store to use (default: $EVTRACK_TRACKING_URI or ./evtrack-store).",
)
def quickstart(tracking_uri: str | None) -> None:
    """Track a small hyper-parameter sweep, compact it, print its best runs and the commands to try next.

    Example:

        evtrack quickstart
    """
    from evtrack.quickstart import main as run_quickstart

    run_quickstart(tracking_uri)


def _register() -> None:
    from evtrack.cli import artifacts_cmds, compaction_cmds, experiments_cmds, query_cmds, runs_cmds

    for module in (compaction_cmds, experiments_cmds, runs_cmds, artifacts_cmds, query_cmds):
        module.register(cli)
    from evtrack.cli import import_cmds, models_cmds, projects_cmds, serve_cmds, server_cmds

    projects_cmds.register(cli)
    server_cmds.register(cli)
    models_cmds.register(cli)
    serve_cmds.register(cli)
    import_cmds.register(cli)


_register()


# Commands whose process is a compaction's alone (compaction.process_setup: no pandas, the system allocator).
_WITHOUT_PANDAS = ("compact", "gc")


def main() -> None:
    """Entry point of the ``evtrack`` console script."""
    if sys.argv[1:2] and sys.argv[1] in _WITHOUT_PANDAS:  # the process is the command's alone
        from compaction.process_setup import setup_compaction_process

        setup_compaction_process()
    cli(prog_name="evtrack")
