"""The event codec: every type round-trips, non-finite floats survive, bad input fails loudly."""

from __future__ import annotations

import math
import struct

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evtrack
from evtrack.eventlog import events as ev
from evtrack.errors import EventDecodeError
from evtrack.state.fold import fold
from evtrack.read.reader import StoreReader
from evtrack.registry import events as rev
from evtrack.tracking.model_links import events as mlev
from evtrack.store import open_store

SAMPLES: dict[str, ev.Event] = {
    "experiment_created": ev.ExperimentCreated(
        eid="w1-1",
        ts=1_700_000_000_000,
        experiment_id="3",
        name="nyc taxi",
        artifact_location="s3://bucket/root/artifacts/3",
        tags={"team": "ml", "note": "ünïcode ✓"},
    ),
    "experiment_renamed": ev.ExperimentRenamed(eid="w1-2", ts=2, experiment_id="3", name="taxi"),
    "experiment_deleted": ev.ExperimentDeleted(eid="w1-3", ts=3, experiment_id="3"),
    "experiment_restored": ev.ExperimentRestored(eid="w1-4", ts=4, experiment_id="3"),
    "experiment_tag_set": ev.ExperimentTagSet(eid="w1-5", ts=5, experiment_id="3", key="k", value="v"),
    "experiment_tag_deleted": ev.ExperimentTagDeleted(eid="w1-6", ts=6, experiment_id="3", key="k"),
    "run_created": ev.RunCreated(
        eid="w1-7",
        ts=7,
        run_id="a" * 32,
        experiment_id="3",
        run_name="brave-owl-1",
        user_id="ahmad",
        start_time=7,
        artifact_uri="file:///tmp/artifacts/3/aaa/artifacts",
        parent_run_id="b" * 32,
        tags={"mlflow.runName": "brave-owl-1"},
    ),
    "run_updated": ev.RunUpdated(eid="w1-8", ts=8, run_id="a" * 32, status="FINISHED", end_time=9, run_name="renamed"),
    "run_deleted": ev.RunDeleted(eid="w1-9", ts=9, run_id="a" * 32),
    "run_restored": ev.RunRestored(eid="w1-10", ts=10, run_id="a" * 32),
    "param": ev.ParamLogged(eid="w1-11", ts=11, run_id="a" * 32, key="alpha", value="0.01"),
    "metric": ev.MetricLogged(eid="w1-12", ts=12, run_id="a" * 32, key="loss", value=0.25, step=3, timestamp=12),
    "tag_set": ev.TagSet(eid="w1-13", ts=13, run_id="a" * 32, key="developer", value="ahmad"),
    "tag_deleted": ev.TagDeleted(eid="w1-14", ts=14, run_id="a" * 32, key="developer"),
    "artifact_logged": ev.ArtifactLogged(
        eid="w1-15", ts=15, run_id="a" * 32, path="models/m.bin", size=1234, digest="sha256:" + "0" * 64
    ),
    "artifact_deleted": ev.ArtifactDeleted(eid="w1-15b", ts=15, run_id="a" * 32, path="models/m.bin"),
    # the model registry (evtrack.registry.events)
    "registered_model_created": rev.RegisteredModelCreated(
        eid="w1-16", ts=16, model_id="m" * 32, name="churn", description="ünïcode ✓", tags={"team": "ml"}
    ),
    "registered_model_renamed": rev.RegisteredModelRenamed(eid="w1-17", ts=17, model_id="m" * 32, name="churn2"),
    "registered_model_deleted": rev.RegisteredModelDeleted(eid="w1-18", ts=18, model_id="m" * 32),
    "registered_model_description_set": rev.RegisteredModelDescriptionSet(
        eid="w1-19", ts=19, model_id="m" * 32, description="d"
    ),
    "registered_model_tag_set": rev.RegisteredModelTagSet(eid="w1-20", ts=20, model_id="m" * 32, key="k", value="v"),
    "registered_model_tag_deleted": rev.RegisteredModelTagDeleted(eid="w1-21", ts=21, model_id="m" * 32, key="k"),
    "registered_model_alias_set": rev.RegisteredModelAliasSet(
        eid="w1-22", ts=22, model_id="m" * 32, alias="champion", version_number=3
    ),
    "registered_model_alias_deleted": rev.RegisteredModelAliasDeleted(
        eid="w1-23", ts=23, model_id="m" * 32, alias="champion"
    ),
    "model_version_created": rev.ModelVersionCreated(
        eid="w1-24",
        ts=24,
        model_id="m" * 32,
        version_number=3,
        source="runs:/" + "a" * 32 + "/model",
        storage_location="s3://bucket/root/artifacts/3/aaa/artifacts/model",
        source_run_id="a" * 32,
        run_link=None,
        description=None,
        user_id="ahmad",
        tags={"k": "v"},
    ),
    "model_version_stage_set": rev.ModelVersionStageSet(
        eid="w1-25", ts=25, model_id="m" * 32, version_number=3, stage="Production"
    ),
    "model_version_description_set": rev.ModelVersionDescriptionSet(
        eid="w1-26", ts=26, model_id="m" * 32, version_number=3, description=None
    ),
    "model_version_tag_set": rev.ModelVersionTagSet(
        eid="w1-27", ts=27, model_id="m" * 32, version_number=3, key="k", value="v2"
    ),
    "model_version_tag_deleted": rev.ModelVersionTagDeleted(
        eid="w1-28", ts=28, model_id="m" * 32, version_number=3, key="k"
    ),
    "model_version_deleted": rev.ModelVersionDeleted(eid="w1-29", ts=29, model_id="m" * 32, version_number=3),
    # datasets (MLflow's log_input)
    "input_logged": ev.InputLogged(
        eid="w1-30",
        ts=30,
        run_id="a" * 32,
        name="taxi-2021-01",
        digest="ab12",
        source_type="local",
        source="/data/fhv.parquet",
        schema='{"cols": []}',
        profile=None,
        context="training",
        tags={"split": "train"},
    ),
    # MLflow 3's logged-model links
    "logged_model_metric": mlev.LoggedModelMetric(
        eid="w1-31",
        ts=31,
        model_id="m-" + "b" * 32,
        source_run_id="a" * 32,
        experiment_id="1",
        key="accuracy",
        value=0.93,
        step=2,
        timestamp=1_700_000_000_000,
        dataset_name="eval",
        dataset_digest="d1",
    ),
    "model_input": mlev.ModelInputLogged(eid="w1-32", ts=32, model_id="m-" + "b" * 32, source_run_id="a" * 32),
    "model_output": mlev.ModelOutputLogged(
        eid="w1-33", ts=33, model_id="m-" + "b" * 32, source_run_id="a" * 32, step=4
    ),
}


