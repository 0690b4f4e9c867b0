"""The model registry client (``RegistryClient``), with the names and signatures of MLflow's
``MlflowClient`` registry methods; ``evtrack.MlflowClient`` combines it with the tracking client.

Writes claim what must be unique (``evtrack.registry.claims``, through the plumbing
in ``evtrack.registry.client_base``), append events and flush them at once (registry
changes are rare and other processes expect to see them); reads fold the registry tables and the inbox tail (``StoreReader.domain``).

An update's event gets a timestamp after the one of the value it replaces
(``_ts_after``), so last-writer-wins keeps a change even when the writer's clock
is behind the clock of whoever wrote the previous value.

Concurrency: names and version numbers are exact (put-if-absent). Other changes
are last-writer-wins, and ``archive_existing_versions`` archives the versions
this client sees in the stage — a version moved into that stage by another
process at the same moment may stay there (MLflow's SQL store would serialise
the two transactions).
"""

from __future__ import annotations

import dataclasses
import uuid
import warnings
from typing import Any

from evtrack.eventlog import events as ev
from evtrack.entities import PagedList
from evtrack.errors import EvtrackError, InvalidParameterError, ResourceNotFoundError
from evtrack.eventlog.events import now_ms
from evtrack.read import artifact_uris
from evtrack.read.client_base import current_user
from evtrack.registry.client_base import RegistryBase
from evtrack.registry import claims, uris, views
from evtrack.registry import events as rev
from evtrack.registry import validation as rv
from evtrack.registry.entities import (
    ACTIVE_STAGES,
    ALL_STAGES,
    STAGE_ARCHIVED,
    ModelVersion,
    RegisteredModel,
    canonical_stage,
)

_DEFAULT_AWAIT = 300


