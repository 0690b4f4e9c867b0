"""MLflow 3's logged-model links over REST, differentially: a model's metrics, a run's model inputs
and outputs, and logged-model searches by metric and dataset, sent alike to ``mlflow server``
(sqlite) and ``evtrack server`` (both real subprocesses), answers compared whole. Then the same
through MLflow's own client, and through the MLflow plugin store against MLflow's sqlite store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.rest_servers import Served, answer, mlflow_and_evtrack, normal

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.timeout(300)

API = "/api/2.0/mlflow"
R, E, M1, M2 = "{run}", "{exp}", "{m1}", "{m2}"
# besides times and the user: a logged model's times (ms) differ by nature
MODEL_TIMES = {"creation_timestamp_ms", "last_updated_timestamp_ms"}


def _post(server: Served, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = server.call("POST", API + path, body)
    assert response.status_code == 200, (server.name, path, response.text)
    return response.json()


def _setup(server: Served) -> None:
    """On each server: an experiment, a run, two logged models; metrics for both models, on two
    datasets and none; a model input and two outputs."""
    server.ids["exp"] = _post(server, "/experiments/create", {"name": "links"})["experiment_id"]
    run = _post(server, "/runs/create", {"experiment_id": E, "start_time": 1000, "run_name": "linked"})
    server.ids["run"] = run["run"]["info"]["run_id"]
    for name in ("m1", "m2"):
        body = {"experiment_id": E, "name": f"model-{name}", "source_run_id": R}
        server.ids[name] = _post(server, "/logged-models", body)["model"]["info"]["model_id"]
    point = {"run_id": R, "timestamp": 2000, "step": 0}
    _post(
        server,
        "/runs/log-metric",
        {**point, "key": "acc", "value": 0.7, "model_id": M1, "dataset_name": "eval", "dataset_digest": "e1"},
    )
    _post(
        server,
        "/runs/log-metric",
        {
            **point,
            "key": "acc",
            "value": 0.8,
            "timestamp": 3000,
            "step": 1,
            "model_id": M1,
            "dataset_name": "test",
            "dataset_digest": "t1",
        },
    )
    metrics = [
        {
            "key": "acc",
            "value": 0.9,
            "timestamp": 2500,
            "step": 0,
            "model_id": M2,
            "dataset_name": "eval",
            "dataset_digest": "e1",
        },
        {
            "key": "acc",
            "value": 0.6,
            "timestamp": 2600,
            "step": 1,
            "model_id": M2,
            "dataset_name": "test",
            "dataset_digest": "t1",
        },
        {"key": "loss", "value": 0.25, "timestamp": 2600, "step": 1, "model_id": M2},
        {"key": "plain", "value": 1.0, "timestamp": 2600, "step": 1},
    ]
    _post(server, "/runs/log-batch", {"run_id": R, "metrics": metrics})
    _post(server, "/runs/log-inputs", {"run_id": R, "models": [{"model_id": M2}]})
    _post(server, "/runs/outputs", {"run_id": R, "models": [{"model_id": M1, "step": 1}, {"model_id": M2, "step": 0}]})


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Served]]:
    with mlflow_and_evtrack(tmp_path_factory) as (ref, ours):
        _setup(ref)
        _setup(ours)
        yield ref, ours


def _search(**body: Any) -> tuple[str, str, Any]:
    return ("POST", "/logged-models/search", {"experiment_ids": [E], **body})


# (method, path under /api/2.0/mlflow, body or query): the whole JSON answer must match
BODY_CASES: list[tuple[str, str, Any]] = [
    ("GET", "/logged-models/" + M1, None),
    ("GET", "/logged-models/" + M2, None),
    ("GET", "/runs/get", {"run_id": R}),
    ("POST", "/runs/search", {"experiment_ids": [E]}),
    ("GET", "/metrics/get-history", {"run_id": R, "metric_key": "acc"}),
    _search(),
    _search(filter="metrics.acc > 0.85"),
    _search(filter="metrics.acc < 0.65"),
    _search(filter="metrics.loss <= 0.25"),
    _search(filter="metrics.acc > 0.75", datasets=[{"dataset_name": "eval", "dataset_digest": "e1"}]),
    _search(filter="metrics.acc > 0.75", datasets=[{"dataset_name": "test", "dataset_digest": "t1"}]),
    _search(datasets=[{"dataset_name": "eval", "dataset_digest": "e1"}]),
    _search(datasets=[{"dataset_name": "eval"}]),  # MLflow's server compares the missing digest too
    _search(
        datasets=[{"dataset_name": "eval", "dataset_digest": "e1"}, {"dataset_name": "test", "dataset_digest": "t1"}]
    ),
    _search(datasets=[{"dataset_name": "eval", "dataset_digest": "nope"}]),
    _search(datasets=[{"dataset_name": "nothing"}]),
    _search(order_by=[{"field_name": "metrics.acc", "ascending": True}]),
    _search(order_by=[{"field_name": "metrics.acc", "ascending": False}]),
    _search(
        order_by=[{"field_name": "metrics.acc", "ascending": True, "dataset_name": "eval", "dataset_digest": "e1"}]
    ),
    _search(order_by=[{"field_name": "metrics.acc", "ascending": True, "dataset_name": "test"}]),
    _search(order_by=[{"field_name": "metrics.loss", "ascending": True}]),
    _search(order_by=[{"field_name": "metrics.acc", "ascending": False}], max_results=1),
]

# requests whose status, error_code and message must match
ERROR_CASES: list[tuple[str, str, Any]] = [
    _search(datasets=[{"dataset_digest": "abc"}]),
    _search(order_by=[{"field_name": "params.lr"}]),
    ("POST", "/runs/log-metric", {"run_id": R, "key": "k", "value": 1.0, "timestamp": 1, "model_id": 5}),
    ("POST", "/runs/log-inputs", {"run_id": R, "models": "m"}),
    ("POST", "/runs/outputs", {"run_id": R}),
    ("POST", "/runs/outputs", {"run_id": "0" * 32, "models": [{"model_id": M1, "step": 0}]}),
]


def _case_id(case: tuple[str, str, Any]) -> str:
    method, path, body = case
    return f"{method} {path} {body}"[:120]


def _normal_model_answer(server: Served, body: Any) -> Any:
    """Without a model's times; a page token's text is each server's own (only its presence counts)."""
    if isinstance(body, dict):
        out = {k: _normal_model_answer(server, v) for k, v in body.items() if k not in MODEL_TIMES}
        if "next_page_token" in out:
            out["next_page_token"] = "<token>"
        return out
    if isinstance(body, list):
        return [_normal_model_answer(server, v) for v in body]
    return body


