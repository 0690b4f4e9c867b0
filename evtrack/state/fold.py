"""The fold: events -> state. Pure (no I/O), deterministic, order-independent.

Every rule compares events by their total order ``(ts, eid)`` or takes set unions,
so folding the same events in any order, in any number of batches, or with exact
duplicates gives the same state. The compactor and the read path share it.

Rules (MLflow-compatible, see DESIGN.md "Fold semantics"):
- params: the earliest value by (ts, eid) wins; a different value is a conflict;
- tags: the latest set/delete by (ts, eid) wins;
- metrics: a set of points (step, timestamp, value); latest = max of
  (step, timestamp, value), NaN ranking above every number;
- run status/end_time, run name, lifecycle stage: the latest by (ts, eid);
- dataset inputs: one per (name, digest, context) of a run, the earliest by (ts, eid) wins;
- a feature's own state (the model registry's) lives in ``State.parts`` under its
  domain's name (``evtrack.state.domains``), folded by the handlers it registers on :func:`apply`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any, Iterable

from evtrack.eventlog import events as ev
from evtrack.entities import LifecycleStage, RunStatus
from evtrack.state.domains import new_parts

Order = tuple[int, str]
_NEVER: Order = (-1, "")


@dataclass(slots=True)
class Stamped:
    """A value with the (ts, eid) of the event that set it; ``value`` None is a tombstone."""

    value: str | None
    order: Order


@dataclass(slots=True)
class ExperimentState:
    """The folded state of one experiment."""

    experiment_id: str
    name: str = ""
    artifact_location: str = ""
    creation_time: int | None = None
    last_update_time: int | None = None
    created: Order = _NEVER
    name_order: Order = _NEVER
    lifecycle_stage: str = LifecycleStage.ACTIVE
    lifecycle_order: Order = _NEVER
    tags: dict[str, Stamped] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        """True once the experiment_created event has been folded."""
        return self.created != _NEVER

    @property
    def deleted_time(self) -> int | None:
        """When the experiment was deleted (ms), if it is."""
        return self.lifecycle_order[0] if self.lifecycle_stage == LifecycleStage.DELETED else None


@dataclass(slots=True)
class RunState:
    """The folded state of one run (without params, tags and metrics)."""

    run_id: str
    experiment_id: str = ""
    run_name: str = ""
    user_id: str = ""
    start_time: int | None = None
    artifact_uri: str = ""
    parent_run_id: str | None = None
    created: Order = _NEVER
    status: str = RunStatus.RUNNING
    end_time: int | None = None
    status_order: Order = _NEVER
    name_order: Order = _NEVER
    lifecycle_stage: str = LifecycleStage.ACTIVE
    lifecycle_order: Order = _NEVER

    @property
    def exists(self) -> bool:
        """True once the run_created event has been folded."""
        return self.created != _NEVER

    @property
    def deleted_time(self) -> int | None:
        """When the run was deleted (ms), if it is."""
        return self.lifecycle_order[0] if self.lifecycle_stage == LifecycleStage.DELETED else None


@dataclass(frozen=True, slots=True)
class ParamConflict:
    """A later param event whose value differs from the value that won."""

    run_id: str
    key: str
    kept: str
    rejected: str
    eid: str  # the earliest event with the rejected value
    ts: int = 0


@dataclass(slots=True)
class Artifact:
    """An artifact recorded for a run."""

    path: str
    size: int
    digest: str
    order: Order


DELETED_SIZE = -1  # Artifact.size of a deleted file's tombstone


@dataclass(slots=True)
class DatasetInput:
    """A dataset a run used, in one context (MLflow's DatasetInput with its context tag)."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None
    profile: str | None
    context: str | None
    tags: dict[str, str]
    order: Order


InputKey = tuple[str, str, str]  # (name, digest, context or "")

# The per-run maps of State, keyed by run_id: what a run partition holds.
RUN_KEYED = ("runs", "params", "tags", "metrics", "artifacts", "inputs")


def metric_rank(step: int, timestamp: int, value: float) -> tuple[int, int, int, float]:
    """MLflow's 'latest' order: (step, timestamp, value), NaN above every number."""
    if value != value:
        return (step, timestamp, 1, 0.0)
    return (step, timestamp, 0, value)


@dataclass(slots=True)
class MetricSeries:
    """All distinct points of one metric of one run, and the latest one."""

    points: dict[tuple[int, int, float | str], float] = field(default_factory=dict)
    latest: tuple[int, int, float] | None = None  # (step, timestamp, value)

    def add(self, step: int, timestamp: int, value: float) -> bool:
        """Add a point (exact duplicates count once); whether it was new."""
        key = (step, timestamp, "nan" if value != value else value)  # NaN != NaN: one key for every NaN
        points = self.points
        if key in points:
            return False
        points[key] = value
        latest = self.latest
        # most points come in step order: a higher step is the latest without ranking both
        if (
            latest is None
            or step > latest[0]
            or (step == latest[0] and metric_rank(step, timestamp, value) > metric_rank(*latest))
        ):
            self.latest = (step, timestamp, value)
        return True

    def history(self) -> list[tuple[int, int, float]]:
        """Points as (step, timestamp, value), ordered by step, timestamp, then value."""
        pts = [(k[0], k[1], v) for k, v in self.points.items()]
        pts.sort(key=lambda p: metric_rank(*p))
        return pts


@dataclass(slots=True)
class State:
    """Everything the fold knows. Mutable only through :func:`apply`."""

    experiments: dict[str, ExperimentState] = field(default_factory=dict)
    runs: dict[str, RunState] = field(default_factory=dict)
    params: dict[str, dict[str, Stamped]] = field(default_factory=dict)
    conflicts: list[ParamConflict] = field(default_factory=list)
    tags: dict[str, dict[str, Stamped]] = field(default_factory=dict)
    metrics: dict[str, dict[str, MetricSeries]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Artifact]] = field(default_factory=dict)
    inputs: dict[str, dict[InputKey, DatasetInput]] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=new_parts)  # the registered domains' own state

    def experiment(self, experiment_id: str) -> ExperimentState:
        """The (possibly not yet created) state of an experiment."""
        st = self.experiments.get(experiment_id)
        if st is None:
            st = self.experiments[experiment_id] = ExperimentState(experiment_id)
        return st

    def run(self, run_id: str) -> RunState:
        """The (possibly not yet created) state of a run."""
        st = self.runs.get(run_id)
        if st is None:
            st = self.runs[run_id] = RunState(run_id)
        return st

    def live_tags(self, run_id: str) -> dict[str, str]:
        """A run's current tags (tombstones removed)."""
        return {k: s.value for k, s in self.tags.get(run_id, {}).items() if s.value is not None}

    def live_params(self, run_id: str) -> dict[str, str]:
        """A run's params."""
        return {k: s.value for k, s in self.params.get(run_id, {}).items() if s.value is not None}

    def note_latest(self, run_id: str, key: str, step: int, timestamp: int, value: float) -> None:
        """Raise a metric's latest value when this point ranks higher; keeps no history
        (the compactor and readers over tables take histories from the metrics table)."""
        per_run = self.metrics.get(run_id)
        if per_run is None:
            per_run = self.metrics[run_id] = {}
        series = per_run.get(key)
        if series is None:
            per_run[key] = MetricSeries(latest=(step, timestamp, value))
        elif series.latest is None or metric_rank(step, timestamp, value) > metric_rank(*series.latest):
            series.latest = (step, timestamp, value)

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """A run's latest metric values."""
        return {k: s.latest[2] for k, s in self.metrics.get(run_id, {}).items() if s.latest}


