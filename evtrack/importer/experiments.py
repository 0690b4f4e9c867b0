"""Experiments: keep the source id when it is free, claim the name, emit the experiment's events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from evtrack.errors import CommitConflictError
from evtrack.eventlog import catalog
from evtrack.eventlog import events as ev
from evtrack.importer.markers import Markers


@dataclass(frozen=True)
class Target:
    """Where a source experiment's runs go in evtrack."""

    experiment_id: str
    artifact_location: str
    merged: bool  # into an experiment that already had the name


def _claim_id(store: Any, source_id: str, name: str, tag: str) -> str:
    """The source id when it is free (or already ours), else the next free number."""
    payload = {"name": name, "import": tag}
    if source_id.isdigit():
        number = int(source_id)
        key = f"{catalog.EXPERIMENT_IDS}{number:010d}.json"
        won, _ = catalog.claim(store, key, {**payload, "number": number})
        if won:
            return source_id
    return str(catalog.claim_next_number(store, catalog.EXPERIMENT_IDS, payload))


def copy_experiment(client: Any, exp: Any, markers: Markers, tag: str) -> tuple[Target, bool]:
    """Create (or find) the evtrack experiment of source experiment ``exp``; (target, written?)."""
    done = markers.experiments.get(exp.experiment_id)
    if done is not None:
        return Target(done["experiment_id"], done["artifact_location"], done["merged"]), False
    store = client.store
    name_key = catalog.name_key(catalog.EXPERIMENT_NAMES, exp.name)
    claim = catalog.read_claim(store, name_key)
    merged = claim is not None and claim.get("import") != tag
    if merged:
        target_id = claim["experiment_id"]
        existing = client._experiment_state(target_id)
        location = existing.artifact_location
        for i, (key, value) in enumerate(sorted(exp.tags.items())):
            if existing.tags.get(key) != value:
                client._emit(
                    ev.ExperimentTagSet(
                        eid=_eid(tag, exp, f"t{i:06d}"),
                        ts=exp.last_update_time or ev.now_ms(),
                        experiment_id=target_id,
                        key=key,
                        value=value,
                    )
                )
    else:
        target_id = claim["experiment_id"] if claim else _claim_id(store, exp.experiment_id, exp.name, tag)
        location = f"{store.uri}/artifacts/{target_id}"
        payload = {"name": exp.name, "experiment_id": target_id, "artifact_location": location, "import": tag}
        try:
            store.put_if_absent(name_key, orjson.dumps(payload))
        except CommitConflictError:
            pass  # ours from an interrupted run (checked above), or a race we lose quietly
        created = exp.creation_time or 0
        client._emit(
            ev.ExperimentCreated(
                eid=_eid(tag, exp, "a"),
                ts=created,
                experiment_id=target_id,
                name=exp.name,
                artifact_location=location,
                tags=dict(exp.tags),
            )
        )
        updated = exp.last_update_time or created
        if exp.lifecycle_stage == "deleted":
            client._emit(ev.ExperimentDeleted(eid=_eid(tag, exp, "x"), ts=updated, experiment_id=target_id))
        elif updated > created:  # carries MLflow's last_update_time
            client._emit(
                ev.ExperimentRenamed(eid=_eid(tag, exp, "u"), ts=updated, experiment_id=target_id, name=exp.name)
            )
    client.flush()
    markers.experiment_done(
        exp.experiment_id, {"experiment_id": target_id, "artifact_location": location, "merged": merged}
    )
    return Target(target_id, location, merged), True


def _eid(tag: str, exp: Any, suffix: str) -> str:
    return f"imp{tag}-e{exp.experiment_id}-{suffix}"
