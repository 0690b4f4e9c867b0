"""Catalog claims that make registered model names and version numbers unique.

Layout (every object created with put-if-absent, never rewritten)::

    catalog/model-names/<sha256(name)[:40]>/<generation:010d>.json
    catalog/model-versions/<model_id>/<version:010d>.json

**Names** are claimed by generations. The newest generation of a name decides
who holds it: its payload carries the exact event that gives a model that name
(``registered_model_created`` or ``registered_model_renamed``), and the claim is
*live* while that event is the one that set the model's current name and the
model is not deleted. Creating or renaming into a name claims the next
generation, only when the newest one is not live. Nothing is ever deleted:
renaming away or deleting a model frees its name by an event, so two processes
can never both "release" and re-take a name (a delete-then-claim protocol could
let one process delete another's fresh claim).

**Versions** of a model are numbered under its ``model_id`` (stable across
renames), by ``catalog.claim_next_number``: 1, 2, 3, … without gaps or
duplicates, however many processes register at once. A deleted version keeps
its number, so numbers are never reused (as in MLflow). Deleting a model and
creating one with the same name gives a new ``model_id``, whose versions start
again at 1.

**Repair.** Each claim carries its event (eid and ts included). When a claim is
found whose event is not in the log — its creator died between the claim and
the flush, or is just slower than the reader — the reader writes that very event
itself. Writing the same event twice folds to the same state, so a repair is
always safe; readers wait a moment first to let a live creator finish.
"""

from __future__ import annotations

import hashlib
from typing import Any

from evtrack.eventlog import catalog
from evtrack.eventlog.events import Event, from_wire, to_wire
from evtrack.store.base import ObjectStore

MODEL_NAMES = "catalog/model-names/"
MODEL_VERSIONS = "catalog/model-versions/"


def name_prefix(name: str) -> str:
    """The folder of a name's generations (names are hashed: they may hold any character)."""
    return f"{MODEL_NAMES}{hashlib.sha256(name.encode()).hexdigest()[:40]}/"


def _number(prefix: str, key: str) -> int | None:
    stem = key[len(prefix) :].split(".", 1)[0]
    return int(stem) if stem.isdigit() else None


def newest_name_claim(store: ObjectStore, name: str) -> tuple[int, dict[str, Any] | None]:
    """(generation, payload) of the newest claim on ``name``; (0, None) when never claimed."""
    prefix = name_prefix(name)
    generations = [n for n in (_number(prefix, i.key) for i in store.list(prefix)) if n is not None]
    if not generations:
        return 0, None
    newest = max(generations)
    return newest, catalog.read_claim(store, f"{prefix}{newest:010d}.json")


def claim_name(store: ObjectStore, name: str, generation: int, event: Event) -> tuple[bool, dict[str, Any]]:
    """Try to claim generation ``generation`` of ``name`` for the model of ``event``; (won, winner)."""
    payload = {"name": name, "model_id": event.model_id, "event": to_wire(event)}  # type: ignore[attr-defined]
    return catalog.claim(store, f"{name_prefix(name)}{generation:010d}.json", payload)


def claim_event(payload: dict[str, Any]) -> Event:
    """The event a name claim stands for."""
    return from_wire(payload["event"])


def version_prefix(model_id: str) -> str:
    """The folder of a model's version claims."""
    return f"{MODEL_VERSIONS}{model_id}/"


def claim_version(store: ObjectStore, model_id: str, event_wire: dict[str, Any]) -> int:
    """Claim the next version number of a model; the claim carries the version's event
    (``event_wire``: its wire form without ``version_number``). Returns the number."""
    return catalog.claim_next_number(store, version_prefix(model_id), {"model_id": model_id, "event": event_wire})


def version_claim_event(payload: dict[str, Any]) -> Event:
    """The ``model_version_created`` event a version claim stands for."""
    return from_wire({**payload["event"], "version_number": payload["number"]})


def read_version_claim(store: ObjectStore, model_id: str, version: int) -> dict[str, Any] | None:
    """The claim of one version, or None."""
    return catalog.read_claim(store, f"{version_prefix(model_id)}{version:010d}.json")


def version_claims(store: ObjectStore, model_id: str) -> dict[int, float]:
    """The claimed version numbers of a model, with each claim's mtime (seconds)."""
    prefix = version_prefix(model_id)
    out = {}
    for info in store.list(prefix):
        number = _number(prefix, info.key)
        if number is not None:
            out[number] = info.mtime
    return out
