"""``evtrack run``: run a project (a directory or git repository with an MLproject file)."""

from __future__ import annotations

import sys

import click


def _parse_params(values: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not of the form key=value", param_hint="'-P'")
        if key in params:
            raise click.BadParameter(f"parameter {key!r} is given twice", param_hint="'-P'")
        params[key] = value
    return params


@click.command("run")
@click.argument("uri")
@click.option(
    "-e",
    "--entry-point",
    default="main",
    show_default=True,
    metavar="NAME",
    help="Entry point of the MLproject, or a .py/.sh file of the project.",
)
@click.option(
    "-v", "--version", default=None, metavar="VERSION", help="Git commit, branch or tag to run (git projects)."
)
@click.option(
    "-P",
    "--param-list",
    "param_list",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter of the entry point; repeat for several.",
)
@click.option("--experiment-name", default=None, help="Experiment to run in (created when missing).")
@click.option("--experiment-id", default=None, help="Experiment id to run in.")
@click.option("--run-name", default=None, help="Name of the run.")
@click.option(
    "--env-manager",
    type=click.Choice(["local", "virtualenv"]),
    default=None,
    help="local: the current environment; virtualenv: a cached venv built from python_env.yaml "
    "(the default for projects that declare one).",
)
@click.option(
    "--tracking-uri",
    default=None,
    metavar="URI",
    help="Store to use (default: $EVTRACK_TRACKING_URI or ./evtrack-store).",
)
def run_project(
    uri: str,
    entry_point: str,
    version: str | None,
    param_list: tuple[str, ...],
    experiment_name: str | None,
    experiment_id: str | None,
    run_name: str | None,
    env_manager: str | None,
    tracking_uri: str | None,
) -> None:
    """Run a project: URI is a directory or git URI with an MLproject file (URI#subdir for a sub-directory).

    Creates a run with the parameters and project tags, runs the entry point's command with the run
    attached (the command's evtrack.start_run() joins it) and ends it FINISHED or FAILED by its exit status.

    Example:

        evtrack run examples/taxi-regression -P alpha=0.5 --env-manager local --experiment-name taxi
    """
    from evtrack.projects import run

    submitted = run(
        uri,
        entry_point=entry_point,
        version=version,
        parameters=_parse_params(param_list),
        experiment_name=experiment_name,
        experiment_id=experiment_id,
        run_name=run_name,
        env_manager=env_manager,
        tracking_uri=tracking_uri,
        synchronous=False,
    )
    from evtrack.projects.runner import _forward_signals

    with _forward_signals(submitted):
        ok = submitted.wait()
    status = submitted.get_status()
    click.echo(f"evtrack: run {submitted.run_id} {status}", err=True)
    if not ok:
        code = submitted.returncode
        sys.exit(code if isinstance(code, int) and 0 < code < 256 else 1)


def register(cli: click.Group) -> None:
    """Add ``run`` to the top-level group."""
    cli.add_command(run_project)
