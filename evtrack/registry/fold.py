"""The registry part of the fold: registry events -> ``State.registry``. Pure, order-independent.

Rules (the same as for experiments and runs, see ``evtrack.state.fold``):
- creation fields (name at creation, source, run, user, …): the earliest
  ``*_created`` event by (ts, eid) wins; a repaired claim re-writes the very same
  event (same eid and ts), which folds to the same state;
- name, description, stage, tags, aliases: the latest set/delete by (ts, eid) wins;
- deletion is final: the earliest delete event is kept;
- ``last_updated_timestamp``: the largest ts of the events that update the
  entity (as MLflow: creation, rename, description, a version created, a stage
  change or a version deleted touch the model; tag and alias changes do not).

A version whose model is deleted, and an alias whose version is deleted, are
hidden by the views (``evtrack.registry.views``), not removed here, so the
result never depends on the order events arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evtrack.state.fold import Order, Stamped, State, apply
from evtrack.registry import events as rev

_NEVER: Order = (-1, "")
STAGE_NONE = "None"


@dataclass(slots=True)
class AliasTarget:
    """The version an alias points at (None: deleted), with the (ts, eid) that set it."""

    version: int | None
    order: Order


class _Lived:
    """What registered models and versions share: created/deleted orders and stamped tags."""

    __slots__ = ()
    created: Order
    deleted: Order
    tags: dict[str, Stamped]

    @property
    def live(self) -> bool:
        """Created and not deleted."""
        return self.created != _NEVER and self.deleted == _NEVER

    def live_tags(self) -> dict[str, str]:
        """Current tags (tombstones removed)."""
        return {k: s.value for k, s in self.tags.items() if s.value is not None}


@dataclass(slots=True)
class RegisteredModelState(_Lived):
    """The folded state of one registered model."""

    model_id: str
    name: str = ""
    name_order: Order = _NEVER
    created: Order = _NEVER
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    description_order: Order = _NEVER
    deleted: Order = _NEVER
    tags: dict[str, Stamped] = field(default_factory=dict)
    aliases: dict[str, AliasTarget] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        """True once the registered_model_created event has been folded."""
        return self.created != _NEVER


@dataclass(slots=True)
class ModelVersionState(_Lived):
    """The folded state of one model version."""

    model_id: str
    version: int
    created: Order = _NEVER
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    source: str | None = None
    storage_location: str | None = None
    run_id: str | None = None
    run_link: str | None = None
    user_id: str | None = None
    status: str = "READY"
    status_message: str | None = None
    description: str | None = None
    description_order: Order = _NEVER
    stage: str = STAGE_NONE
    stage_order: Order = _NEVER
    deleted: Order = _NEVER
    tags: dict[str, Stamped] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        """True once the model_version_created event has been folded."""
        return self.created != _NEVER


@dataclass(slots=True)
class RegistryState:
    """Every registered model (by model_id) and model version (by (model_id, version))."""

    models: dict[str, RegisteredModelState] = field(default_factory=dict)
    versions: dict[tuple[str, int], ModelVersionState] = field(default_factory=dict)

    def model(self, model_id: str) -> RegisteredModelState:
        """The (possibly not yet created) state of a registered model."""
        st = self.models.get(model_id)
        if st is None:
            st = self.models[model_id] = RegisteredModelState(model_id)
        return st

    def version(self, model_id: str, version: int) -> ModelVersionState:
        """The (possibly not yet created) state of a model version."""
        key = (model_id, version)
        st = self.versions.get(key)
        if st is None:
            st = self.versions[key] = ModelVersionState(model_id, version)
        return st

    def versions_of(self, model_id: str) -> list[ModelVersionState]:
        """The versions of a model known to the state (live or not), by number."""
        return sorted((v for (mid, _), v in self.versions.items() if mid == model_id), key=lambda v: v.version)

    def live_model_named(self, name: str) -> RegisteredModelState | None:
        """The live registered model with this name, if any."""
        found = [m for m in self.models.values() if m.live and m.name == name]
        return max(found, key=lambda m: m.name_order) if found else None


REGISTRY_DOMAIN = "registry"  # the key of the registry's part of ``State.parts``


def registry_of(state: State) -> RegistryState:
    """The registry's part of a fold state."""
    return state.parts[REGISTRY_DOMAIN]


def _touch(target: RegisteredModelState | ModelVersionState, ts: int) -> None:
    if target.last_updated_timestamp is None or ts > target.last_updated_timestamp:
        target.last_updated_timestamp = ts


