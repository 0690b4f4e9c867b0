"""The registry's top-level calls: ``register_model``, the searches, version tags and the registry URI.

The registry lives in the tracking store unless ``set_registry_uri`` (or
``EVTRACK_REGISTRY_URI`` / ``MLFLOW_REGISTRY_URI``) names another store; ``runs:/`` sources
are resolved against the tracking store either way.
"""

from __future__ import annotations

import sys
from typing import Any

from evtrack import settings
from evtrack.errors import ResourceAlreadyExistsError
from evtrack.read import artifact_uris, backend
from evtrack.registry.client import RegistryClient
from evtrack.registry.entities import ModelVersion

_registry_uri: str | None = None


def set_registry_uri(uri: str) -> None:
    """Keep the model registry in another store than the runs (a path, ``s3://`` or ``evtrack:`` URI)."""
    global _registry_uri
    _registry_uri = backend.checked_uri(str(uri))  # the forms and checks of a tracking URI


def get_registry_uri() -> str:
    """The registry's store: ``set_registry_uri`` > ``EVTRACK_REGISTRY_URI`` > ``MLFLOW_REGISTRY_URI`` >
    the tracking URI."""
    return _registry_uri or settings.get("EVTRACK_REGISTRY_URI") or backend.get_tracking_uri()


def _client() -> RegistryClient:
    return RegistryClient(get_registry_uri())


def search_registered_models(
    max_results: int | None = None, filter_string: str | None = None, order_by: list[str] | None = None
) -> list[Any]:
    """The registered models matching MLflow's registry filter (every page when ``max_results`` is None)."""
    if max_results is not None:
        return list(_client().search_registered_models(filter_string, max_results, order_by))
    return _all_pages(lambda token: _client().search_registered_models(filter_string, 1000, order_by, token))


def search_model_versions(
    max_results: int | None = None, filter_string: str | None = None, order_by: list[str] | None = None
) -> list[Any]:
    """The model versions matching MLflow's model-version filter (every page when ``max_results`` is None)."""
    if max_results is not None:
        return list(_client().search_model_versions(filter_string, max_results, order_by))
    return _all_pages(lambda token: _client().search_model_versions(filter_string, 1000, order_by, token))


def _all_pages(page_of: Any) -> list[Any]:
    found, token = [], None
    while True:
        page = page_of(token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def set_model_version_tag(
    name: str, version: str | int | None = None, key: str | None = None, value: Any = None
) -> None:
    """Set a tag on a model version."""
    _client().set_model_version_tag(name, version, key, value)


def register_model(
    model_uri: str, name: str, await_registration_for: int = 300, *, tags: dict[str, Any] | None = None
) -> ModelVersion:
    """Create a new version of the registered model ``name`` (created first when absent) from the
    model at ``model_uri``; returns the version.

    A ``runs:/<run_id>/<path>`` URI becomes the run's artifact URI joined with ``<path>`` (the
    version records the run); ``models:/`` URIs are resolved to the referenced version's files;
    any other URI (a directory, ``s3://…``) is taken as it is. ``await_registration_for`` is
    accepted for MLflow compatibility: versions are READY at once.
    """
    return register_with(_client(), model_uri, name, tags, quiet=False, tracking_uri=backend.get_tracking_uri())


def register_with(
    client: RegistryClient,
    model_uri: str,
    name: str,
    tags: dict[str, Any] | None = None,
    *,
    quiet: bool = True,
    tracking_uri: str | None = None,
) -> ModelVersion:
    """``register_model`` with a given client (the CLI's); ``quiet`` skips MLflow's progress lines."""
    say = (lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr))
    try:
        client.create_registered_model(name)
        say(f"Successfully registered model '{name}'.")
    except ResourceAlreadyExistsError:
        say(f"Registered model '{name}' already exists. Creating a new version of this model...")
    run_id = None
    source = model_uri
    if artifact_uris.is_runs_uri(model_uri):
        run_id, _ = artifact_uris.parse_runs_uri(model_uri)
        source = artifact_uris.resolve(model_uri, tracking_uri or client.tracking_uri)
    version = client.create_model_version(name, source, run_id, tags=tags)
    say(f"Created version '{version.version}' of model '{name}'.")
    return version
