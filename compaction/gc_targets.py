"""What a gc purges: the runs and experiments deleted longer ago than ``older_than``.

Deletion times come from the newest manifest's runs and experiments tables plus the
lifecycle events of the inbox tail (``lifecycle_state``), so a run deleted after the
last compaction is seen. Ids named by the caller are checked: unknown ids, ids not
deleted and ids deleted too recently are refused by name before anything is touched
(``mlflow gc``'s rules and errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.state import tables
from evtrack.entities import LifecycleStage
from evtrack.errors import InvalidParameterError, InvalidStateError, ResourceNotFoundError
from evtrack.state.fold import ExperimentState, RunState, State, apply
from evtrack.store.base import ObjectStore
from evtrack.state.table_files import read_files

from compaction.batches import fetch_batches
from compaction.inbox import pending_segments

_LIFECYCLE_EVENTS = (
    ev.RunCreated,
    ev.RunDeleted,
    ev.RunRestored,
    ev.ExperimentCreated,
    ev.ExperimentRenamed,
    ev.ExperimentDeleted,
    ev.ExperimentRestored,
)


@dataclass
class Targets:
    """What a purge removes: run id -> artifact URI, experiment id -> name."""

    runs: dict[str, str] = field(default_factory=dict)
    experiments: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.runs or self.experiments)


_RUN_LIFECYCLE_TYPES = [cls.type for cls in _LIFECYCLE_EVENTS if cls.type.startswith("run_")]


def _tail_lifecycle_events(store: ObjectStore, base: mf.Manifest) -> list[ev.Event]:
    """The lifecycle events of inbox segments ``base`` does not cover (metrics are skipped)."""
    new, _ = pending_segments(store, base)
    found: list[ev.Event] = []
    for batch in fetch_batches(store, new):
        for seg in batch.segments:
            found.extend(e for e, _line in seg.events if isinstance(e, _LIFECYCLE_EVENTS))
        if batch.runs is not None:  # run events travel as rows (compaction.run_fold): their lines decode again
            kept = batch.runs.filter(pc.is_in(batch.runs.column("type"), pa.array(_RUN_LIFECYCLE_TYPES)))
            found.extend(ev.decode_line(body) for body in kept.column("body").to_pylist())
    return found


def lifecycle_state(store: ObjectStore, base: mf.Manifest) -> State:
    """Lifecycle-only fold state: every experiment, and the runs that are (or may be) deleted.

    Reads projected columns of the ``experiments`` and ``runs`` tables (runs filtered
    to the deleted ones, those of deleted experiments, and those the tail touches),
    then folds the tail's lifecycle events on top; memory grows with deleted runs only.
    """
    tail = _tail_lifecycle_events(store, base)
    st = State()
    exp_cols = [
        "experiment_id",
        "name",
        "lifecycle_stage",
        "created_ts",
        "created_eid",
        "name_ts",
        "name_eid",
        "lifecycle_ts",
        "lifecycle_eid",
    ]
    exps = read_files(store, [f["path"] for f in base.files("experiments")], tables.schema("experiments"), exp_cols)
    for r in exps.to_pylist():
        st.experiments[r["experiment_id"]] = ExperimentState(
            r["experiment_id"],
            name=r["name"],
            created=(r["created_ts"], r["created_eid"]),
            name_order=(r["name_ts"], r["name_eid"]),
            lifecycle_stage=r["lifecycle_stage"],
            lifecycle_order=(r["lifecycle_ts"], r["lifecycle_eid"]),
        )
    for e in tail:
        if not hasattr(e, "run_id"):
            apply(e, st)
    deleted_exps = [x for x, e in st.experiments.items() if e.lifecycle_stage == LifecycleStage.DELETED]
    tail_runs = sorted({e.run_id for e in tail if hasattr(e, "run_id")})  # type: ignore[attr-defined]
    wanted = pc.field("lifecycle_stage") == LifecycleStage.DELETED
    if deleted_exps:
        wanted = wanted | pc.field("experiment_id").isin(deleted_exps)
    if tail_runs:
        wanted = wanted | pc.field("run_id").isin(tail_runs)
    run_cols = [
        "run_id",
        "experiment_id",
        "artifact_uri",
        "created_ts",
        "created_eid",
        "lifecycle_stage",
        "lifecycle_ts",
        "lifecycle_eid",
    ]
    runs = read_files(store, [f["path"] for f in base.files("runs")], tables.schema("runs"), run_cols, wanted)
    for r in runs.to_pylist():
        st.runs[r["run_id"]] = RunState(
            r["run_id"],
            experiment_id=r["experiment_id"],
            artifact_uri=r["artifact_uri"],
            created=(r["created_ts"], r["created_eid"]),
            lifecycle_stage=r["lifecycle_stage"],
            lifecycle_order=(r["lifecycle_ts"], r["lifecycle_eid"]),
        )
    for e in tail:
        if hasattr(e, "run_id"):
            apply(e, st)
    return st


def _run_deleted_time(st: State, run: RunState) -> int | None:
    """When a run became deleted: by itself or with its experiment, whichever came first."""
    exp = st.experiments.get(run.experiment_id)
    times = [t for t in (run.deleted_time, exp.deleted_time if exp is not None else None) if t is not None]
    return min(times) if times else None


def select_targets(
    store: ObjectStore,
    base: mf.Manifest,
    threshold_ms: int,
    check_age: bool,
    run_ids: list[str] | None,
    experiment_ids: list[str] | None,
) -> Targets:
    """The runs and experiments to purge, with ``mlflow gc``'s rules and errors."""
    st = lifecycle_state(store, base)
    runs = {r: run for r, run in st.runs.items() if run.exists}
    exps = {x: e for x, e in st.experiments.items() if e.exists}
    old_enough: Callable[[int | None], bool] = lambda t: t is not None and (not check_age or t <= threshold_ms)
    if run_ids is None:
        chosen_runs = {r for r, run in runs.items() if old_enough(_run_deleted_time(st, run))}
    else:
        # Unknown ids are checked in the manifest's full runs table only when not found here.
        _check_ids(
            "Run",
            run_ids,
            lambda r: r in runs or _run_exists(store, base, r),
            lambda r: r in runs and _run_deleted_time(st, runs[r]) is not None,
            lambda r: old_enough(_run_deleted_time(st, runs[r])),
        )
        chosen_runs = set(run_ids)
    if experiment_ids is None:
        chosen_exps = {x for x, e in exps.items() if old_enough(e.deleted_time)}
    else:
        _check_ids(
            "Experiment",
            experiment_ids,
            lambda x: x in exps,
            lambda x: exps[x].deleted_time is not None,
            lambda x: old_enough(exps[x].deleted_time),
        )
        chosen_exps = set(experiment_ids)
    chosen_runs |= {r for r, run in runs.items() if run.experiment_id in chosen_exps}
    return Targets(
        runs={r: runs[r].artifact_uri for r in chosen_runs}, experiments={x: exps[x].name for x in chosen_exps}
    )


def _run_exists(store: ObjectStore, base: mf.Manifest, run_id: str) -> bool:
    found = read_files(
        store,
        [f["path"] for f in base.files("runs") if f.get("partition") == tables.partition_of(run_id)],
        tables.schema("runs"),
        ["run_id"],
        pc.field("run_id") == run_id,
    )
    return found.num_rows > 0


def _check_ids(
    kind: str, ids: list[str], exists: Callable[[str], bool], deleted: Callable[[str], bool], old: Callable[[str], bool]
) -> None:
    missing = [i for i in ids if not exists(i)]
    if missing:
        raise ResourceNotFoundError(f"{kind}s not found: {', '.join(missing)}")
    active = [i for i in ids if not deleted(i)]
    if active:
        raise InvalidStateError(
            f"{kind}s {', '.join(active)} are not in the deleted lifecycle stage; "
            f"only deleted {kind.lower()}s can be permanently deleted"
        )
    young = [i for i in ids if not old(i)]
    if young:
        raise InvalidParameterError(f"{kind}s {', '.join(young)} are not older than the required age (--older-than)")