def fold(events: Iterable[ev.Event], state: State | None = None) -> State:
    """Fold events into a state (a new one unless given); returns the state."""
    st = state if state is not None else State()
    for event in events:
        apply(event, st)
    return st


@singledispatch
def apply(event: ev.Event, st: State) -> None:
    """Apply one event to the state."""
    raise TypeError(f"no fold rule for event type {type(event).__name__}")


def _set_stamped(target: dict[str, Stamped], key: str, value: str | None, order: Order) -> None:
    cur = target.get(key)
    if cur is None or order > cur.order:
        target[key] = Stamped(value, order)


def _touch(exp: ExperimentState, ts: int) -> None:
    if exp.last_update_time is None or ts > exp.last_update_time:
        exp.last_update_time = ts


@apply.register
def _(e: ev.ExperimentCreated, st: State) -> None:
    exp = st.experiment(e.experiment_id)
    order = e.order
    if exp.created == _NEVER or order < exp.created:
        exp.created = order
        exp.artifact_location = e.artifact_location
        exp.creation_time = e.ts
    # The name is the latest of creation and renames.
    if order > exp.name_order:
        exp.name, exp.name_order = e.name, order
    for key, value in e.tags.items():
        _set_stamped(exp.tags, key, value, order)
    _touch(exp, e.ts)


@apply.register
def _(e: ev.ExperimentRenamed, st: State) -> None:
    exp = st.experiment(e.experiment_id)
    if e.order > exp.name_order:
        exp.name, exp.name_order = e.name, e.order
    _touch(exp, e.ts)


def _lifecycle(target: ExperimentState | RunState, stage: str, order: Order) -> None:
    if order > target.lifecycle_order:
        target.lifecycle_stage, target.lifecycle_order = stage, order


@apply.register
def _(e: ev.ExperimentDeleted, st: State) -> None:
    exp = st.experiment(e.experiment_id)
    _lifecycle(exp, LifecycleStage.DELETED, e.order)
    _touch(exp, e.ts)


@apply.register
def _(e: ev.ExperimentRestored, st: State) -> None:
    exp = st.experiment(e.experiment_id)
    _lifecycle(exp, LifecycleStage.ACTIVE, e.order)
    _touch(exp, e.ts)


@apply.register
def _(e: ev.ExperimentTagSet, st: State) -> None:
    exp = st.experiment(e.experiment_id)
    _set_stamped(exp.tags, e.key, e.value, e.order)
    _touch(exp, e.ts)


