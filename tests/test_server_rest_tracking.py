"""MLflow's tracking REST API served by evtrack: MLflow's own client against a real server,
the same data read back through evtrack, and the HTTP contract (statuses, error codes, JSON)."""

from __future__ import annotations

import json
import math
import time

import httpx
import pytest

import evtrack

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

API = "/api/2.0/mlflow"


def now_ms() -> int:
    return int(time.time() * 1000)


def post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}{API}/{path}", json=body)


def get(server, path: str, **params) -> httpx.Response:
    return httpx.get(f"{server.url}{API}/{path}", params=params)


def post_json(client, path: str, body: dict) -> dict:
    response = httpx.post(f"{client.tracking_uri}{API}/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def run_id(mlflow_client) -> str:
    exp = mlflow_client.create_experiment("raw-http")
    return mlflow_client.create_run(exp).info.run_id


# -- MLflow's client ----------------------------------------------------------------------


def test_mlflow_client_logs_a_run_that_evtrack_reads_back(mlflow_client, evtrack_server) -> None:
    client = mlflow_client
    exp_id = client.create_experiment("rest-exp", tags={"team": "vision"})
    exp = client.get_experiment(exp_id)
    assert (exp.name, exp.tags, exp.lifecycle_stage) == ("rest-exp", {"team": "vision"}, "active")
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert client.get_experiment_by_name("rest-exp").experiment_id == exp_id
    assert client.get_experiment_by_name("no-such-experiment") is None

    run = client.create_run(exp_id, run_name="first", tags={"mlflow.user": "alice"})
    run_id = run.info.run_id
    assert (run.info.run_name, run.info.user_id, run.info.status) == ("first", "alice", "RUNNING")
    assert run.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts"
    client.log_param(run_id, "alpha", 0.5)
    for step in range(5):
        client.log_metric(run_id, "loss", 1 / (step + 1), step=step)
    client.log_metric(run_id, "odd", float("nan"))
    client.log_metric(run_id, "big", float("inf"), step=1)
    client.set_tag(run_id, "stage", "dev")
    client.log_batch(
        run_id,
        metrics=[Metric("acc", 0.75, now_ms(), 3)],
        params=[Param("model", "ridge")],
        tags=[RunTag("owner", "ml-team")],
    )
    client.set_terminated(run_id)

    got = client.get_run(run_id)
    assert got.data.params == {"alpha": "0.5", "model": "ridge"}
    assert got.data.metrics["loss"] == 0.2 and got.data.metrics["acc"] == 0.75
    assert math.isnan(got.data.metrics["odd"]) and got.data.metrics["big"] == math.inf
    assert {m.key: m.step for m in got.data._metric_objs} == {"loss": 4, "acc": 3, "odd": 0, "big": 1}
    assert got.data.tags["stage"] == "dev" and got.data.tags["owner"] == "ml-team"
    assert got.info.status == "FINISHED" and got.info.end_time >= got.info.start_time
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1 / (s + 1)) for s in range(5)]

    mine = evtrack.EvtrackClient(evtrack_server.store_uri).get_run(run_id)
    assert mine.data.params == got.data.params
    assert mine.data.metrics["loss"] == 0.2 and mine.info.status == "FINISHED"
    assert mine.info.user_id == "alice" and mine.data.tags["owner"] == "ml-team"
    assert mine.info.artifact_uri.endswith(f"/artifacts/{exp_id}/{run_id}/artifacts")
    evtrack.set_tracking_uri(evtrack_server.store_uri)
    rows = evtrack.sql("SELECT run_id, status, run_name FROM runs WHERE experiment_id = ?", [exp_id]).to_pylist()
    assert rows == [{"run_id": run_id, "status": "FINISHED", "run_name": "first"}]