def _stamp(target: dict[str, Stamped], key: str, value: str | None, order: Order) -> None:
    cur = target.get(key)
    if cur is None or order > cur.order:
        target[key] = Stamped(value, order)


def _delete(target: RegisteredModelState | ModelVersionState, order: Order) -> None:
    if target.deleted == _NEVER or order < target.deleted:
        target.deleted = order


@apply.register
def _(e: rev.RegisteredModelCreated, st: State) -> None:
    m = registry_of(st).model(e.model_id)
    order = e.order
    if m.created == _NEVER or order < m.created:
        m.created, m.creation_timestamp = order, e.ts
    if order > m.name_order:
        m.name, m.name_order = e.name, order
    if order > m.description_order:
        m.description, m.description_order = e.description, order
    for key, value in e.tags.items():
        _stamp(m.tags, key, value, order)
    _touch(m, e.ts)


@apply.register
def _(e: rev.RegisteredModelRenamed, st: State) -> None:
    m = registry_of(st).model(e.model_id)
    if e.order > m.name_order:
        m.name, m.name_order = e.name, e.order
    _touch(m, e.ts)


@apply.register
def _(e: rev.RegisteredModelDeleted, st: State) -> None:
    _delete(registry_of(st).model(e.model_id), e.order)


@apply.register
def _(e: rev.RegisteredModelDescriptionSet, st: State) -> None:
    m = registry_of(st).model(e.model_id)
    if e.order > m.description_order:
        m.description, m.description_order = e.description, e.order
    _touch(m, e.ts)


@apply.register
def _(e: rev.RegisteredModelTagSet, st: State) -> None:
    _stamp(registry_of(st).model(e.model_id).tags, e.key, e.value, e.order)


@apply.register
def _(e: rev.RegisteredModelTagDeleted, st: State) -> None:
    _stamp(registry_of(st).model(e.model_id).tags, e.key, None, e.order)


def _set_alias(m: RegisteredModelState, alias: str, version: int | None, order: Order) -> None:
    cur = m.aliases.get(alias)
    if cur is None or order > cur.order:
        m.aliases[alias] = AliasTarget(version, order)


@apply.register
def _(e: rev.RegisteredModelAliasSet, st: State) -> None:
    _set_alias(registry_of(st).model(e.model_id), e.alias, e.version_number, e.order)


@apply.register
def _(e: rev.RegisteredModelAliasDeleted, st: State) -> None:
    _set_alias(registry_of(st).model(e.model_id), e.alias, None, e.order)


@apply.register
def _(e: rev.ModelVersionCreated, st: State) -> None:
    v = registry_of(st).version(e.model_id, e.version_number)
    order = e.order
    if v.created == _NEVER or order < v.created:
        v.created, v.creation_timestamp = order, e.ts
        v.source, v.storage_location = e.source, e.storage_location
        v.run_id, v.run_link, v.user_id = e.source_run_id, e.run_link, e.user_id
    if order > v.description_order:
        v.description, v.description_order = e.description, order
    if order > v.stage_order:
        v.stage, v.stage_order = STAGE_NONE, order
    for key, value in e.tags.items():
        _stamp(v.tags, key, value, order)
    _touch(v, e.ts)
    _touch(registry_of(st).model(e.model_id), e.ts)


@apply.register
def _(e: rev.ModelVersionStageSet, st: State) -> None:
    v = registry_of(st).version(e.model_id, e.version_number)
    if e.order > v.stage_order:
        v.stage, v.stage_order = e.stage, e.order
    _touch(v, e.ts)
    _touch(registry_of(st).model(e.model_id), e.ts)


@apply.register
def _(e: rev.ModelVersionDescriptionSet, st: State) -> None:
    v = registry_of(st).version(e.model_id, e.version_number)
    if e.order > v.description_order:
        v.description, v.description_order = e.description, e.order
    _touch(v, e.ts)


@apply.register
def _(e: rev.ModelVersionTagSet, st: State) -> None:
    _stamp(registry_of(st).version(e.model_id, e.version_number).tags, e.key, e.value, e.order)


@apply.register
def _(e: rev.ModelVersionTagDeleted, st: State) -> None:
    _stamp(registry_of(st).version(e.model_id, e.version_number).tags, e.key, None, e.order)


@apply.register
def _(e: rev.ModelVersionDeleted, st: State) -> None:
    v = registry_of(st).version(e.model_id, e.version_number)
    _delete(v, e.order)
    _touch(v, e.ts)
    _touch(registry_of(st).model(e.model_id), e.ts)