@apply.register
def _(e: ev.ExperimentTagDeleted, st: State) -> None:
    exp = st.experiment(e.experiment_id)
    _set_stamped(exp.tags, e.key, None, e.order)
    _touch(exp, e.ts)


@apply.register
def _(e: ev.RunCreated, st: State) -> None:
    run = st.run(e.run_id)
    order = e.order
    if run.created == _NEVER or order < run.created:
        run.created = order
        run.experiment_id = e.experiment_id
        run.user_id = e.user_id
        run.start_time = e.start_time
        run.artifact_uri = e.artifact_uri
        run.parent_run_id = e.parent_run_id
    if order > run.name_order:
        run.run_name, run.name_order = e.run_name, order
    if order > run.status_order:
        run.status, run.end_time, run.status_order = RunStatus.RUNNING, None, order
    tags = st.tags.setdefault(e.run_id, {})
    for key, value in e.tags.items():
        _set_stamped(tags, key, value, order)


@apply.register
def _(e: ev.RunUpdated, st: State) -> None:
    run = st.run(e.run_id)
    order = e.order
    if e.status is not None and order > run.status_order:
        run.status, run.end_time, run.status_order = e.status, e.end_time, order
    if e.run_name is not None and order > run.name_order:
        run.run_name, run.name_order = e.run_name, order


@apply.register
def _(e: ev.RunDeleted, st: State) -> None:
    _lifecycle(st.run(e.run_id), LifecycleStage.DELETED, e.order)


@apply.register
def _(e: ev.RunRestored, st: State) -> None:
    _lifecycle(st.run(e.run_id), LifecycleStage.ACTIVE, e.order)


@apply.register
def _(e: ev.ParamLogged, st: State) -> None:
    params = st.params.setdefault(e.run_id, {})
    cur = params.get(e.key)
    order = e.order
    if cur is None:
        params[e.key] = Stamped(e.value, order)
        return
    if cur.value == e.value:
        if order < cur.order:
            cur.order = order
        return
    # Two different values: the earliest wins, the other is a conflict.
    if order < cur.order:
        params[e.key] = Stamped(e.value, order)
        _note_conflict(st, e.run_id, e.key, cur.value or "", cur.order)
    else:
        _note_conflict(st, e.run_id, e.key, e.value, order)


def _note_conflict(st: State, run_id: str, key: str, rejected: str, order: Order) -> None:
    """Record a rejected param value: one conflict per losing value (its earliest event),
    none for the winning value, each naming the current winner — the same in any fold order."""
    kept = st.params[run_id][key].value or ""
    out: list[ParamConflict] = []
    for c in st.conflicts:
        if c.run_id == run_id and c.key == key:
            if c.rejected == kept:
                continue  # that value has since won
            if c.rejected == rejected:
                order = min(order, (c.ts, c.eid))
                continue
            if c.kept != kept:
                c = ParamConflict(run_id, key, kept, c.rejected, c.eid, c.ts)
        out.append(c)
    out.append(ParamConflict(run_id, key, kept, rejected, order[1], order[0]))
    st.conflicts[:] = out


@apply.register
def _(e: ev.MetricLogged, st: State) -> None:
    per_run = st.metrics.get(e.run_id)
    if per_run is None:
        per_run = st.metrics[e.run_id] = {}
    series = per_run.get(e.key)
    if series is None:
        series = per_run[e.key] = MetricSeries()
    series.add(e.step, e.timestamp, e.value)


@apply.register
def _(e: ev.TagSet, st: State) -> None:
    _set_stamped(st.tags.setdefault(e.run_id, {}), e.key, e.value, e.order)


@apply.register
def _(e: ev.TagDeleted, st: State) -> None:
    _set_stamped(st.tags.setdefault(e.run_id, {}), e.key, None, e.order)


@apply.register
def _(e: ev.ArtifactLogged, st: State) -> None:
    arts = st.artifacts.setdefault(e.run_id, {})
    cur = arts.get(e.path)
    if cur is None or e.order > cur.order:
        arts[e.path] = Artifact(e.path, e.size, e.digest, e.order)


@apply.register
def _(e: ev.ArtifactDeleted, st: State) -> None:
    # a tombstone (size -1), kept so that an older artifact_logged folded later stays deleted;
    # a newer one brings the path back. The artifacts view shows sizes >= 0 only.
    arts = st.artifacts.setdefault(e.run_id, {})
    cur = arts.get(e.path)
    if cur is None or e.order > cur.order:
        arts[e.path] = Artifact(e.path, DELETED_SIZE, "", e.order)


@apply.register
def _(e: ev.InputLogged, st: State) -> None:
    inputs = st.inputs.setdefault(e.run_id, {})
    key = (e.name, e.digest, e.context or "")
    cur = inputs.get(key)
    if cur is None or e.order < cur.order:  # the first logging of a dataset in a context wins
        inputs[key] = DatasetInput(
            e.name, e.digest, e.source_type, e.source, e.schema, e.profile, e.context, dict(e.tags), e.order
        )
