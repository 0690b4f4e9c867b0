"""``evtrack models register|list|versions|transition|alias``: the model registry from the shell.

The ``models`` group is shared: other modules add their commands to it (serving
adds ``serve`` and ``predict``). In ``evtrack/cli/serve_cmds.py``::

    from evtrack.cli.models_cmds import models, register_models_group

    @models.command("serve")
    @click.option("-m", "--model-uri", required=True)
    def serve(model_uri: str) -> None:
        ...  # help text with an "Example:" showing "evtrack models serve ..."

    def register(cli: click.Group) -> None:
        register_models_group(cli)  # idempotent: adds the group unless it is there

then list ``serve_cmds`` in ``_register`` of ``evtrack/cli/__init__.py`` and
document the commands in README.md (``tests/test_docs.py`` checks both).
"""

from __future__ import annotations

from typing import Any

import click

from evtrack.cli.options import open_client, tracking_uri_option
from evtrack.cli.output import emit, format_option, ms_to_local


def _name_option(f):
    return click.option("-n", "--name", "name", required=True, help="Name of the registered model.")(f)


def _version_option(f):
    return click.option("-v", "--version", "version", required=True, type=int, help="Version number.")(f)


def _parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = value
    return tags


@click.group()
def models() -> None:
    """Register models and manage their versions, stages and aliases.

    Example:

        evtrack models register -m runs:/<run_id>/model -n churn
    """


@models.command("register")
@tracking_uri_option
@click.option(
    "-m",
    "--model-uri",
    "model_uri",
    required=True,
    metavar="URI",
    help="The model: runs:/<run_id>/<path>, models:/<name>/<version>, a directory or s3:// URI.",
)
@_name_option
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag on the new version (repeatable).")
def register_cmd(tracking_uri: str | None, model_uri: str, name: str, tags: tuple[str, ...]) -> None:
    """Register a model as the next version of NAME (creating NAME when it is new).

    Example:

        evtrack models register -m runs:/0b3e5f3c9d2a4b6f8e1d7c5a3b9f2e4d/model -n churn --tag team=growth
    """
    from evtrack.registry.fluent import register_with

    version = register_with(open_client(tracking_uri), model_uri, name, _parse_tags(tags))
    click.echo(f"Registered model '{name}' version {version.version} ({version.source}).")


@models.command("list")
@tracking_uri_option
@click.option(
    "--filter",
    "filter_string",
    default=None,
    metavar="FILTER",
    help="MLflow's registered-model filter, e.g. \"name LIKE 'churn%'\" or \"tags.team = 'growth'\".",
)
@format_option
def list_cmd(tracking_uri: str | None, filter_string: str | None, fmt: str) -> None:
    """List registered models: name, newest version, aliases, last update, description.

    Example:

        evtrack models list --filter "name LIKE 'churn%'"
    """
    client = open_client(tracking_uri)
    found: list[Any] = []
    token = None
    while True:
        page = client.search_registered_models(filter_string, max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if token is None:
            break
    human = fmt == "table"
    rows = [
        [
            m.name,
            max((v.version for v in m.latest_versions), default=None),
            _aliases_text(m.aliases) if human else dict(m.aliases),
            ms_to_local(m.last_updated_timestamp) if human else m.last_updated_timestamp,
            m.description,
        ]
        for m in found
    ]
    emit(["name", "latest_version", "aliases", "last_updated", "description"], rows, fmt)


def _aliases_text(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a}={v}" for a, v in sorted(aliases.items()))


@models.command("versions")
@tracking_uri_option
@_name_option
@format_option
def versions_cmd(tracking_uri: str | None, name: str, fmt: str) -> None:
    """List the versions of a registered model, newest first: stage, aliases, source, run.

    Example:

        evtrack models versions -n churn --format json
    """
    client = open_client(tracking_uri)
    client.get_registered_model(name)  # a clear error for an unknown name
    found: list[Any] = []
    token = None
    while True:
        page = client.search_model_versions(
            f"name = {_quoted(name)}", order_by=["version_number DESC"], page_token=token
        )
        found.extend(page)
        token = page.token
        if token is None:
            break
    human = fmt == "table"
    rows = [
        [
            v.version,
            v.current_stage,
            ", ".join(v.aliases) if human else list(v.aliases),
            v.source,
            v.run_id,
            ms_to_local(v.creation_timestamp) if human else v.creation_timestamp,
            v.description,
        ]
        for v in found
    ]
    emit(["version", "stage", "aliases", "source", "run_id", "created", "description"], rows, fmt)


def _quoted(text: str) -> str:
    """A filter string literal (a doubled quote stands for one)."""
    return "'" + text.replace("'", "''") + "'"


@models.command("transition")
@tracking_uri_option
@_name_option
@_version_option
@click.option(
    "--stage",
    "stage",
    required=True,
    type=click.Choice(["None", "Staging", "Production", "Archived"], case_sensitive=False),
    help="The new stage.",
)
@click.option(
    "--archive-existing",
    "archive",
    is_flag=True,
    help="Move the versions now in that stage (Staging or Production only) to Archived.",
)
def transition_cmd(tracking_uri: str | None, name: str, version: int, stage: str, archive: bool) -> None:
    """Move a version to a stage, optionally archiving the versions already there.

    Example:

        evtrack models transition -n churn -v 3 --stage Production --archive-existing
    """
    mv = open_client(tracking_uri).transition_model_version_stage(name, version, stage, archive)
    click.echo(f"Model '{name}' version {mv.version} is now in stage {mv.current_stage}.")


@models.command("alias")
@tracking_uri_option
@_name_option
@click.option("-a", "--alias", "alias", required=True, help="The alias ([A-Za-z0-9_-]; not 'latest' nor v<n>).")
@click.option("-v", "--version", "version", type=int, default=None, help="Version the alias points at.")
@click.option("--delete", "delete", is_flag=True, help="Remove the alias instead.")
def alias_cmd(tracking_uri: str | None, name: str, alias: str, version: int | None, delete: bool) -> None:
    """Point an alias of a registered model at a version (moving it), or --delete it.

    Example:

    \b
        evtrack models alias -n churn -a champion -v 3
        evtrack models alias -n churn -a champion --delete
    """
    if delete == (version is not None):
        raise click.UsageError("give either -v/--version or --delete")
    client = open_client(tracking_uri)
    if delete:
        client.delete_registered_model_alias(name, alias)
        click.echo(f"Alias '{alias}' of model '{name}' deleted.")
    else:
        client.set_registered_model_alias(name, alias, version)  # type: ignore[arg-type]
        click.echo(f"Alias '{alias}' of model '{name}' now points at version {version}.")


def register_models_group(cli: click.Group) -> None:
    """Add the ``models`` group to ``cli`` (once, whoever asks first)."""
    if "models" not in cli.commands:
        cli.add_command(models)


def register(cli: click.Group) -> None:
    """Add these commands to the ``evtrack`` group."""
    register_models_group(cli)