def test_the_samples_cover_every_registered_event_type() -> None:
    assert set(SAMPLES) == set(ev.event_types())
    for name, event in SAMPLES.items():
        assert type(event).type == name


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "", "x"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.one_of(st.text(max_size=2), st.integers()), max_size=2),
)


def decoded(decoder, obj: dict) -> object:
    """The event, or the message of the error."""
    try:
        return decoder(obj)
    except EventDecodeError as exc:
        return exc.message


def assert_same_decoding(obj: dict) -> None:
    want, got = decoded(ev._checked, obj), decoded(ev.from_wire, obj)
    if isinstance(want, ev.Event) and isinstance(got, ev.Event):
        assert type(got) is type(want) and ev.to_wire(got) == ev.to_wire(want)
        for field in ("value", "end_time", "size"):  # an int in a float field is a float on both paths
            assert type(getattr(got, field, None)) is type(getattr(want, field, None))
    else:
        assert got == want


TRICKY_VALUES = [
    2**63,
    2**63 - 1,
    -(2**63),
    -(2**63) - 1,
    {"k": 1},
    {"k": None},
    {1: "v"},
    {"k": "v"},
    {},
    True,
    False,
    1.0,
    7,
    "1",
    "",
    "NaN",
    "Infinity",
    None,
    [],
    ["x"],
]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_fast_decoder_agrees_with_the_checked_one_on_every_field(name: str) -> None:
    """from_wire's exact-type fast path gives the checked path's event, or leaves it the error, for each
    field set to each tricky value, dropped, or joined by an unknown field."""
    wire = orjson.loads(ev.encode(SAMPLES[name]))
    assert_same_decoding(wire)
    for key in [*wire, "extra"]:
        for value in TRICKY_VALUES:
            assert_same_decoding({**wire, key: value})
        assert_same_decoding({k: v for k, v in wire.items() if k != key})