def test_search_runs_with_filter_order_and_pages(mlflow_client, evtrack_server) -> None:
    mlflow.set_experiment("sweep")
    for alpha in (0.1, 0.2, 0.3, 0.4):
        with mlflow.start_run(run_name=f"a{alpha}"):
            mlflow.log_param("alpha", alpha)
            mlflow.log_metric("score", alpha * 10)
            mlflow.set_tag("kind", "even" if alpha in (0.2, 0.4) else "odd")
    exp_id = mlflow.get_experiment_by_name("sweep").experiment_id

    frame = mlflow.search_runs([exp_id], "metrics.score > 1.5", order_by=["metrics.score DESC"])
    assert list(frame["params.alpha"]) == ["0.4", "0.3", "0.2"]
    assert list(frame["tags.mlflow.runName"]) == ["a0.4", "a0.3", "a0.2"]

    first = mlflow_client.search_runs([exp_id], "tags.kind = 'even'", order_by=["params.alpha ASC"], max_results=1)
    assert [r.data.params["alpha"] for r in first] == ["0.2"] and first.token
    second = mlflow_client.search_runs(
        [exp_id], "tags.kind = 'even'", order_by=["params.alpha ASC"], max_results=1, page_token=first.token
    )
    assert [r.data.params["alpha"] for r in second] == ["0.4"] and not second.token

    evtrack.set_tracking_uri(evtrack_server.store_uri)
    mine = evtrack.search_runs([exp_id], "metrics.score > 1.5", order_by=["metrics.score DESC"], output_format="list")
    assert [r.info.run_id for r in mine] == list(frame["run_id"])


def test_delete_and_restore_runs_and_experiments(mlflow_client, evtrack_server) -> None:
    client = mlflow_client
    exp_id = client.create_experiment("lifecycle")
    run_id = client.create_run(exp_id).info.run_id
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([exp_id]) == []
    assert [r.info.run_id for r in client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)] == [run_id]
    assert evtrack.EvtrackClient(evtrack_server.store_uri).get_run(run_id).info.lifecycle_stage == "deleted"
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"

    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert "lifecycle" not in [e.name for e in client.search_experiments()]
    assert "lifecycle" in [e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_experiment_rename_tags_and_duplicate_names(mlflow_client) -> None:
    client = mlflow_client
    exp_id = client.create_experiment("old-name")
    client.rename_experiment(exp_id, "new-name")
    assert client.get_experiment(exp_id).name == "new-name"
    client.set_experiment_tag(exp_id, "note", "hello")
    assert client.get_experiment(exp_id).tags == {"note": "hello"}
    client.delete_experiment_tag(exp_id, "note")
    assert client.get_experiment(exp_id).tags == {}
    with pytest.raises(MlflowException) as err:
        client.create_experiment("new-name")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    found = client.search_experiments(filter_string="name LIKE 'new-%'")
    assert [e.experiment_id for e in found] == [exp_id]


def test_update_run_name_and_tag_deletion(mlflow_client) -> None:
    client = mlflow_client
    run_id = client.create_run(client.create_experiment("upd"), run_name="before").info.run_id
    client.update_run(run_id, name="after")
    client.set_tag(run_id, "tmp", "x")
    client.delete_tag(run_id, "tmp")
    got = client.get_run(run_id)
    assert got.info.run_name == "after" and got.data.tags["mlflow.runName"] == "after"
    assert "tmp" not in got.data.tags


def test_log_inputs_and_log_model_history(mlflow_client) -> None:
    import pandas as pd

    client = mlflow_client
    run_id = client.create_run(client.create_experiment("inputs")).info.run_id
    dataset = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name="train-set")
    with mlflow.start_run(run_id=run_id):
        mlflow.log_input(dataset, context="training")
    got = client.get_run(run_id)
    [item] = got.inputs.dataset_inputs
    assert item.dataset.name == "train-set" and item.dataset.digest == dataset.digest
    assert {t.key: t.value for t in item.tags} == {"mlflow.data.context": "training"}

    model = {
        "run_id": run_id,
        "artifact_path": "model",
        "utc_time_created": "2024-01-01 00:00:00.000000",
        "flavors": {"sklearn": {"pickled_model": "model.pkl"}},
    }
    assert post_json(client, "runs/log-model", {"run_id": run_id, "model_json": json.dumps(model)}) == {}
    history = json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert history[0]["artifact_path"] == "model" and "sklearn" in history[0]["flavors"]


