"""Registry events: every change to a registered model or model version.

Each event names the model by its ``model_id``, an internal id given at creation
that never changes (names do: ``registered_model_renamed``). Versions are
``(model_id, version_number)`` with numbers 1, 2, 3, … claimed in the catalog
before the ``model_version_created`` event is written. (The field is not called
``version``: that name is the events' wire-format version.)

No registry event has a ``run_id`` attribute (the run that produced a version is
``source_run_id``): readers and the compactor route events with a ``run_id`` to
run partitions, and ``gc`` drops the events of purged runs — a model version
outlives the run it came from, as in MLflow.

Imported by ``evtrack.eventlog.events`` so that decoding knows these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from evtrack.eventlog.events import Event, register


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryEvent(Event):
    """Base of the registry events: they all concern one registered model."""

    model_id: str


# --- registered models -------------------------------------------------------


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelCreated(RegistryEvent):
    """A registered model came into existence (its name was claimed in the catalog first)."""

    type: ClassVar[str] = "registered_model_created"
    name: str
    description: str | None = None
    tags: dict[str, str]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelRenamed(RegistryEvent):
    """A registered model got a new (claimed) name; its versions follow it."""

    type: ClassVar[str] = "registered_model_renamed"
    name: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelDeleted(RegistryEvent):
    """A registered model and all its versions were deleted (its name is free again)."""

    type: ClassVar[str] = "registered_model_deleted"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelDescriptionSet(RegistryEvent):
    """A registered model's description was set (None clears it)."""

    type: ClassVar[str] = "registered_model_description_set"
    description: str | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelTagSet(RegistryEvent):
    """A tag on a registered model was set (last writer wins)."""

    type: ClassVar[str] = "registered_model_tag_set"
    key: str
    value: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelTagDeleted(RegistryEvent):
    """A tag on a registered model was removed."""

    type: ClassVar[str] = "registered_model_tag_deleted"
    key: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelAliasSet(RegistryEvent):
    """An alias of a registered model now points at a version (last writer wins)."""

    type: ClassVar[str] = "registered_model_alias_set"
    alias: str
    version_number: int


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelAliasDeleted(RegistryEvent):
    """An alias of a registered model was removed."""

    type: ClassVar[str] = "registered_model_alias_deleted"
    alias: str


# --- model versions ----------------------------------------------------------


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionCreated(RegistryEvent):
    """A version of a registered model (its number was claimed in the catalog first)."""

    type: ClassVar[str] = "model_version_created"
    version_number: int
    source: str
    storage_location: str | None = None  # ``source`` resolved when it is a runs:/ or models:/ URI
    source_run_id: str | None = None
    run_link: str | None = None
    description: str | None = None
    user_id: str | None = None
    tags: dict[str, str]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionStageSet(RegistryEvent):
    """A version moved to a stage (None, Staging, Production, Archived); last writer wins.

    ``archive_existing_versions`` is not a flag here: the client writes one event
    per version it archives, so the fold stays a plain last-writer-wins rule.
    """

    type: ClassVar[str] = "model_version_stage_set"
    version_number: int
    stage: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionDescriptionSet(RegistryEvent):
    """A version's description was set (None clears it)."""

    type: ClassVar[str] = "model_version_description_set"
    version_number: int
    description: str | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionTagSet(RegistryEvent):
    """A tag on a model version was set (last writer wins)."""

    type: ClassVar[str] = "model_version_tag_set"
    version_number: int
    key: str
    value: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionTagDeleted(RegistryEvent):
    """A tag on a model version was removed."""

    type: ClassVar[str] = "model_version_tag_deleted"
    version_number: int
    key: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionDeleted(RegistryEvent):
    """A model version was deleted; its number is never reused."""

    type: ClassVar[str] = "model_version_deleted"
    version_number: int
