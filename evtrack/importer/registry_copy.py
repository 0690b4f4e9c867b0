"""The model registry: models, versions (numbers kept), stages, aliases, tags, descriptions.

Written through evtrack's registry client, after comparing with what the store already
holds, so a second import writes nothing. Version numbers are kept: a number missing in
the source (a deleted version) is created and deleted again, as MLflow never reuses one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evtrack.errors import ResourceNotFoundError
from evtrack.importer import source as src


@dataclass
class RegistryCounts:
    """What copying the registry wrote."""

    models: int = 0
    versions: int = 0
    aliases: int = 0
    tags: int = 0
    problems: list[str] = field(default_factory=list)


def copy_registry(client: Any, source: Any, n: RegistryCounts) -> None:
    """Copy every registered model of ``source`` into ``client``'s store."""
    for model in src.paged(source.search_registered_models, max_results=src.PAGE):
        try:
            _copy_model(client, source, model, n)
        except Exception as exc:  # one model's trouble is reported, the rest still copied
            n.problems.append(f"registered model {model.name!r}: {exc}")


def _copy_model(client: Any, source: Any, model: Any, n: RegistryCounts) -> None:
    try:
        mine = client.get_registered_model(model.name)
    except ResourceNotFoundError:
        mine = client.create_registered_model(model.name, description=model.description or None)
        n.models += 1
    if (mine.description or "") != (model.description or ""):
        client.update_registered_model(model.name, description=model.description or "")
    for key, value in sorted(model.tags.items()):
        if mine.tags.get(key) != value:
            client.set_registered_model_tag(model.name, key, value)
            n.tags += 1
    versions = sorted(
        src.paged(source.search_model_versions, f"name = '{_quoted(model.name)}'", max_results=src.PAGE),
        key=lambda v: int(v.version),
    )
    have = {int(v.version): v for v in client.search_model_versions(f"name = '{_quoted(model.name)}'")}
    top = max(have, default=0)
    for version in versions:
        number = int(version.version)
        while top < number - 1:  # a gap: a version deleted in the source
            filler = client.create_model_version(model.name, source=version.source, storage_location=version.source)
            client.delete_model_version(model.name, filler.version)
            top = int(filler.version)
        if number not in have:
            created = _create_version(client, model.name, version)
            top = int(created.version)
            n.versions += 1
            have[number] = created
        _sync_version(client, model.name, version, have[number], n)
    for alias, number in sorted((model.aliases or {}).items()):
        if (mine.aliases or {}).get(alias) != str(number) and str((mine.aliases or {}).get(alias)) != str(number):
            client.set_registered_model_alias(model.name, alias, number)
            n.aliases += 1


def _create_version(client: Any, name: str, version: Any) -> Any:
    kwargs = dict(run_id=version.run_id or None, tags=dict(version.tags), description=version.description or None)
    if version.run_link:
        kwargs["run_link"] = version.run_link
    try:
        return client.create_model_version(name, version.source, **kwargs)
    except Exception:  # a source evtrack cannot resolve (a logged model's models:/m-…): keep it as given
        return client.create_model_version(name, version.source, storage_location=version.source, **kwargs)


def _sync_version(client: Any, name: str, version: Any, mine: Any, n: RegistryCounts) -> None:
    if (mine.current_stage or "None") != (version.current_stage or "None"):
        client.transition_model_version_stage(name, mine.version, version.current_stage or "None")
    if (mine.description or "") != (version.description or ""):
        client.update_model_version(name, mine.version, description=version.description or "")
    for key, value in sorted(version.tags.items()):
        if mine.tags.get(key) != value:
            client.set_model_version_tag(name, mine.version, key, value)
            n.tags += 1


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")