@settings(max_examples=500, deadline=None)
@given(name=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_the_fast_decoder_agrees_with_the_checked_one_after_random_edits(name: str, data: st.DataObject) -> None:
    obj = orjson.loads(ev.encode(SAMPLES[name]))
    for _ in range(data.draw(st.integers(1, 4))):
        key = data.draw(st.sampled_from([*sorted(obj), "extra"]))
        if data.draw(st.booleans()):
            obj.pop(key, None)
        else:
            obj[key] = data.draw(ODD_VALUES)
    assert_same_decoding(obj)


@pytest.mark.parametrize("event", list(SAMPLES.values()), ids=list(SAMPLES))
def test_every_event_type_round_trips(event: ev.Event) -> None:
    line = ev.encode(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    obj = orjson.loads(line)
    assert list(obj)[:4] == ["v", "eid", "type", "ts"]
    assert (obj["v"], obj["eid"], obj["type"], obj["ts"]) == (1, event.eid, type(event).type, event.ts)
    assert ev.decode_line(line) == event
    assert ev.decode_line(line.decode()) == event


@pytest.mark.parametrize("event", list(SAMPLES.values()), ids=list(SAMPLES))
def test_every_event_type_is_rebuilt_from_its_field_values(event: ev.Event) -> None:
    """How a compaction worker hands an event back: its fields' values, rebuilt unchecked."""
    values = ev.field_values(event)
    assert values[:2] == (event.eid, event.ts)
    rebuilt = ev.rebuild(type(event).type, values)
    assert type(rebuilt) is type(event) and rebuilt == event and ev.encode(rebuilt) == ev.encode(event)
    with pytest.raises(AttributeError):  # still frozen
        rebuilt.eid = "other"  # type: ignore[misc]


def test_optional_fields_may_be_absent_or_null() -> None:
    bare = {"v": 1, "eid": "w-1", "type": "run_updated", "ts": 5, "run_id": "r1"}
    assert ev.decode_line(orjson.dumps(bare)) == ev.RunUpdated(eid="w-1", ts=5, run_id="r1")
    nulls = {**bare, "status": None, "end_time": None, "run_name": None}
    assert ev.decode_line(orjson.dumps(nulls)) == ev.RunUpdated(eid="w-1", ts=5, run_id="r1")
    created = ev.RunCreated(
        eid="w-2",
        ts=1,
        run_id="r",
        experiment_id="0",
        run_name="n",
        user_id="u",
        start_time=1,
        artifact_uri="x",
        tags={},
    )
    assert ev.decode_line(ev.encode(created)).parent_run_id is None


def test_integer_metric_values_decode_as_floats() -> None:
    line = b'{"v":1,"eid":"w-1","type":"metric","ts":1,"run_id":"r","key":"k","value":3,"step":0,"timestamp":1}'
    event = ev.decode_line(line)
    assert event.value == 3.0 and type(event.value) is float


def test_the_fast_metric_encoder_matches_the_generic_one() -> None:
    fast = ev.encode_metric_line("w-9", 100, "r1", "loss", 0.5, 7, 99)
    generic = ev.encode(ev.MetricLogged(eid="w-9", ts=100, run_id="r1", key="loss", value=0.5, step=7, timestamp=99))
    assert orjson.loads(fast) == orjson.loads(generic)
    assert ev.decode_line(fast) == ev.decode_line(generic)


# -- NaN and infinities ------------------------------------------------------------------------

NON_FINITE = [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")]


def _same_float(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return struct.pack("<d", a) == struct.pack("<d", b)


@pytest.mark.parametrize("value, wire", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_non_finite_metric_values_round_trip_exactly(value: float, wire: str) -> None:
    event = ev.MetricLogged(eid="w-1", ts=1, run_id="r", key="k", value=value, step=0, timestamp=1)
    for line in (ev.encode(event), ev.encode_metric_line("w-1", 1, "r", "k", value, 0, 1)):
        assert orjson.loads(line)["value"] == wire  # not null, which orjson would write
        assert _same_float(ev.decode_line(line).value, value)


@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_round_trips_bit_exactly(value: float) -> None:
    line = ev.encode_metric_line("w-1", 1, "r", "k", value, 0, 1)
    assert _same_float(ev.decode_line(line).value, value)


def test_non_finite_values_round_trip_through_a_real_store(tracking_uri: str, inbox) -> None:
    client = evtrack.EvtrackClient(tracking_uri)
    run_id = client.create_run("0").info.run_id
    for step, (value, _) in enumerate(NON_FINITE):
        client.log_metric(run_id, "odd", value, step=step)
    client.log_batch(run_id, metrics=[evtrack.Metric("batched", math.nan, 5, 0)])
    client.log_metric(run_id, "same_step", 1.0, timestamp=10, step=0)
    client.log_metric(run_id, "same_step", math.nan, timestamp=10, step=0)
    assert client.flush().durable

    history = client.get_metric_history(run_id, "odd")
    assert [m.step for m in history] == [0, 1, 2]
    assert math.isnan(history[0].value)
    assert history[1].value == math.inf and history[2].value == -math.inf
    run = client.get_run(run_id)
    assert run.data.metrics["odd"] == -math.inf  # the highest step wins
    assert math.isnan(run.data.metrics["batched"])
    assert math.isnan(run.data.metrics["same_step"])  # NaN ranks above numbers at one step
    # The log itself, read behind the client's back, holds the exact values.
    state = fold(inbox(tracking_uri))
    assert math.isnan(state.latest_metrics(run_id)["batched"])
    assert state.latest_metrics(run_id)["odd"] == -math.inf
    odd = state.metrics[run_id]["odd"].history()
    assert [p[0] for p in odd] == [0, 1, 2] and math.isnan(odd[0][2])
    assert (odd[1][2], odd[2][2]) == (math.inf, -math.inf)


# -- decode errors -------------------------------------------------------------------------

_METRIC = {
    "v": 1,
    "eid": "w-1",
    "type": "metric",
    "ts": 1,
    "run_id": "r",
    "key": "k",
    "value": 1.0,
    "step": 0,
    "timestamp": 1,
}


def _without(obj: dict, key: str) -> dict:
    return {k: v for k, v in obj.items() if k != key}


@pytest.mark.parametrize(
    "line, message",
    [
        (orjson.dumps({**_METRIC, "type": "bogus"}), r"unknown event type 'bogus'"),
        (orjson.dumps(_without(_METRIC, "type")), r"unknown event type None"),
        (orjson.dumps({**_METRIC, "v": 2}), r"unknown version 2 of event type 'metric'"),
        (orjson.dumps(_without(_METRIC, "v")), r"unknown version None of event type 'metric'"),
        (orjson.dumps(_without(_METRIC, "run_id")), r"lacks field 'run_id'"),
        (orjson.dumps(_without(_METRIC, "eid")), r"no valid 'eid'"),
        (orjson.dumps(_without(_METRIC, "ts")), r"no valid (64-bit )?integer 'ts'"),
        (orjson.dumps({**_METRIC, "ts": "1"}), r"no valid (64-bit )?integer 'ts'"),
        (orjson.dumps({**_METRIC, "step": "3"}), r"field 'step' has type str"),
        (orjson.dumps({**_METRIC, "step": True}), r"field 'step' has type bool"),
        (orjson.dumps({**_METRIC, "value": [1]}), r"field 'value' has type list"),
        (orjson.dumps({**_METRIC, "value": "nan"}), r"non-numeric metric value 'nan'"),
        (orjson.dumps({**_METRIC, "key": None}), r"null 'key'"),
        (orjson.dumps({**_METRIC, "extra": 1}), r"unknown fields \['extra'\]"),
        (
            orjson.dumps({"v": 1, "eid": "w-2", "type": "tag_set", "ts": 1, "run_id": "r", "key": "k", "value": 5}),
            r"field 'value' has type int",
        ),
        (
            orjson.dumps(
                {
                    "v": 1,
                    "eid": "w-3",
                    "type": "experiment_created",
                    "ts": 1,
                    "experiment_id": "1",
                    "name": "n",
                    "artifact_location": "x",
                    "tags": {"a": 1},
                }
            ),
            r"field 'tags' must map strings to strings",
        ),
        (b'{"v": 1, "eid": "w-1", "type": "metric"', r"malformed JSON line"),
        (b"not json at all", r"malformed JSON line"),
        (b"[1, 2, 3]", r"not a JSON object: list"),
        (b'"metric"', r"not a JSON object: str"),
    ],
    ids=[
        "unknown-type",
        "no-type",
        "unknown-version",
        "no-version",
        "missing-field",
        "no-eid",
        "no-ts",
        "string-ts",
        "wrong-type",
        "bool-for-int",
        "list-for-float",
        "bad-nonfinite",
        "null-required",
        "unknown-field",
        "int-for-str",
        "bad-tags",
        "truncated-json",
        "garbage",
        "array",
        "string",
    ],
)
def test_bad_lines_raise_event_decode_error_naming_the_problem(line: bytes, message: str) -> None:
    with pytest.raises(EventDecodeError, match=message) as info:
        ev.decode_line(line)
    assert info.value.error_code == "BAD_REQUEST"
    assert isinstance(info.value, evtrack.EvtrackError)


def test_decode_segment_keeps_bad_lines_apart() -> None:
    good = [SAMPLES["run_created"], SAMPLES["param"], SAMPLES["metric"]]
    lines = [ev.encode(e) for e in good]
    middle_bad = b'{"v": 7, "eid": "w-x", "type": "param", "ts": 1}\n'
    truncated = ev.encode(SAMPLES["tag_set"])[:25]  # a writer died mid-line: no newline
    data = lines[0] + middle_bad + b"\n" + lines[1] + lines[2] + truncated

    events, bad = ev.decode_segment(data, "events/0000000000001-w-000001.jsonl")

    assert events == good  # nothing good is lost, in order
    assert [(b.line_no, b.raw) for b in bad] == [(2, middle_bad.rstrip(b"\n")), (6, truncated)]
    assert all(b.segment == "events/0000000000001-w-000001.jsonl" for b in bad)
    assert "unknown version 7" in bad[0].error
    assert "malformed JSON" in bad[1].error


def test_the_reader_folds_good_lines_and_reports_bad_ones(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVTRACK_READ_FRESHNESS", "0")  # the segment below comes from "another writer"
    client = evtrack.EvtrackClient(tracking_uri)
    run_id = client.create_run("0").info.run_id
    client.flush()
    store = open_store(tracking_uri)
    good = ev.encode_metric_line("zz-1", 5, run_id, "loss", 0.5, 1, 5)
    store.put("events/0000000000005-zz-000001.jsonl", good + b'{"v": 1, "eid": "zz-2", "type": "metr')

    reader = StoreReader(open_store(tracking_uri))
    reader.refresh()
    assert [(b.segment, b.line_no) for b in reader.bad_lines] == [("events/0000000000005-zz-000001.jsonl", 2)]
    assert "malformed JSON" in reader.bad_lines[0].error
    # The good line of that segment is not lost: users see the point.
    assert client.get_run(run_id).data.metrics == {"loss": 0.5}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(1, 0.5)]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_logged_model_metric_keeps_non_finite_values(value: float) -> None:
    """Like a run's metric point, a model's NaN or infinite value travels as a string, not null."""
    event = mlev.LoggedModelMetric(**{**_fields(SAMPLES["logged_model_metric"]), "value": value})
    line = ev.encode(event)
    assert orjson.loads(line)["value"] == {math.inf: "Infinity", -math.inf: "-Infinity"}.get(value, "NaN")
    back = ev.decode_line(line)
    assert math.isnan(back.value) if math.isnan(value) else back.value == value


def _fields(event: ev.Event) -> dict:
    return {k: v for k, v in orjson.loads(ev.encode(event)).items() if k not in ("v", "type")}
