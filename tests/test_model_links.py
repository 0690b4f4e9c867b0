"""MLflow 3's logged-model links as events: the fold is order-independent and survives compaction,
logging them never waits on the store, and values are kept as MLflow's SQL store keeps them."""

from __future__ import annotations

import math
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import evtrack
from compaction import compact
from evtrack.entities import Metric
from evtrack.state.fold import State, fold
from evtrack.tracking.model_links import fold as mlfold
from evtrack.tracking.model_links.events import LoggedModelMetric, ModelInputLogged, ModelOutputLogged

MODELS = ["m-" + c * 32 for c in "abc"]
RUNS = ["r" * 31 + c for c in "12"]


@st.composite
def link_events(draw: Any) -> list:
    """Random link events, with repeats of the same point (other values, other stamps) and ties."""
    out = []
    for i in range(draw(st.integers(0, 30))):
        common = {
            "eid": f"w{draw(st.integers(0, 2))}-{i:04d}",
            "ts": draw(st.integers(0, 5)),
            "model_id": draw(st.sampled_from(MODELS)),
            "source_run_id": draw(st.sampled_from(RUNS)),
        }
        kind = draw(st.sampled_from(["metric", "input", "output"]))
        if kind == "metric":
            named = draw(st.booleans())
            out.append(
                LoggedModelMetric(
                    **common,
                    experiment_id="1",
                    key=draw(st.sampled_from(["acc", "loss"])),
                    value=draw(st.floats(-1, 1)),
                    step=draw(st.integers(0, 2)),
                    timestamp=draw(st.integers(0, 2)),
                    dataset_name="eval" if named else None,
                    dataset_digest="d" if named else None,
                )
            )
        elif kind == "input":
            out.append(ModelInputLogged(**common))
        else:
            out.append(ModelOutputLogged(**common, step=draw(st.integers(0, 2))))
    return out


def _tables(state: State) -> dict:
    return {name: table.to_pylist() for name, table in mlfold.to_tables(state).items()}


@settings(max_examples=300, deadline=None)
@given(events=link_events(), data=st.data())
def test_the_fold_is_order_independent_and_resumes_from_its_tables(events: list, data: st.DataObject) -> None:
    whole = _tables(fold(events))
    shuffled = data.draw(st.permutations(events))
    assert _tables(fold(shuffled)) == whole
    cut = data.draw(st.integers(0, len(events)))
    resumed = mlfold.load(mlfold.to_tables(fold(shuffled[:cut])), State())
    assert _tables(fold(shuffled[cut:], resumed)) == whole


def _store_client(tmp_path: Any) -> tuple[Any, str, str]:
    client = evtrack.EvtrackClient(str(tmp_path / "store"))
    exp = client.create_experiment("links")
    return client, exp, client.create_run(exp).info.run_id


def _segments(tmp_path: Any) -> int:
    return sum(len(files) for _, _, files in os.walk(tmp_path / "store" / "events"))


def test_logging_a_model_metric_does_not_wait_on_the_store(tmp_path: Any, fresh_evtrack: None) -> None:
    """Like a plain metric, a model's metric goes to the background writer: no read, no flush."""
    client, _, run_id = _store_client(tmp_path)
    client.flush()
    before = _segments(tmp_path)
    for step in range(20):
        client.log_metric(run_id, "acc", step / 20, step=step, model_id=MODELS[0])
    assert _segments(tmp_path) == before  # nothing written until the writer's flush
    client.flush()
    assert [m.step for m in client.logged_model_metrics(MODELS[0])] == list(range(20))
    assert len(client.get_metric_history(run_id, "acc")) == 20  # also the run's own points


def test_non_finite_model_metrics_are_kept_as_mlflows_sql_store_keeps_them(tmp_path: Any, fresh_evtrack: None) -> None:
    client, _, run_id = _store_client(tmp_path)
    points = [
        Metric("m", value, 1, step, None, MODELS[0]) for step, value in enumerate([math.nan, math.inf, -math.inf])
    ]
    client.log_batch(run_id, metrics=points)
    client.flush()
    compact(client.store, grace_seconds=0)
    got = [m.value for m in evtrack.EvtrackClient(str(tmp_path / "store")).logged_model_metrics(MODELS[0])]
    assert got == [0.0, 1.7976931348623157e308, -1.7976931348623157e308]
    history = client.get_metric_history(run_id, "m")
    assert math.isnan(history[0].value) and history[1].value == math.inf  # the run's points are as given


def test_links_survive_compaction_and_show_in_sql(tmp_path: Any, fresh_evtrack: None) -> None:
    client, exp, run_id = _store_client(tmp_path)
    client.log_metric(run_id, "acc", 0.5, 10, 0, model_id=MODELS[0], dataset_name="eval", dataset_digest="d1")
    client.log_inputs(run_id, models=[MODELS[1]])
    client.log_outputs(run_id, [{"model_id": MODELS[0], "step": 3}])
    client.flush()
    compact(client.store, grace_seconds=0)
    client.log_outputs(run_id, [{"model_id": MODELS[2], "step": 4}])  # a tail on top of the tables
    client.flush()
    fresh = evtrack.EvtrackClient(str(tmp_path / "store"))
    assert fresh.model_links_of_runs(run_id) == ({run_id: [MODELS[1]]}, {run_id: [(MODELS[0], 3), (MODELS[2], 4)]})
    evtrack.set_tracking_uri(str(tmp_path / "store"))
    assert evtrack.sql("SELECT model_id, experiment_id, dataset_name, value FROM logged_model_metrics").to_pylist() == [
        {"model_id": MODELS[0], "experiment_id": exp, "dataset_name": "eval", "value": 0.5}
    ]


def test_bad_links_are_refused_with_a_clear_error(tmp_path: Any, fresh_evtrack: None) -> None:
    import pytest

    client, _, run_id = _store_client(tmp_path)
    with pytest.raises(evtrack.MlflowException, match="Both dataset_name and dataset_digest"):
        client.log_metric(run_id, "acc", 0.5, dataset_name="eval")
    with pytest.raises(evtrack.MlflowException, match="expected a string"):
        client.log_batch(run_id, metrics=[Metric("acc", 0.5, 1, 0, None, 5)])  # type: ignore[arg-type]
    with pytest.raises(evtrack.MlflowException, match="models\\[0\\].model_id"):
        client.log_inputs(run_id, models=[{"id": MODELS[0]}])
    with pytest.raises(evtrack.MlflowException, match="models\\[0\\].step"):
        client.log_outputs(run_id, [{"model_id": MODELS[0], "step": "3"}])
