"""``runs:/`` and ``models:/`` URIs: parsing (MLflow's rules) and resolution to a storage URI.

- ``runs:/<run_id>/<path>``: ``<path>`` under the run's artifact root;
- ``models:/<name>/<version>``, ``models:/<name>/<stage>``, ``models:/<name>/latest``
  and ``models:/<name>@<alias>``: a registered model version, whose files are at
  its download URI (``get_model_version_download_uri``).

Resolution goes through the core's table of schemes (``evtrack.read.artifact_uris``):
``evtrack.registry.client`` registers ``models``, the tracking client ``runs``.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from evtrack.errors import InvalidUriError, ResourceNotFoundError
from evtrack.read.artifact_uris import is_runs_uri, parse_runs_uri  # noqa: F401  (parsed here since the start)


def is_models_uri(uri: str) -> bool:
    """True for a ``models:/`` URI."""
    return isinstance(uri, str) and urllib.parse.urlparse(uri).scheme == "models"


@dataclass(frozen=True, slots=True)
class ModelsUri:
    """A parsed ``models:/`` URI: a name and one of version, stage, alias (all None: latest)."""

    name: str
    version: int | None = None
    stage: str | None = None
    alias: str | None = None


def _improper(uri: str) -> InvalidUriError:
    return InvalidUriError(
        f"Not a proper models:/ URI: {uri}. Models URIs must be of the form 'models:/name/suffix' or "
        "'models:/name@alias' where suffix is a version, stage, or the string 'latest' and where alias "
        "is a registered model alias. Only one of suffix or alias can be defined at a time."
    )


def parse_models_uri(uri: str) -> ModelsUri:
    """Parse ``models:/<name>/<version|stage|latest>`` or ``models:/<name>@<alias>``."""
    parsed = urllib.parse.urlparse(uri, allow_fragments=False)
    path = parsed.path
    if parsed.scheme != "models" or not path.startswith("/") or len(path) <= 1:
        raise _improper(uri)
    parts = path.lstrip("/").split("/")
    if len(parts) > 2 or parts[0].strip() == "":
        raise _improper(uri)
    if len(parts) == 2:
        name, suffix = parts
        if suffix.strip() == "":
            raise _improper(uri)
        if suffix.isdigit():
            return ModelsUri(name, version=int(suffix))
        if suffix.lower() == "latest":
            return ModelsUri(name)
        return ModelsUri(name, stage=suffix)
    name, at, alias = parts[0].rpartition("@")
    if not at or not name or not alias.strip():
        raise _improper(uri)  # models:/<model_id> (logged models) is not supported
    return ModelsUri(name, alias=alias)


def version_named(client: Any, uri: str) -> Any:
    """The registered model version a ``models:/`` URI names, asked of ``client`` (a registry
    client on a store or on a server): by version, alias, stage, or the newest."""
    ref = parse_models_uri(uri)
    if ref.version is not None:
        return client.get_model_version(ref.name, ref.version)
    if ref.alias is not None:
        return client.get_model_version_by_alias(ref.name, ref.alias)
    latest = client.get_latest_versions(ref.name, None if ref.stage is None else [ref.stage])
    if not latest:
        stage = "" if ref.stage is None else f" and stage '{ref.stage}'"
        raise ResourceNotFoundError(f"No versions of model with name '{ref.name}'{stage} found")
    return max(latest, key=lambda mv: mv.version)
