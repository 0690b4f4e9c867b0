"""What the registry client's calls share: the fresh registry, writing events, the claims.

Names and version numbers are claimed with put-if-absent (``evtrack.registry.claims``);
a claim's event is written by its claimer, and a reader that sees a claim without its
event after ``REPAIR_WAIT_S`` writes the same event itself (a safe duplicate), so a
claimer that died between the two never leaves a name or number stuck.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from evtrack.eventlog import events as ev
from evtrack.errors import ResourceAlreadyExistsError, ResourceNotFoundError, StoreError
from evtrack.eventlog.events import now_ms
from evtrack.state.fold import Order
from evtrack.read.client_base import StoreClient
from evtrack.registry import claims
from evtrack.registry import events as rev
from evtrack.registry import validation as rv
from evtrack.registry.fold import REGISTRY_DOMAIN, ModelVersionState, RegisteredModelState, RegistryState, registry_of

REPAIR_WAIT_S = 2.0  # how long a reader lets a claim's creator write its event before writing it itself
_NAME_ATTEMPTS = 16


class RegistryBase(StoreClient):
    """A store client with the registry's plumbing (no public methods of its own)."""

    def _registry(self, max_age: float | None = None) -> RegistryState:
        """The registry, fresh (this process's buffer flushed first; the store listed unless it was
        less than ``max_age`` seconds ago, default ``EVTRACK_READ_FRESHNESS``)."""
        self._backend.refresh(max_age)
        return registry_of(self._backend.reader.domain(REGISTRY_DOMAIN))

    def _emit_all(self, events: Sequence[ev.Event]) -> None:
        for event in events:
            self._emit(event)
        self.flush()

    @staticmethod
    def _ts_after(*orders: Order) -> int:
        """Now, or just after the newest of ``orders`` when the local clock is behind it."""
        return max([now_ms(), *(o[0] + 1 for o in orders)])

    def _await_or_repair(self, done: Callable[[RegistryState], bool], event: ev.Event) -> RegistryState:
        """The registry once ``done`` holds; if ``event`` (from a claim) has not landed within
        REPAIR_WAIT_S of its timestamp, write it ourselves (the same event: a safe duplicate)."""
        deadline = time.monotonic() + max(0.0, min(REPAIR_WAIT_S, REPAIR_WAIT_S - (now_ms() - event.ts) / 1000))
        delay = 0.01
        while True:
            reg = self._registry(max_age=0)  # another process's event: list, do not trust the window
            if done(reg):
                return reg
            if time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        self._emit_all([event])
        return self._registry()

    def _settle_name(self, payload: dict[str, Any]) -> tuple[RegisteredModelState | None, RegistryState]:
        """The model a name claim gives the name to, if the claim is live (see ``claims``)."""
        event = claims.claim_event(payload)
        model_id, order = payload["model_id"], event.order

        def landed(reg: RegistryState) -> bool:
            m = reg.models.get(model_id)
            return m is not None and m.name_order >= order

        reg = self._registry(max_age=0)
        if not landed(reg):
            reg = self._await_or_repair(landed, event)
        m = reg.models.get(model_id)
        return (m if m is not None and m.live and m.name_order == order else None), reg

    def _claim_name(self, name: str, make_event: Callable[[], rev.RegistryEvent]) -> rev.RegistryEvent:
        """Claim ``name`` for the event ``make_event()`` builds; RESOURCE_ALREADY_EXISTS when taken."""
        if self._registry().live_model_named(name) is not None:  # the common case: no need to read claims
            raise ResourceAlreadyExistsError(f"Registered Model (name={name}) already exists.")
        for _ in range(_NAME_ATTEMPTS):
            generation, payload = claims.newest_name_claim(self.store, name)
            if payload is not None and self._settle_name(payload)[0] is not None:
                raise ResourceAlreadyExistsError(f"Registered Model (name={name}) already exists.")
            event = make_event()
            won, _ = claims.claim_name(self.store, name, generation + 1, event)
            if won:
                self._emit_all([event])
                return event
        raise StoreError(f"could not claim the registered model name {name!r} after {_NAME_ATTEMPTS} attempts")

    def _model(self, name: str) -> tuple[RegisteredModelState, RegistryState]:
        """The live registered model called ``name``; RESOURCE_DOES_NOT_EXIST when there is none."""
        name = rv.validate_model_name(name)
        reg = self._registry()
        m = reg.live_model_named(name)
        if m is None:  # a creation or rename in flight, or whose writer died: settle its claim
            _, payload = claims.newest_name_claim(self.store, name)
            if payload is not None:
                m, reg = self._settle_name(payload)
        if m is None or m.name != name:
            raise ResourceNotFoundError(f"Registered Model with name={name} not found")
        return m, reg

    def _version(self, name: str, version: Any) -> tuple[RegisteredModelState, ModelVersionState, RegistryState]:
        """A live model version; RESOURCE_DOES_NOT_EXIST when there is none."""
        number = rv.validate_version(version)
        m, reg = self._model(name)
        key = (m.model_id, number)
        v = reg.versions.get(key)
        if v is None or not v.exists:  # claimed but its event not (yet) in the log?
            payload = claims.read_version_claim(self.store, m.model_id, number)
            if payload is not None:
                reg = self._await_or_repair(
                    lambda r: key in r.versions and r.versions[key].exists, claims.version_claim_event(payload)
                )
                v = reg.versions.get(key)
        if v is None or not v.live:
            raise ResourceNotFoundError(f"Model Version (name={name}, version={number}) not found")
        return m, v, reg

    def _repair_versions(self, model_id: str, below: int, reg: RegistryState) -> None:
        """Write the events of version claims under ``below`` whose creator died before writing them."""
        if all((model_id, n) in reg.versions and reg.versions[(model_id, n)].exists for n in range(1, below)):
            return  # nothing missing: no need to list the claims
        stale = time.time() - REPAIR_WAIT_S
        repairs = []
        for number, mtime in claims.version_claims(self.store, model_id).items():
            v = reg.versions.get((model_id, number))
            if number < below and (v is None or not v.exists) and mtime < stale:
                payload = claims.read_version_claim(self.store, model_id, number)
                if payload is not None:
                    repairs.append(claims.version_claim_event(payload))
        if repairs:
            self._emit_all(repairs)
