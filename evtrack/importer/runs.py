"""Runs: one source run becomes events with ids and times taken from the source.

Times: ``run_created`` at the run's start time, params and inputs at the start time too,
each metric point at its own timestamp, ``run_updated`` (status, end time) and
``run_deleted`` at the end time (the start time when there is none). Event ids are
``imp<source>-<run id>-<kind><n>``: within one run, kinds sort created < params < inputs
< metrics < artifacts < updated < deleted, so ties on the time keep MLflow's order.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import orjson

from evtrack.eventlog import events as ev
from evtrack.importer import source as src
from evtrack.store import artifact_store
from evtrack.tracking.artifacts import file_digest

CONTEXT_TAG = "mlflow.data.context"


@dataclass
class RunCounts:
    """What copying runs wrote."""

    runs: int = 0
    params: int = 0
    tags: int = 0
    metric_points: int = 0
    inputs: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def fingerprint(run: Any) -> str:
    """A digest of what a search returns about a run: a changed source run gets copied again."""
    info, data = run.info, run.data
    doc = [
        info.status,
        info.end_time,
        info.lifecycle_stage,
        info.run_name,
        sorted(data.params.items()),
        sorted(data.tags.items()),
        sorted((m.key, m.step, m.timestamp, repr(m.value)) for m in getattr(data, "_metric_objs", [])),
        sorted((d.dataset.name, d.dataset.digest) for d in (run.inputs.dataset_inputs if run.inputs else [])),
    ]
    return hashlib.sha256(orjson.dumps(doc)).hexdigest()[:32]


def copy_run(client: Any, source: Any, run: Any, experiment_id: str, location: str, tag: str, n: RunCounts) -> None:
    """Emit the events of one source run (and upload its artifacts) into evtrack's buffer."""
    info, data = run.info, run.data
    rid = info.run_id
    prefix = f"imp{tag}-{rid}-"
    start = info.start_time or 0
    end = max(info.end_time if info.end_time is not None else start, start)
    artifact_uri = f"{location}/{rid}/artifacts"
    lines = [
        ev.encode(
            ev.RunCreated(
                eid=prefix + "a",
                ts=start,
                run_id=rid,
                experiment_id=experiment_id,
                run_name=info.run_name or data.tags.get("mlflow.runName", ""),
                user_id=info.user_id or data.tags.get("mlflow.user", ""),
                start_time=start,
                artifact_uri=artifact_uri,
                parent_run_id=data.tags.get("mlflow.parentRunId"),
                tags=dict(data.tags),
            )
        )
    ]
    for i, (key, value) in enumerate(sorted(data.params.items())):
        lines.append(ev.encode(ev.ParamLogged(eid=f"{prefix}p{i:06d}", ts=start, run_id=rid, key=key, value=value)))
    for i, item in enumerate(run.inputs.dataset_inputs if run.inputs else []):
        d = item.dataset
        tags = {t.key: t.value for t in item.tags}
        context = tags.pop(CONTEXT_TAG, None) or None
        lines.append(
            ev.encode(
                ev.InputLogged(
                    eid=f"{prefix}i{i:06d}",
                    ts=start,
                    run_id=rid,
                    name=d.name,
                    digest=d.digest,
                    source_type=d.source_type,
                    source=d.source,
                    schema=d.schema or None,
                    profile=d.profile or None,
                    context=context,
                    tags=tags,
                )
            )
        )
    n.inputs += len(lines) - 1 - len(data.params)
    seq = 0
    for key in sorted(data.metrics):
        for point in source.get_metric_history(rid, key):
            lines.append(
                ev.encode_metric_line(
                    f"{prefix}m{seq:010d}", point.timestamp, rid, key, point.value, point.step, point.timestamp
                )
            )
            seq += 1
    n.metric_points += seq
    client._backend.writer.append_many(lines)
    lines = []
    seq = 0
    if info.artifact_uri:
        dest = artifact_store(artifact_uri)
        for f in src.artifact_files(source, rid):
            with tempfile.TemporaryDirectory(prefix="evtrack-import-") as tmp:
                local = source.download_artifacts(rid, f.path, tmp)  # one file on disk, never in memory
                size, digest = file_digest(local)
                dest.put_file(f.path, local)
                os.remove(local)
            lines.append(
                ev.encode(
                    ev.ArtifactLogged(
                        eid=f"{prefix}f{seq:06d}", ts=end, run_id=rid, path=f.path, size=size, digest=digest
                    )
                )
            )
            seq += 1
            n.artifact_bytes += size
    n.artifacts += seq
    if info.status != "RUNNING" or info.end_time is not None:
        lines.append(
            ev.encode(ev.RunUpdated(eid=prefix + "u", ts=end, run_id=rid, status=info.status, end_time=info.end_time))
        )
    if info.lifecycle_stage == "deleted":
        lines.append(ev.encode(ev.RunDeleted(eid=prefix + "x", ts=end, run_id=rid)))
    client._backend.writer.append_many(lines)
    n.runs += 1
    n.params += len(data.params)
    n.tags += len(data.tags)
