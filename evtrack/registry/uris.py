"""``runs:/`` and ``models:/`` URIs: parsing (MLflow's rules) and resolution to a storage URI.

- ``runs:/<run_id>/<path>``: ``<path>`` under the run's artifact root;
- ``models:/<name>/<version>``, ``models:/<name>/<stage>``, ``models:/<name>/latest``
  and ``models:/<name>@<alias>``: a registered model version, whose files are at
  its download URI (``get_model_version_download_uri``).

Loaders (``evtrack.models``) call :func:`resolve_model_uri` to turn any model URI
into a URI of the model's directory that ``evtrack.store.open_store`` can read.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evtrack.errors import InvalidUriError, ResourceNotFoundError

if TYPE_CHECKING:
    from evtrack.registry.entities import ModelVersion
    from evtrack.tracking.client import EvtrackClient

_RUNS_FORM = "Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'"


def is_runs_uri(uri: str) -> bool:
    """True for a ``runs:/`` URI."""
    return isinstance(uri, str) and urllib.parse.urlparse(uri).scheme == "runs"


def is_models_uri(uri: str) -> bool:
    """True for a ``models:/`` URI."""
    return isinstance(uri, str) and urllib.parse.urlparse(uri).scheme == "models"


def parse_runs_uri(uri: str) -> tuple[str, str | None]:
    """(run_id, artifact path or None) of ``runs:/<run_id>/<path>``."""
    parsed = urllib.parse.urlparse(uri)
    path = parsed.path
    if parsed.scheme != "runs" or not path.startswith("/") or len(path) <= 1:
        raise InvalidUriError(f"Not a proper runs:/ URI: {uri}. {_RUNS_FORM}")
    run_id, _, rest = path[1:].partition("/")
    if not run_id:
        raise InvalidUriError(f"Not a proper runs:/ URI: {uri}. {_RUNS_FORM}")
    return run_id, (rest.strip("/") or None)


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
        "is a registered model alias. Only one of suffix or alias can be defined at a time.")


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


def model_version_for_uri(client: "EvtrackClient", uri: str) -> "ModelVersion":
    """The registered model version a ``models:/`` URI names."""
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


def resolve_model_uri(client: "EvtrackClient", uri: str) -> str:
    """Where a model's files are: ``runs:/`` and ``models:/`` resolved, any other URI as it is."""
    if is_runs_uri(uri):
        run_id, path = parse_runs_uri(uri)
        return client.get_artifact_uri(run_id, path)
    if is_models_uri(uri):
        mv = model_version_for_uri(client, uri)
        return client.get_model_version_download_uri(mv.name, mv.version)
    return uri
