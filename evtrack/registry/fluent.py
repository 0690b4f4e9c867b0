"""``evtrack.register_model``: MLflow's fluent registration of a logged or saved model."""

from __future__ import annotations

import sys
from typing import Any

from evtrack.errors import ResourceAlreadyExistsError
from evtrack.read import artifact_uris
from evtrack.registry.client import RegistryClient
from evtrack.registry.entities import ModelVersion


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
    return register_with(RegistryClient(), model_uri, name, tags, quiet=False)


def register_with(
    client: RegistryClient, model_uri: str, name: str, tags: dict[str, Any] | None = None, *, quiet: bool = True
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
        source = artifact_uris.resolve(model_uri, client.tracking_uri)
    version = client.create_model_version(name, source, run_id, tags=tags)
    say(f"Created version '{version.version}' of model '{name}'.")
    return version
