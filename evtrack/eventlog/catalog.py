"""Claims: small objects created with put-if-absent so that names and numbers are unique.

``catalog/experiment-names/<digest>.json`` maps an experiment name to its id;
``catalog/experiment-ids/<n:010d>.json`` reserves a numeric experiment id. Whoever
creates the object first owns the name or number; everyone else reads the winner.
The registry uses the same two primitives for model names and version numbers.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from typing import Any

import orjson

from evtrack.errors import CommitConflictError, ObjectNotFoundError, StoreError
from evtrack.store.base import ObjectStore

EXPERIMENT_NAMES = "catalog/experiment-names/"
EXPERIMENT_IDS = "catalog/experiment-ids/"
_MAX_ATTEMPTS = 64


def name_key(prefix: str, name: str) -> str:
    """The claim key of a name (hashed: names may hold any character)."""
    return f"{prefix}{hashlib.sha256(name.encode()).hexdigest()[:40]}.json"


def read_claim(store: ObjectStore, key: str) -> dict[str, Any] | None:
    """The payload of a claim, or None when nobody claimed it."""
    try:
        return orjson.loads(store.get(key))
    except ObjectNotFoundError:
        return None


def claim(store: ObjectStore, key: str, payload: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Try to claim ``key``; returns (won, the winning payload)."""
    for _ in range(20):
        try:
            store.put_if_absent(key, orjson.dumps(payload))
            return True, payload
        except CommitConflictError:
            existing = read_claim(store, key)
            if existing is not None:
                # Equal to ours: our PUT landed and only its response was lost (then retried).
                return existing == payload, existing
            # Released between our PUT and our read (a lost number claim, a rename): free again.
            time.sleep(0.05)
    raise StoreError(f"claim {key} is taken but cannot be read")


def release(store: ObjectStore, key: str) -> None:
    """Give a claim back (a rename frees the old name)."""
    store.delete(key)


def claim_next_number(store: ObjectStore, prefix: str, payload: dict[str, Any], start: int = 1) -> int:
    """Claim the smallest number above every claimed one under ``prefix``; returns it."""
    for attempt in range(_MAX_ATTEMPTS):
        highest = start - 1
        for info in store.list(prefix):
            stem = info.key[len(prefix) :].split(".", 1)[0]
            if stem.isdigit():
                highest = max(highest, int(stem))
        number = highest + 1
        mine = {**payload, "number": number, "nonce": uuid.uuid4().hex}
        won, _ = claim(store, f"{prefix}{number:010d}.json", mine)
        if won:
            return number
        else:
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
    raise StoreError(f"could not claim a number under {prefix} after {_MAX_ATTEMPTS} attempts")
