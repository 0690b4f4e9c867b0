"""The fold: pure, order-independent, idempotent, with MLflow's rules for params, tags, metrics, status."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtrack.eventlog import events as ev
from evtrack.state.fold import State, apply, fold

RUNS = ("r1", "r2", "r3")
EXPERIMENTS = ("0", "1")
KEYS = ("a", "b", "c")
VALUES = ("x", "y", "z")
METRIC_VALUES = (0.0, -0.0, 1.0, -1.0, 2.5, math.nan, math.inf, -math.inf)
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")


# -- a canonical, comparable projection of a state ----------------------------------------------


def _num(value: float) -> Any:
    return "NaN" if value != value else value


def project(state: State) -> dict[str, Any]:
    """Everything a user can see of a state, in plain comparable values."""
    return {
        "experiments": {
            eid: (
                e.exists,
                e.name,
                e.artifact_location,
                e.creation_time,
                e.last_update_time,
                e.lifecycle_stage,
                {k: s.value for k, s in e.tags.items() if s.value is not None},
            )
            for eid, e in state.experiments.items()
        },
        "runs": {
            rid: (
                r.exists,
                r.experiment_id,
                r.run_name,
                r.user_id,
                r.start_time,
                r.artifact_uri,
                r.parent_run_id,
                r.status,
                r.end_time,
                r.lifecycle_stage,
            )
            for rid, r in state.runs.items()
        },
        "params": {rid: state.live_params(rid) for rid in state.params if state.live_params(rid)},
        "tags": {rid: state.live_tags(rid) for rid in state.tags if state.live_tags(rid)},
        "latest": {rid: {k: _num(v) for k, v in state.latest_metrics(rid).items()} for rid in state.metrics},
        "histories": {
            rid: {k: [(s, t, _num(v)) for s, t, v in series.history()] for k, series in per_run.items()}
            for rid, per_run in state.metrics.items()
        },
        "artifacts": {
            rid: {path: (a.size, a.digest) for path, a in arts.items()} for rid, arts in state.artifacts.items()
        },
        "conflicts": sorted({(c.run_id, c.key, c.rejected, c.eid) for c in state.conflicts}),
    }


# -- random event logs --------------------------------------------------------------------------


# Kind numbers of event_logs, params/tags/metrics/status more often (ties and conflicts matter there).
_KINDS = (*range(15), 7, 10, 10, 10, 11, 12, 14, 14)


@st.composite
def event_logs(draw: st.DrawFn) -> list[ev.Event]:
    """A log of random events over few runs/keys/timestamps, so ties and conflicts are common."""
    n = draw(st.integers(min_value=1, max_value=30))
    out: list[ev.Event] = []
    for i in range(n):
        base = {
            "eid": f"{draw(st.sampled_from(('w1', 'w2', 'w3')))}-{i}",
            "ts": draw(st.integers(min_value=0, max_value=4)),
        }
        run = draw(st.sampled_from(RUNS[:2]))
        exp = draw(st.sampled_from(EXPERIMENTS))
        key = draw(st.sampled_from(KEYS))
        value = draw(st.sampled_from(VALUES))
        kind = draw(st.sampled_from(_KINDS))
        event: ev.Event
        if kind == 0:
            event = ev.ExperimentCreated(
                **base, experiment_id=exp, name=f"exp-{value}", artifact_location=f"loc-{value}", tags={key: value}
            )
        elif kind == 1:
            event = ev.ExperimentRenamed(**base, experiment_id=exp, name=f"renamed-{value}")
        elif kind == 2:
            event = ev.ExperimentDeleted(**base, experiment_id=exp)
        elif kind == 3:
            event = ev.ExperimentRestored(**base, experiment_id=exp)
        elif kind == 4:
            event = ev.ExperimentTagSet(**base, experiment_id=exp, key=key, value=value)
        elif kind == 5:
            event = ev.ExperimentTagDeleted(**base, experiment_id=exp, key=key)
        elif kind == 6:
            event = ev.RunCreated(
                **base,
                run_id=run,
                experiment_id=exp,
                run_name=f"name-{value}",
                user_id=value,
                start_time=base["ts"],
                artifact_uri=f"art-{run}",
                parent_run_id=draw(st.sampled_from((None, *RUNS))),
                tags={key: value},
            )
        elif kind == 7:
            status = draw(st.sampled_from((None, *STATUSES)))
            event = ev.RunUpdated(
                **base,
                run_id=run,
                status=status,
                end_time=base["ts"] if status not in (None, "RUNNING") else None,
                run_name=draw(st.sampled_from((None, f"new-{value}"))),
            )
        elif kind == 8:
            event = ev.RunDeleted(**base, run_id=run)
        elif kind == 9:
            event = ev.RunRestored(**base, run_id=run)
        elif kind == 10:
            event = ev.ParamLogged(**base, run_id=run, key=key, value=value)
        elif kind == 11:
            event = ev.TagSet(**base, run_id=run, key=key, value=value)
        elif kind == 12:
            event = ev.TagDeleted(**base, run_id=run, key=key)
        elif kind == 13:
            event = ev.ArtifactLogged(
                **base, run_id=run, path=f"dir/{key}", size=len(value) + i, digest=f"sha256:{value}{i}"
            )
        else:
            event = ev.MetricLogged(
                **base,
                run_id=run,
                key=key,
                value=draw(st.sampled_from(METRIC_VALUES)),
                step=draw(st.integers(min_value=0, max_value=2)),
                timestamp=draw(st.integers(min_value=0, max_value=2)),
            )
        out.append(event)
    return out


def _batches(events: list[ev.Event], data: st.DataObject) -> list[list[ev.Event]]:
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(events)), max_size=6)))
    bounds = [0, *cuts, len(events)]
    return [events[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=100, deadline=None)
@given(events=event_logs(), data=st.data())
def test_folding_shuffled_batches_in_any_order_gives_the_same_state(
    events: list[ev.Event], data: st.DataObject
) -> None:
    expected = project(fold(events))
    shuffled = data.draw(st.permutations(events))
    batches = _batches(list(shuffled), data)
    order = data.draw(st.permutations(range(len(batches))))
    state = State()
    for i in order:
        fold(batches[i], state)  # one batch per inbox segment, folded incrementally
    assert project(state) == expected


@settings(max_examples=40, deadline=None)
@given(events=event_logs(), data=st.data())
def test_the_fold_after_an_encode_decode_round_trip_is_the_same(events: list[ev.Event], data: st.DataObject) -> None:
    decoded = [ev.decode_line(ev.encode(e)) for e in events]
    assert project(fold(decoded)) == project(fold(events))


@settings(max_examples=80, deadline=None)
@given(events=event_logs(), data=st.data())
def test_exact_duplicates_change_nothing(events: list[ev.Event], data: st.DataObject) -> None:
    expected = project(fold(events))
    extra = data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=len(events) * 2))
    doubled = data.draw(st.permutations(events + extra))
    assert project(fold(doubled)) == expected
    state = fold(events)
    fold(events, state)  # a whole segment folded twice (a writer re-put it after a timeout)
    assert project(state) == expected


def test_fold_leaves_its_input_state_alone_unless_given() -> None:
    e = ev.TagSet(eid="w-1", ts=1, run_id="r", key="k", value="v")
    first = fold([e])
    second = fold([])
    assert second.tags == {} and first.live_tags("r") == {"k": "v"}


def test_an_unknown_event_class_is_a_loud_error() -> None:
    with pytest.raises(TypeError, match="no fold rule"):
        apply(ev.Event(eid="w-1", ts=1), State())


# -- params ------------------------------------------------------------------------------------


def _param(eid: str, ts: int, value: str, key: str = "alpha") -> ev.ParamLogged:
    return ev.ParamLogged(eid=eid, ts=ts, run_id="r", key=key, value=value)


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_params_first_value_wins_and_the_conflict_is_recorded(reverse: bool) -> None:
    events = [_param("w1-1", 10, "0.01"), _param("w2-1", 20, "0.5"), _param("w1-2", 30, "0.01")]
    state = fold(reversed(events) if reverse else events)
    assert state.live_params("r") == {"alpha": "0.01"}
    assert {(c.key, c.kept, c.rejected, c.eid) for c in state.conflicts} == {("alpha", "0.01", "0.5", "w2-1")}


def test_params_same_timestamp_tie_is_broken_by_event_id() -> None:
    for events in ([_param("w2-1", 5, "b"), _param("w1-1", 5, "a")], [_param("w1-1", 5, "a"), _param("w2-1", 5, "b")]):
        state = fold(events)
        assert state.live_params("r") == {"alpha": "a"}  # (5, "w1-1") < (5, "w2-1")
        assert [c.rejected for c in state.conflicts] == ["b"]


def test_the_same_param_value_again_is_no_conflict() -> None:
    state = fold([_param("w1-1", 1, "x"), _param("w2-1", 2, "x"), _param("w3-1", 0, "x")])
    assert state.live_params("r") == {"alpha": "x"}
    assert state.conflicts == []


# -- tags --------------------------------------------------------------------------------------


def _tag(eid: str, ts: int, value: str | None, key: str = "k") -> ev.Event:
    if value is None:
        return ev.TagDeleted(eid=eid, ts=ts, run_id="r", key=key)
    return ev.TagSet(eid=eid, ts=ts, run_id="r", key=key, value=value)


@pytest.mark.parametrize(
    "events, expected",
    [
        ([_tag("w-1", 1, "old"), _tag("w-2", 2, "new")], {"k": "new"}),
        ([_tag("w-2", 2, "new"), _tag("w-1", 1, "old")], {"k": "new"}),
        ([_tag("w-1", 1, "v"), _tag("w-2", 2, None)], {}),
        ([_tag("w-2", 2, None), _tag("w-1", 1, "v")], {}),  # a late-arriving older set stays deleted
        ([_tag("w-1", 1, "v"), _tag("w-2", 2, None), _tag("w-3", 3, "back")], {"k": "back"}),
        ([_tag("a-1", 5, "from-a"), _tag("b-1", 5, "from-b")], {"k": "from-b"}),  # tie: larger eid
        ([_tag("b-1", 5, "from-b"), _tag("a-1", 5, "from-a")], {"k": "from-b"}),
        ([_tag("w-9", 9, "v", key="other"), _tag("w-1", 1, None)], {"other": "v"}),
    ],
)
def test_tags_last_writer_wins_by_timestamp_then_event_id(events: list[ev.Event], expected: dict) -> None:
    assert fold(events).live_tags("r") == expected


def test_run_created_tags_are_overridden_by_later_tag_events() -> None:
    created = ev.RunCreated(
        eid="w-1",
        ts=1,
        run_id="r",
        experiment_id="0",
        run_name="n",
        user_id="u",
        start_time=1,
        artifact_uri="a",
        tags={"mlflow.runName": "n", "k": "v0"},
    )
    for events in ([created, _tag("w-2", 2, "v1")], [_tag("w-2", 2, "v1"), created]):
        assert fold(events).live_tags("r") == {"mlflow.runName": "n", "k": "v1"}


# -- metrics -----------------------------------------------------------------------------------


def _metric(eid: str, value: float, step: int, timestamp: int, ts: int = 0) -> ev.MetricLogged:
    return ev.MetricLogged(eid=eid, ts=ts, run_id="r", key="m", value=value, step=step, timestamp=timestamp)


@pytest.mark.parametrize(
    "points, latest",
    [
        ([(1.0, 1, 100), (0.5, 2, 1)], 0.5),  # a higher step beats a later timestamp
        ([(1.0, 2, 100), (0.5, 2, 200)], 0.5),  # same step: the later timestamp
        ([(1.0, 2, 100), (3.0, 2, 100)], 3.0),  # same step and timestamp: the larger value
        ([(math.inf, 2, 100), (math.nan, 2, 100)], "NaN"),  # NaN ranks above every number
        ([(math.nan, 1, 100), (-math.inf, 2, 0)], -math.inf),  # ...but not above a higher step
        ([(-1.0, 0, 0), (-math.inf, 0, 0)], -1.0),
    ],
)
def test_latest_metric_is_the_max_of_step_timestamp_value(points: list, latest: Any) -> None:
    events = [_metric(f"w-{i}", v, s, t) for i, (v, s, t) in enumerate(points)]
    for order in (events, events[::-1]):
        assert _num(fold(order).latest_metrics("r")["m"]) == latest


def test_metric_history_keeps_every_distinct_point_and_exact_duplicates_once() -> None:
    events = [
        _metric("w-1", 0.5, 0, 10),
        _metric("w-2", 0.5, 0, 10),  # an exact duplicate from another writer
        _metric("w-3", 0.7, 0, 10),  # same step and timestamp, another value: a distinct point
        _metric("w-4", math.nan, 1, 11),
        _metric("w-5", math.nan, 1, 11),  # NaN duplicates count once too
        _metric("w-6", 0.1, 2, 5),
    ]
    series = fold(events).metrics["r"]["m"]
    assert [(s, t, _num(v)) for s, t, v in series.history()] == [
        (0, 10, 0.5),
        (0, 10, 0.7),
        (1, 11, "NaN"),
        (2, 5, 0.1),
    ]


# -- runs and experiments ----------------------------------------------------------------------


def _created(eid: str = "w-0", ts: int = 1) -> ev.RunCreated:
    return ev.RunCreated(
        eid=eid,
        ts=ts,
        run_id="r",
        experiment_id="0",
        run_name="first",
        user_id="u",
        start_time=ts,
        artifact_uri="a",
        tags={},
    )


def _status(eid: str, ts: int, status: str) -> ev.RunUpdated:
    return ev.RunUpdated(eid=eid, ts=ts, run_id="r", status=status, end_time=None if status == "RUNNING" else ts)


@pytest.mark.parametrize(
    "updates, status, end_time",
    [
        ([_status("w-1", 5, "FINISHED")], "FINISHED", 5),
        ([_status("w-1", 5, "FINISHED"), _status("w-2", 7, "RUNNING")], "RUNNING", None),  # resumed
        ([_status("w-2", 7, "RUNNING"), _status("w-1", 5, "FINISHED")], "RUNNING", None),
        ([_status("w-1", 5, "FAILED"), _status("w-2", 5, "KILLED")], "KILLED", 5),  # tie: eid
        ([_status("w-2", 5, "KILLED"), _status("w-1", 5, "FAILED")], "KILLED", 5),
        ([ev.RunUpdated(eid="w-3", ts=9, run_id="r", run_name="renamed")], "RUNNING", None),
    ],
)
def test_run_status_is_the_last_by_timestamp_then_event_id(updates: list, status: str, end_time: int | None) -> None:
    for events in ([_created(), *updates], [*updates, _created()]):
        run = fold(events).runs["r"]
        assert (run.exists, run.status, run.end_time) == (True, status, end_time)


def test_run_name_and_lifecycle_follow_the_latest_event() -> None:
    events = [
        _created(),
        ev.RunUpdated(eid="w-1", ts=3, run_id="r", run_name="second"),
        ev.RunUpdated(eid="w-2", ts=2, run_id="r", run_name="stale"),
        ev.RunDeleted(eid="w-3", ts=4, run_id="r"),
        ev.RunRestored(eid="w-4", ts=5, run_id="r"),
        ev.RunDeleted(eid="w-5", ts=6, run_id="r"),
    ]
    for order in (events, events[::-1]):
        run = fold(order).runs["r"]
        assert (run.run_name, run.lifecycle_stage, run.deleted_time) == ("second", "deleted", 6)


def test_events_before_run_created_do_not_make_the_run_exist() -> None:
    state = fold([_metric("w-1", 1.0, 0, 0), _status("w-2", 3, "FINISHED")])
    assert not state.runs["r"].exists
    fold([_created(ts=1)], state)
    assert state.runs["r"].exists and state.runs["r"].status == "FINISHED"


def test_experiments_name_lifecycle_and_tags() -> None:
    events = [
        ev.ExperimentCreated(eid="w-1", ts=1, experiment_id="1", name="a", artifact_location="loc", tags={"t": "0"}),
        ev.ExperimentRenamed(eid="w-2", ts=2, experiment_id="1", name="b"),
        ev.ExperimentTagSet(eid="w-3", ts=3, experiment_id="1", key="t", value="1"),
        ev.ExperimentTagSet(eid="w-4", ts=3, experiment_id="1", key="u", value="x"),
        ev.ExperimentTagDeleted(eid="w-5", ts=4, experiment_id="1", key="u"),
        ev.ExperimentDeleted(eid="w-6", ts=5, experiment_id="1"),
        ev.ExperimentRestored(eid="w-7", ts=6, experiment_id="1"),
    ]
    for order in (events, events[::-1]):
        exp = fold(order).experiments["1"]
        assert (exp.name, exp.lifecycle_stage, exp.creation_time, exp.last_update_time) == ("b", "active", 1, 6)
        assert {k: s.value for k, s in exp.tags.items() if s.value is not None} == {"t": "1"}


def test_an_artifact_deletion_hides_older_records_of_its_path_in_any_order() -> None:
    logged = ev.ArtifactLogged(eid="w-1", ts=1, run_id="r", path="m.bin", size=10, digest="sha256:aa")
    deleted = ev.ArtifactDeleted(eid="w-2", ts=2, run_id="r", path="m.bin")
    again = ev.ArtifactLogged(eid="w-3", ts=3, run_id="r", path="m.bin", size=30, digest="sha256:cc")
    for order in ([logged, deleted], [deleted, logged]):
        assert fold(order).artifacts["r"]["m.bin"].size < 0  # a tombstone
    for order in ([logged, deleted, again], [again, deleted, logged], [deleted, again, logged]):
        art = fold(order).artifacts["r"]["m.bin"]
        assert (art.size, art.digest) == (30, "sha256:cc")


def test_artifacts_keep_the_latest_record_of_a_path() -> None:
    a = ev.ArtifactLogged(eid="w-1", ts=1, run_id="r", path="m.bin", size=10, digest="sha256:aa")
    b = ev.ArtifactLogged(eid="w-2", ts=2, run_id="r", path="m.bin", size=20, digest="sha256:bb")
    for order in ([a, b], [b, a]):
        art = fold(order).artifacts["r"]["m.bin"]
        assert (art.size, art.digest) == (20, "sha256:bb")