def test_artifacts_upload_through_the_server(mlflow_client, evtrack_server, tmp_path) -> None:
    exp_id = mlflow_client.create_experiment("with-artifacts")
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_text("hello", "notes/readme.txt")
    run_id = run.info.run_id
    assert [f.path for f in mlflow_client.list_artifacts(run_id, "notes")] == ["notes/readme.txt"]
    local = mlflow_client.download_artifacts(run_id, "notes/readme.txt", str(tmp_path))
    with open(local) as f:
        assert f.read() == "hello"
    mine = evtrack.EvtrackClient(evtrack_server.store_uri)
    assert [f.path for f in mine.list_artifacts(run_id, "notes")] == ["notes/readme.txt"]


# -- artifact locations -------------------------------------------------------------------


def test_without_serve_artifacts_the_stored_locations_are_reported(server_factory) -> None:
    server = server_factory(serve_artifacts=False)
    client = mlflow.MlflowClient(server.url)
    exp_id = client.create_experiment("direct")
    location = client.get_experiment(exp_id).artifact_location
    assert location.startswith("file://") and location.endswith(f"/artifacts/{exp_id}")
    run = client.create_run(exp_id)
    assert run.info.artifact_uri == f"{location}/{run.info.run_id}/artifacts"


def test_default_artifact_root_and_explicit_locations(server_factory, tmp_path) -> None:
    root = (tmp_path / "elsewhere").as_uri()
    server = server_factory(default_artifact_root=root)
    client = mlflow.MlflowClient(server.url)
    exp_id = client.create_experiment("rooted")
    assert client.get_experiment(exp_id).artifact_location == f"{root}/{exp_id}"
    explicit = (tmp_path / "mine").as_uri()
    other = client.create_experiment("explicit", artifact_location=explicit)
    assert client.get_experiment(other).artifact_location == explicit
    assert evtrack.EvtrackClient(server.store_uri).get_experiment(exp_id).artifact_location == f"{root}/{exp_id}"


def test_proxied_locations_from_clients_are_stored_in_the_store(server_factory) -> None:
    server = server_factory(default_artifact_root="mlflow-artifacts:/")
    client = mlflow.MlflowClient(server.url)
    exp_id = client.create_experiment("proxied-root")
    assert client.get_experiment(exp_id).artifact_location == f"mlflow-artifacts:/{exp_id}"
    custom = client.create_experiment("custom", artifact_location="mlflow-artifacts:/shared/place")
    mine = evtrack.EvtrackClient(server.store_uri)
    store_uri = mine.store.uri
    assert mine.get_experiment(exp_id).artifact_location == f"{store_uri}/artifacts/{exp_id}"
    assert mine.get_experiment(custom).artifact_location == f"{store_uri}/artifacts/shared/place"
    with pytest.raises(MlflowException, match="Invalid artifact path"):
        client.create_experiment("escape", artifact_location="mlflow-artifacts:/../outside")


# -- raw HTTP -----------------------------------------------------------------------------


def test_unknown_run_and_experiment_are_404(evtrack_server) -> None:
    for response in (
        get(evtrack_server, "runs/get", run_id="0" * 32),
        get(evtrack_server, "experiments/get", experiment_id="999"),
        get(evtrack_server, "experiments/get-by-name", experiment_name="nope"),
        post(evtrack_server, "runs/log-metric", {"run_id": "f" * 32, "key": "m", "value": 1, "timestamp": 1}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"key": "m", "value": "abc", "timestamp": 1}, "'value'"),
        ({"key": "m", "value": True, "timestamp": 1}, "'value'"),
        ({"key": "m", "value": 1}, "'timestamp'"),
        ({"value": 1, "timestamp": 1}, "'key'"),
        ({"key": "m", "value": 1, "timestamp": "soon"}, "'timestamp'"),
    ],
)
def test_bad_metric_values_are_400(evtrack_server, run_id, body, needle) -> None:
    response = post(evtrack_server, "runs/log-metric", {"run_id": run_id, **body})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert needle in response.json()["message"]