class RegistryClient(RegistryBase):
    """Registered models and model versions (MLflow's ``MlflowClient`` registry API)."""

    @classmethod
    def _remote_client(cls, uri: str) -> Any:
        from evtrack.registry.remote_client import RemoteRegistryClient

        return RemoteRegistryClient(uri)

    # -- registered models ----------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        deployment_job_id: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model; RESOURCE_ALREADY_EXISTS when the name is taken."""
        name = rv.validate_model_name(name)
        clean_tags = rv.validate_tags(tags)
        description = rv.validate_description(description)

        def created() -> rev.RegistryEvent:
            return rev.RegisteredModelCreated(
                eid=self._eid(),
                ts=now_ms(),
                model_id=uuid.uuid4().hex,
                name=name,
                description=description,
                tags=clean_tags,
            )

        event = self._claim_name(name, created)
        return RegisteredModel(name, event.ts, event.ts, description, [], dict(clean_tags), {})

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its latest version per stage, tags and aliases."""
        m, reg = self._model(name)
        return views.registered_model(m, reg)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Give a registered model a new (unclaimed) name; its versions follow it."""
        new_name = rv.validate_model_name(new_name, "new_name")
        m, reg = self._model(name)
        if new_name == m.name:
            return views.registered_model(m, reg)

        def renamed() -> rev.RegistryEvent:
            return rev.RegisteredModelRenamed(
                eid=self._eid(), ts=self._ts_after(m.name_order), model_id=m.model_id, name=new_name
            )

        self._claim_name(new_name, renamed)
        return self.get_registered_model(new_name)

    def update_registered_model(
        self, name: str, description: str | None = None, deployment_job_id: str | None = None
    ) -> RegisteredModel:
        """Set a registered model's description (None clears it)."""
        description = rv.validate_description(description)
        m, _ = self._model(name)
        self._emit_all(
            [
                rev.RegisteredModelDescriptionSet(
                    eid=self._eid(),
                    ts=self._ts_after(m.description_order),
                    model_id=m.model_id,
                    description=description,
                )
            ]
        )
        return self.get_registered_model(name)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with all its versions; the name becomes free."""
        m, _ = self._model(name)
        self._emit_all([rev.RegisteredModelDeleted(eid=self._eid(), ts=self._ts_after(m.created), model_id=m.model_id)])

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = views.SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Registered models matching MLflow's filter (``name`` =, !=, LIKE, ILIKE, IN; ``tags.<key>``),
        ordered by ``order_by`` (name, creation_timestamp, last_updated_timestamp; default name ASC)."""
        return views.search_registered_models(self._registry(), filter_string, max_results, order_by, page_token)

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        """The latest version in each stage (all stages when ``stages`` is None or empty)."""
        wanted = list(dict.fromkeys(canonical_stage(s) for s in stages)) if stages else list(ALL_STAGES)
        m, reg = self._model(name)
        return views.latest_versions(m, reg, wanted)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a registered model."""
        text = rv.validate_tag(key, value)
        m, _ = self._model(name)
        current = m.tags.get(key)
        self._emit_all(
            [
                rev.RegisteredModelTagSet(
                    eid=self._eid(),
                    ts=self._ts_after(*([current.order] if current else [])),
                    model_id=m.model_id,
                    key=key,
                    value=text,
                )
            ]
        )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model (nothing happens when it has no such tag)."""
        rv.validate_tag(key, "")
        m, _ = self._model(name)
        current = m.tags.get(key)
        if current is not None and current.value is not None:
            self._emit_all(
                [
                    rev.RegisteredModelTagDeleted(
                        eid=self._eid(), ts=self._ts_after(current.order), model_id=m.model_id, key=key
                    )
                ]
            )

    # -- model versions -------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int = _DEFAULT_AWAIT,
        model_id: str | None = None,
        *,
        storage_location: str | None = None,
    ) -> ModelVersion:
        """Create the next version (1, 2, 3, …) of a registered model from the model files at ``source``.

        ``runs:/`` and ``models:/`` sources are resolved now: ``get_model_version_download_uri``
        gives the resolved location, ``source`` stays as given. Versions are READY at once
        (``await_creation_for`` is accepted and ignored; ``model_id`` — MLflow's logged models —
        is not supported). ``storage_location`` is where the files are when the caller has
        resolved ``source`` itself (the MLflow store plugin, for a logged model's directory).
        """
        if not isinstance(source, str) or not source:
            raise InvalidParameterError("Missing value for required parameter 'source'.")
        clean_tags = rv.validate_tags(tags)
        description = rv.validate_description(description)
        run_id = rv.validate_optional_str(run_id, "run_id")
        run_link = rv.validate_optional_str(run_link, "run_link")
        m, reg = self._model(name)
        location = storage_location or self._storage_location(source)
        template = rev.ModelVersionCreated(
            eid=self._eid(),
            ts=now_ms(),
            model_id=m.model_id,
            version_number=0,
            source=source,
            storage_location=None if location == source else location,
            source_run_id=run_id,
            run_link=run_link,
            description=description,
            user_id=current_user(),
            tags=clean_tags,
        )
        wire = ev.to_wire(template)
        del wire["version_number"]
        number = claims.claim_version(self.store, m.model_id, wire)
        event = dataclasses.replace(template, version_number=number)
        self._emit_all([event])
        self._repair_versions(m.model_id, number, reg)
        return ModelVersion(
            name=m.name,
            version=number,
            creation_timestamp=event.ts,
            last_updated_timestamp=event.ts,
            description=description,
            user_id=event.user_id,
            source=source,
            run_id=run_id,
            tags=dict(clean_tags),
            run_link=run_link,
        )

    def _storage_location(self, source: str) -> str:
        """``source`` resolved (runs:/ best effort, as MLflow keeps an unresolvable one; models:/ must
        name an existing version)."""
        try:
            return artifact_uris.resolve(source, self.tracking_uri)
        except EvtrackError as exc:
            if not uris.is_models_uri(source):
                return source
            raise type(exc)(
                f"Unable to fetch model from model URI source artifact location '{source}'. Error: {exc.message}"
            ) from None

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        """One version of a registered model; RESOURCE_DOES_NOT_EXIST for a missing or deleted one."""
        m, v, reg = self._version(name, version)
        return views.model_version(m, v, reg)

    def update_model_version(self, name: str, version: str | int, description: str | None = None) -> ModelVersion:
        """Set a version's description (None clears it)."""
        description = rv.validate_description(description)
        m, v, _ = self._version(name, version)
        self._emit_all(
            [
                rev.ModelVersionDescriptionSet(
                    eid=self._eid(),
                    ts=self._ts_after(v.description_order),
                    model_id=m.model_id,
                    version_number=v.version,
                    description=description,
                )
            ]
        )
        return self.get_model_version(name, v.version)

    def transition_model_version_stage(
        self, name: str, version: str | int, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """Move a version to a stage (None, Staging, Production, Archived; any case).

        With ``archive_existing_versions`` (only for Staging and Production) the other versions
        in that stage move to Archived, each by its own event.
        """
        canonical = canonical_stage(stage)
        if archive_existing_versions and canonical not in ACTIVE_STAGES:
            raise InvalidParameterError(
                f"Model version transition cannot archive existing model versions because '{stage}' is "
                f"not an Active stage. Valid stages are {list(ACTIVE_STAGES)}"
            )
        m, v, reg = self._version(name, version)
        events: list[ev.Event] = []
        if archive_existing_versions:
            for other in views.live_versions(reg, m.model_id):
                if other.version != v.version and other.stage == canonical:
                    events.append(
                        rev.ModelVersionStageSet(
                            eid=self._eid(),
                            ts=self._ts_after(other.stage_order),
                            model_id=m.model_id,
                            version_number=other.version,
                            stage=STAGE_ARCHIVED,
                        )
                    )
        events.append(
            rev.ModelVersionStageSet(
                eid=self._eid(),
                ts=self._ts_after(v.stage_order),
                model_id=m.model_id,
                version_number=v.version,
                stage=canonical,
            )
        )
        self._emit_all(events)
        return self.get_model_version(name, v.version)

    def delete_model_version(self, name: str, version: str | int) -> None:
        """Delete a version (its aliases go with it); its number is never reused."""
        m, v, reg = self._version(name, version)
        events: list[ev.Event] = [
            rev.RegisteredModelAliasDeleted(
                eid=self._eid(), ts=self._ts_after(m.aliases[alias].order), model_id=m.model_id, alias=alias
            )
            for alias, number in views.version_aliases(m, reg).items()
            if number == v.version
        ]
        events.append(
            rev.ModelVersionDeleted(
                eid=self._eid(), ts=self._ts_after(v.created), model_id=m.model_id, version_number=v.version
            )
        )
        self._emit_all(events)

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        """Where the version's model files are (its ``source``, resolved when it was a runs:/ or
        models:/ URI)."""
        _, v, _ = self._version(name, version)
        return v.storage_location or v.source or ""

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = views.SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Versions matching MLflow's filter (name, run_id, source_path, version_number, ``tags.<key>``),
        ordered by ``order_by`` (default last_updated_timestamp DESC, name ASC, version_number DESC)."""
        return views.search_model_versions(self._registry(), filter_string, max_results, order_by, page_token)

    def _version_or_stage(self, name: str, version: Any, stage: str | None) -> Any:
        if version and stage:
            raise InvalidParameterError("version and stage cannot be set together")
        if not (version or stage):
            raise InvalidParameterError("version or stage must be set")
        if stage:
            warnings.warn(
                "The `stage` parameter is deprecated, as model stages are; use aliases instead.",
                FutureWarning,
                stacklevel=3,
            )
            latest = self.get_latest_versions(name, stages=[stage])
            if not latest:
                raise ResourceNotFoundError(f"Could not find any model version for {stage} stage")
            return latest[0].version
        return version

    def set_model_version_tag(
        self,
        name: str,
        version: str | int | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        """Set a tag on a version (given by number, or — deprecated — by stage)."""
        version = self._version_or_stage(name, version, stage)
        text = rv.validate_tag(key, value)
        tag_key = str(key)  # validate_tag refused anything but a str
        m, v, _ = self._version(name, version)
        current = v.tags.get(tag_key)
        self._emit_all(
            [
                rev.ModelVersionTagSet(
                    eid=self._eid(),
                    ts=self._ts_after(*([current.order] if current else [])),
                    model_id=m.model_id,
                    version_number=v.version,
                    key=tag_key,
                    value=text,
                )
            ]
        )

    def delete_model_version_tag(
        self, name: str, version: str | int | None = None, key: str | None = None, stage: str | None = None
    ) -> None:
        """Remove a tag from a version (nothing happens when it has no such tag)."""
        version = self._version_or_stage(name, version, stage)
        rv.validate_tag(key, "")
        tag_key = str(key)  # validate_tag refused anything but a str
        m, v, _ = self._version(name, version)
        current = v.tags.get(tag_key)
        if current is not None and current.value is not None:
            self._emit_all(
                [
                    rev.ModelVersionTagDeleted(
                        eid=self._eid(),
                        ts=self._ts_after(current.order),
                        model_id=m.model_id,
                        version_number=v.version,
                        key=tag_key,
                    )
                ]
            )

    # -- aliases --------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        """Point an alias at a version (moving it if it pointed elsewhere)."""
        rv.validate_alias_not_reserved(rv.validate_alias(alias))
        m, v, _ = self._version(name, version)
        current = m.aliases.get(alias)
        self._emit_all(
            [
                rev.RegisteredModelAliasSet(
                    eid=self._eid(),
                    ts=self._ts_after(*([current.order] if current else [])),
                    model_id=m.model_id,
                    alias=alias,
                    version_number=v.version,
                )
            ]
        )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias (nothing happens when the model has no such alias)."""
        rv.validate_alias(alias)
        m, _ = self._model(name)
        current = m.aliases.get(alias)
        if current is not None and current.version is not None:
            self._emit_all(
                [
                    rev.RegisteredModelAliasDeleted(
                        eid=self._eid(), ts=self._ts_after(current.order), model_id=m.model_id, alias=alias
                    )
                ]
            )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at; ``latest`` (any case) is the highest live version."""
        rv.validate_alias(alias)
        m, reg = self._model(name)
        if alias.lower() == rv.LATEST_ALIAS:
            versions = views.live_versions(reg, m.model_id)
            if not versions:
                raise ResourceNotFoundError(f"Latest version not found for model {name}.")
            return views.model_version(m, versions[-1], reg)
        number = views.version_aliases(m, reg).get(alias)
        if number is None:
            raise InvalidParameterError(f"Registered model alias {alias} not found.")
        return views.model_version(m, reg.versions[(m.model_id, number)], reg)

    def _version_for_models_uri(self, uri: str) -> ModelVersion:
        """The registered model version a ``models:/`` URI names (version, alias, stage or latest)."""
        return uris.version_named(self, uri)


def _resolve_models_uri(uri: str, tracking_uri: str | None) -> str:
    client = RegistryClient(tracking_uri)
    version = client._version_for_models_uri(uri)
    return client.get_model_version_download_uri(version.name, version.version)


artifact_uris.register_scheme("models", _resolve_models_uri)