def _sorted_lists(value: Any) -> Any:
    """Lists whose order neither server promises (a run's model inputs/outputs, a model's
    metrics) sorted by their JSON text."""
    if isinstance(value, dict):
        return {k: _sorted_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_sorted_lists(v) for v in value]
        return sorted(items, key=repr) if all(isinstance(v, dict) and "model_id" in v for v in items) else items
    return value


@pytest.mark.parametrize("case", BODY_CASES, ids=[_case_id(c) for c in BODY_CASES])
def test_the_same_links_give_the_same_body(servers: tuple[Served, Served], case: tuple[str, str, Any]) -> None:
    method, path, body = case
    ref, ours = servers
    theirs, mine = ref.call(method, API + path, body), ours.call(method, API + path, body)
    assert mine.status_code == theirs.status_code, (mine.text, theirs.text)
    expected = _sorted_lists(normal(ref, _normal_model_answer(ref, theirs.json())))
    assert _sorted_lists(normal(ours, _normal_model_answer(ours, mine.json()))) == expected


@pytest.mark.parametrize("case", ERROR_CASES, ids=[_case_id(c) for c in ERROR_CASES])
def test_bad_link_requests_get_the_same_error(servers: tuple[Served, Served], case: tuple[str, str, Any]) -> None:
    method, path, body = case
    ref, ours = servers
    assert answer(ours, ours.call(method, API + path, body)) == answer(ref, ref.call(method, API + path, body))