def test_missing_required_parameter_names_it(evtrack_server) -> None:
    response = post(evtrack_server, "experiments/create", {})
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": (
            "Missing value for required parameter 'name'. See the API docs for more information about "
            "request parameters."
        ),
    }
    response = post(evtrack_server, "runs/log-batch", {"run_id": "a" * 32, "metrics": [{"key": "m", "value": 1}]})
    assert response.status_code == 400 and "'metrics[0].timestamp'" in response.json()["message"]


def test_malformed_json_and_wrong_content_type_are_400(evtrack_server) -> None:
    url = f"{evtrack_server.url}{API}/experiments/create"
    response = httpx.post(url, content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error_code"] == "MALFORMED_REQUEST"
    response = httpx.post(url, content=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and "Content-Type" in response.json()["message"]


def test_param_immutability_and_batch_limits_are_mlflow_errors(evtrack_server, run_id) -> None:
    assert post(evtrack_server, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"}).json() == {}
    response = post(evtrack_server, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "2"})
    assert response.status_code == 400 and "Changing param values is not allowed" in response.json()["message"]
    metrics = [{"key": "m", "value": i, "timestamp": 1, "step": i} for i in range(1001)]
    response = post(evtrack_server, "runs/log-batch", {"run_id": run_id, "metrics": metrics})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_json_shapes_numbers_and_non_finite_values(evtrack_server, run_id) -> None:
    body = {
        "run_id": run_id,
        "metrics": [
            {"key": "nan", "value": "NaN", "timestamp": 5, "step": 2},
            {"key": "neg", "value": "-Infinity", "timestamp": 6},
            {"key": "num", "value": 2.5, "timestamp": "7", "step": "3"},
        ],
    }
    assert post(evtrack_server, "runs/log-batch", body).status_code == 200
    run = get(evtrack_server, "runs/get", run_id=run_id).json()["run"]
    assert run["info"]["run_id"] == run["info"]["run_uuid"] == run_id
    assert isinstance(run["info"]["start_time"], int) and "end_time" not in run["info"]
    metrics = {m["key"]: m for m in run["data"]["metrics"]}
    assert metrics["nan"] == {"key": "nan", "value": "NaN", "timestamp": 5, "step": 2}
    assert metrics["neg"]["value"] == "-Infinity"
    assert metrics["num"] == {"key": "num", "value": 2.5, "timestamp": 7, "step": 3}
    found = post(evtrack_server, "runs/search", {"experiment_ids": [run["info"]["experiment_id"]]}).json()
    assert {m["key"]: m for m in found["runs"][0]["data"]["metrics"]} == metrics
    assert "next_page_token" not in found


def test_get_with_query_parameters(evtrack_server, run_id) -> None:
    for step in range(5):
        post(
            evtrack_server,
            "runs/log-metric",
            {"run_id": run_id, "key": "loss", "value": step, "timestamp": 100 + step, "step": step},
        )
    page = get(evtrack_server, "metrics/get-history", run_id=run_id, metric_key="loss", max_results=2).json()
    assert [m["step"] for m in page["metrics"]] == [0, 1] and page["next_page_token"]
    rest = get(
        evtrack_server,
        "metrics/get-history",
        run_id=run_id,
        metric_key="loss",
        max_results=10,
        page_token=page["next_page_token"],
    ).json()
    assert [m["step"] for m in rest["metrics"]] == [2, 3, 4] and "next_page_token" not in rest
    full = get(evtrack_server, "metrics/get-history", run_uuid=run_id, metric_key="loss").json()
    assert len(full["metrics"]) == 5 and "run_id" not in full["metrics"][0]  # MLflow's history names no run

    exps = httpx.get(
        f"{evtrack_server.url}{API}/experiments/search",
        params=[("max_results", "1"), ("view_type", "ALL"), ("order_by", "name DESC")],
    ).json()
    assert [e["name"] for e in exps["experiments"]] == ["raw-http"] and exps["next_page_token"]
    exp_id = exps["experiments"][0]["experiment_id"]
    by_name = get(evtrack_server, "experiments/get-by-name", experiment_name="raw-http").json()
    assert by_name["experiment"]["experiment_id"] == exp_id
    assert get(evtrack_server, "experiments/search", view_type="SOMETIMES").status_code == 400
    found = httpx.get(
        f"{evtrack_server.url}{API}/runs/search", params={"experiment_ids": exp_id, "filter": "metrics.loss >= 4"}
    ).json()
    assert [r["info"]["run_id"] for r in found["runs"]] == [run_id]


def test_history_bulk_interval_samples_per_run(evtrack_server, run_id) -> None:
    metrics = [{"key": "loss", "value": s, "timestamp": s, "step": s} for s in range(50)]
    post(evtrack_server, "runs/log-batch", {"run_id": run_id, "metrics": metrics})
    response = httpx.get(
        f"{evtrack_server.url}{API}/metrics/get-history-bulk-interval",
        params={"run_ids": run_id, "metric_key": "loss", "max_results": 5, "start_step": 10, "end_step": 30},
    )
    steps = [m["step"] for m in response.json()["metrics"]]
    assert steps[0] == 10 and steps[-1] == 30 and len(steps) == 5


def test_user_id_comes_from_the_request_then_the_authenticated_user(server_factory, tmp_path) -> None:
    auth = tmp_path / "users.yaml"
    auth.write_text("users:\n  - {name: carol, password: pw, role: read-write}\n")
    server = server_factory(auth_file=str(auth))
    creds = ("carol", "pw")
    exp_id = httpx.post(f"{server.url}{API}/experiments/create", json={"name": "who"}, auth=creds).json()
    exp_id = exp_id["experiment_id"]
    plain = httpx.post(f"{server.url}{API}/runs/create", json={"experiment_id": exp_id}, auth=creds).json()
    named = httpx.post(
        f"{server.url}{API}/runs/create", json={"experiment_id": exp_id, "user_id": "dave"}, auth=creds
    ).json()
    assert plain["run"]["info"]["user_id"] == "carol"
    assert named["run"]["info"]["user_id"] == "dave"


def test_answers_are_the_same_after_compaction(evtrack_server, run_id) -> None:
    from compaction import compact
    from evtrack.store import open_store

    metrics = [{"key": "loss", "value": 1 / (s + 1), "timestamp": 1000 + s, "step": s} for s in range(3)]
    post(
        evtrack_server, "runs/log-batch", {"run_id": run_id, "metrics": metrics, "params": [{"key": "p", "value": "1"}]}
    )
    exp_id = get(evtrack_server, "runs/get", run_id=run_id).json()["run"]["info"]["experiment_id"]

    def answers() -> tuple:
        run = get(evtrack_server, "runs/get", run_id=run_id).json()["run"]
        found = post(evtrack_server, "runs/search", {"experiment_ids": [exp_id], "filter": "params.p = '1'"})
        history = get(evtrack_server, "metrics/get-history", run_id=run_id, metric_key="loss").json()
        return run["data"], found.json()["runs"][0]["data"], history

    before = answers()
    assert before[0]["metrics"] == [{"key": "loss", "value": 1 / 3, "timestamp": 1002, "step": 2}]
    assert before[1] == before[0]
    compact(open_store(evtrack_server.store_uri), grace_seconds=0)
    assert answers() == before
