"""MLflow's model-registry store (``mlflow.store.model_registry.AbstractStore``) on evtrack's registry.

Registered models, versions, stages, aliases, tags and descriptions are evtrack's registry
events: version numbers are claimed put-if-absent, so concurrent registrations from
many processes get distinct numbers, as with ``evtrack.register_model``. A version made
from an MLflow 3 logged model (source ``models:/<model_id>``) keeps that source, downloads
from the logged model's artifact directory (MLflow's client records the version in the
model's ``mlflow.modelVersions`` tag itself). Prompts work as MLflow's base store builds
them: registered models and versions tagged ``mlflow.prompt.is_prompt``, left out of model
searches. Webhooks are not kept: they answer NOT_IMPLEMENTED.
"""

from __future__ import annotations

from dataclasses import replace

import urllib.parse
from typing import Any

from mlflow.store.entities.paged_list import PagedList
from mlflow.store.model_registry import SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT
from mlflow.store.model_registry import SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT
from mlflow.store.model_registry.abstract_store import AbstractStore

from evtrack.client import MlflowClient as EvtrackClient
from evtrack.errors import InvalidParameterError
from evtrack.mlflow_plugin import convert
from evtrack.mlflow_plugin.errors import mlflow_errors, refuse_unsupported, translate_errors
from evtrack.store.uris import store_location
from evtrack.query import search_grammar as grammar
from evtrack.registry.prompt_filter import is_prompt, split_prompt_filter
from evtrack.tracking.logged_models import MODEL_ID, LoggedModel, LoggedModelStore


@translate_errors
class EvtrackRegistryStore(AbstractStore):
    """MLflow's model-registry store for ``evtrack:`` and ``evtrack+s3:`` URIs."""

    def __init__(self, store_uri: str, tracking_uri: str | None = None) -> None:
        super().__init__(store_uri, tracking_uri)
        self.store_uri = store_uri
        with mlflow_errors():
            self.tracking_uri = store_location(store_uri)
        self._client = EvtrackClient(self.tracking_uri)

    # -- registered models ----------------------------------------------------------------

    def create_registered_model(
        self, name: str, tags: list[Any] | None = None, description: str | None = None, deployment_job_id: Any = None
    ) -> Any:
        """A new registered model (RESOURCE_ALREADY_EXISTS when the name is taken)."""
        model = self._client.create_registered_model(name, {t.key: t.value for t in tags or ()}, description)
        return convert.registered_model(model)

    def update_registered_model(self, name: str, description: str | None, deployment_job_id: Any = None) -> Any:
        """Set a registered model's description."""
        return convert.registered_model(self._client.update_registered_model(name, description))

    def rename_registered_model(self, name: str, new_name: str) -> Any:
        """Give a registered model a new, unclaimed name (its versions follow)."""
        return convert.registered_model(self._client.rename_registered_model(name, new_name))

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with its versions."""
        self._client.delete_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int | None = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """One page of registered models matching MLflow's registry filter (prompts left out unless
        the filter asks for them, as MLflow's stores read the clause its client adds)."""
        rest, prompts = split_prompt_filter(filter_string, grammar.parse_registered_model_filter)
        page = self._client.search_registered_models(
            rest, max_results or SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT, order_by, page_token
        )
        found = [convert.registered_model(m) for m in page if prompts or not is_prompt(m.tags)]
        return PagedList(found, page.token)

    def get_registered_model(self, name: str) -> Any:
        """The registered model with its latest version per stage, tags and aliases."""
        return convert.registered_model(self._client.get_registered_model(name))

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[Any]:
        """The newest version in each of ``stages`` (every stage when None)."""
        return [convert.model_version(v) for v in self._client.get_latest_versions(name, stages)]

    def set_registered_model_tag(self, name: str, tag: Any) -> None:
        """Set a tag on a registered model."""
        self._client.set_registered_model_tag(name, tag.key, tag.value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        self._client.delete_registered_model_tag(name, key)

    # -- model versions ---------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: list[Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        local_model_path: str | None = None,
        model_id: str | None = None,
    ) -> Any:
        """The next version of a registered model, from model files at ``source`` (a path, a
        ``runs:/`` URI, or ``models:/<model_id>`` for a logged model)."""
        logged = self._logged_model(source, model_id)
        mv = self._client.create_model_version(
            name,
            source,
            run_id=run_id or (logged.source_run_id if logged else None),
            tags={t.key: t.value for t in tags or ()},
            run_link=run_link,
            description=description,
            storage_location=logged.artifact_location if logged else None,
        )
        return convert.model_version(mv)

    def _logged_model(self, source: str, model_id: str | None) -> LoggedModel | None:
        """The logged model a new version is made from (``models:/<model_id>`` or ``model_id``)."""
        parsed = urllib.parse.urlparse(source or "")
        named = parsed.path.strip("/") if parsed.scheme == "models" and not parsed.netloc else ""
        wanted = model_id or (named if MODEL_ID.fullmatch(named) else None)
        if wanted is None:
            return None
        if named and MODEL_ID.fullmatch(named) and named != wanted:
            raise InvalidParameterError(
                f"Invalid model version source: '{source}' names a logged model other than model_id '{wanted}'."
            )
        return LoggedModelStore(self._client.store).get(wanted)

    def update_model_version(self, name: str, version: str, description: str | None) -> Any:
        """Set a version's description."""
        return convert.model_version(self._client.update_model_version(name, version, description))

    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool = False
    ) -> Any:
        """Move a version to a stage (optionally archiving the others in Staging/Production)."""
        mv = self._client.transition_model_version_stage(name, version, stage, archive_existing_versions)
        return convert.model_version(mv)

    def delete_model_version(self, name: str, version: str) -> None:
        """Delete a version (and the aliases pointing at it)."""
        self._client.delete_model_version(name, version)

    def get_model_version(self, name: str, version: str) -> Any:
        """One version of a registered model."""
        return convert.model_version(self._client.get_model_version(name, version))

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        """Where the version's files are (a logged model's directory for ``models:/<model_id>`` sources)."""
        return self._client.get_model_version_download_uri(name, version)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """One page of versions matching MLflow's model-version filter (prompts left out, as above)."""
        rest, prompts = split_prompt_filter(filter_string, grammar.parse_model_version_filter)
        page = self._client.search_model_versions(
            rest, max_results or SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT, order_by, page_token
        )
        # MLflow's SQL store names no aliases in a search's versions (a get of one version does)
        versions = [replace(v, aliases=[]) for v in page if prompts or not is_prompt(v.tags)]
        return PagedList([convert.model_version(v) for v in versions], page.token)

    def set_model_version_tag(self, name: str, version: str, tag: Any) -> None:
        """Set a tag on a version."""
        self._client.set_model_version_tag(name, version, tag.key, tag.value)

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        """Remove a tag from a version."""
        self._client.delete_model_version_tag(name, version, key)

    # -- aliases ----------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        """Point an alias (``champion``) at a version; ``models:/<name>@<alias>`` then loads it."""
        self._client.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self._client.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        """The version an alias points at."""
        return convert.model_version(self._client.get_model_version_by_alias(name, alias))


refuse_unsupported(EvtrackRegistryStore, AbstractStore)