def test_the_links_are_in_evtracks_client_and_tables(servers: tuple[Served, Served], fresh_evtrack: None) -> None:
    """What the server logged is read back by evtrack's client and visible in SQL."""
    import evtrack

    _, ours = servers
    run, m1, m2 = ours.ids["run"], ours.ids["m1"], ours.ids["m2"]
    store = str(ours.cwd / "store")
    client = evtrack.EvtrackClient(store)
    metrics = client.logged_model_metrics(m2)
    assert [(m.key, m.value, m.dataset_name) for m in metrics] == [
        ("acc", 0.9, "eval"),
        ("acc", 0.6, "test"),
        ("loss", 0.25, None),
    ]
    inputs, outputs = client.model_links_of_runs()
    assert inputs == {run: [m2]}
    assert sorted(outputs[run]) == sorted([(m1, 1), (m2, 0)])
    evtrack.set_tracking_uri(store)
    rows = evtrack.sql(
        "SELECT model_id, key, value FROM logged_model_metrics ORDER BY model_id, key, value"
    ).to_pylist()
    assert sorted((r["model_id"], r["key"], r["value"]) for r in rows) == sorted(
        [(m1, "acc", 0.7), (m1, "acc", 0.8), (m2, "acc", 0.9), (m2, "acc", 0.6), (m2, "loss", 0.25)]
    )
    assert evtrack.sql("SELECT run_id, model_id FROM model_inputs").to_pylist() == [{"run_id": run, "model_id": m2}]
    assert sorted(evtrack.sql("SELECT model_id, step FROM model_outputs").to_pylist(), key=repr) == sorted(
        [{"model_id": m1, "step": 1}, {"model_id": m2, "step": 0}], key=repr
    )


# -- MLflow's own client against both servers -----------------------------------------------------


def _client_sequence(url: str) -> dict[str, Any]:
    """The fluent calls a user makes (MLflow 3): a model's metrics on a dataset, then the reads."""
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelInput

    client = MlflowClient(url)
    exp = client.create_experiment("client-links")
    run = client.create_run(exp, run_name="client-run")
    rid = run.info.run_id
    model = client.create_logged_model(exp, name="clf", source_run_id=rid)
    client.log_metric(
        rid, "f1", 0.5, timestamp=10, step=0, model_id=model.model_id, dataset_name="val", dataset_digest="v1"
    )
    client.log_metric(
        rid, "f1", 0.75, timestamp=20, step=1, model_id=model.model_id, dataset_name="val", dataset_digest="v1"
    )
    client.log_inputs(rid, models=[LoggedModelInput(model.model_id)])
    client.log_outputs(rid, [mlflow.entities.LoggedModelOutput(model.model_id, 1)])
    got = client.get_logged_model(model.model_id)
    found = client.search_logged_models(
        [exp], filter_string="metrics.f1 > 0.7", datasets=[{"dataset_name": "val", "dataset_digest": "v1"}]
    )
    read = client.get_run(rid)
    (searched,) = client.search_runs([exp])
    return {
        "searched": (
            [i.model_id == model.model_id for i in searched.inputs.model_inputs],
            [(o.model_id == model.model_id, o.step) for o in searched.outputs.model_outputs],
        ),
        "metrics": sorted((m.key, m.value, m.step, m.dataset_name, m.run_id == rid) for m in got.metrics or []),
        "found": [m.name for m in found],
        "inputs": [i.model_id == model.model_id for i in read.inputs.model_inputs],
        "outputs": [(o.model_id == model.model_id, o.step) for o in read.outputs.model_outputs],
    }


def test_mlflows_client_sees_the_same_links_on_both_servers(servers: tuple[Served, Served]) -> None:
    ref, ours = servers
    theirs = _client_sequence(ref.url)
    assert theirs["metrics"] and theirs["found"] == ["clf"]  # the reference did what the test means
    assert _client_sequence(ours.url) == theirs


def test_the_plugin_store_keeps_the_links_as_mlflows_sqlite_store(tmp_path: Any, fresh_evtrack: None) -> None:
    """``evtrack://`` (the plugin tracking store, no server) answers the same client sequence as
    MLflow's sqlite store."""
    theirs = _client_sequence(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mine = _client_sequence(f"evtrack://{tmp_path / 'store'}")
    assert mine == theirs


def test_a_metric_filter_with_a_string_is_a_400_where_mlflow_answers_500(servers: tuple[Served, Served]) -> None:
    """A deliberate difference (docs/server.md): a bad filter is the client's error, named."""
    ref, ours = servers
    method, path, body = _search(filter="metrics.acc > 'x'")
    assert ref.call(method, API + path, body).status_code == 500
    status, code, message = answer(ours, ours.call(method, API + path, body))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert "Expected numeric value type for metric" in (message or "")
