"""MLflow's REST messages (JSON) as evtrack's entities, for the client over ``http(s)://``."""

from __future__ import annotations

from typing import Any

from evtrack.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    FileInfo,
    InputTag,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
)

_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


def number(value: Any) -> float:
    """A metric value as sent by a server (a number, or "NaN"/"Infinity"/"-Infinity")."""
    return float(value) if value is not None else float("nan")


def key_values(items: Any) -> dict[str, str]:
    return {kv["key"]: kv.get("value", "") for kv in items or ()}


def _int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def experiment(data: dict[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(data["experiment_id"]),
        name=data.get("name", ""),
        artifact_location=data.get("artifact_location", ""),
        lifecycle_stage=data.get("lifecycle_stage", "active"),
        tags=key_values(data.get("tags")),
        creation_time=_int(data.get("creation_time")),
        last_update_time=_int(data.get("last_update_time")),
    )


def run(data: dict[str, Any]) -> Run:
    info = data.get("info") or {}
    body = data.get("data") or {}
    status = info.get("status", "RUNNING")
    inputs = [
        DatasetInput(
            Dataset(
                d["dataset"].get("name", ""),
                d["dataset"].get("digest", ""),
                d["dataset"].get("source_type", ""),
                d["dataset"].get("source", ""),
                d["dataset"].get("schema"),
                d["dataset"].get("profile"),
            ),
            [InputTag(t["key"], t.get("value", "")) for t in d.get("tags") or ()],
        )
        for d in (data.get("inputs") or {}).get("dataset_inputs") or ()
    ]
    return Run(
        RunInfo(
            run_id=info.get("run_id") or info.get("run_uuid"),
            experiment_id=str(info.get("experiment_id")),
            run_name=info.get("run_name", ""),
            user_id=info.get("user_id", ""),
            status=_STATUS_NUMBERS.get(status, status) if isinstance(status, int) else status,
            start_time=_int(info.get("start_time")),
            end_time=_int(info.get("end_time")),
            artifact_uri=info.get("artifact_uri", ""),
            lifecycle_stage=info.get("lifecycle_stage", "active"),
        ),
        RunData(
            metrics={m["key"]: number(m.get("value")) for m in body.get("metrics") or ()},
            params=key_values(body.get("params")),
            tags=key_values(body.get("tags")),
        ),
        RunInputs(inputs),
    )


def metric(data: dict[str, Any], run_id: str | None = None) -> Metric:
    return Metric(
        data["key"], number(data.get("value")), int(data.get("timestamp") or 0), int(data.get("step") or 0), run_id
    )


def file_info(data: dict[str, Any]) -> FileInfo:
    return FileInfo(data["path"], bool(data.get("is_dir", False)), _int(data.get("file_size")))
