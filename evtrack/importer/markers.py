"""Import markers: which source objects are durable in the store, under ``catalog/imports/<source>/``.

``experiments/<source id>.json`` maps a source experiment to its evtrack id (written once its
events are flushed); ``runs/<batch>.json`` maps each run of one flushed batch to the
fingerprint of the source run it copied. A run whose fingerprint matches is skipped.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from evtrack.errors import CommitConflictError
from evtrack.eventlog import catalog
from evtrack.store.base import ObjectStore

PREFIX = "catalog/imports/"


class Markers:
    """The markers of one source in one store, read once at the start."""

    def __init__(self, store: ObjectStore, source: str) -> None:
        self.store = store
        self.prefix = f"{PREFIX}{source}/"
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, str] = {}
        for info in store.list(self.prefix):
            payload = catalog.read_claim(store, info.key)
            if payload is None:
                continue
            if info.key.startswith(f"{self.prefix}experiments/"):
                self.experiments[payload["source_id"]] = payload
            elif info.key.startswith(f"{self.prefix}runs/"):
                self.runs.update(payload["runs"])

    def experiment_done(self, source_id: str, payload: dict[str, Any]) -> None:
        """Record a source experiment as copied."""
        key = f"{self.prefix}experiments/{hashlib.sha256(source_id.encode()).hexdigest()[:24]}.json"
        self.store.put(key, orjson.dumps({"source_id": source_id, **payload}))
        self.experiments[source_id] = {"source_id": source_id, **payload}

    def runs_done(self, fingerprints: dict[str, str]) -> None:
        """Record a flushed batch of runs (run id -> fingerprint) as copied."""
        if not fingerprints:
            return
        body = orjson.dumps({"runs": fingerprints}, option=orjson.OPT_SORT_KEYS)
        key = f"{self.prefix}runs/{hashlib.sha256(body).hexdigest()[:32]}.json"
        try:
            self.store.put_if_absent(key, body)
        except CommitConflictError:
            pass  # the same batch, already recorded
        self.runs.update(fingerprints)
