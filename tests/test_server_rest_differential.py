"""MLflow's REST API, differentially: the same requests to ``mlflow server`` and ``evtrack server``.

Both servers run once per module as real subprocesses: MLflow 3.17.2's own server on a sqlite
store (its reference behaviour) and ``evtrack server`` on a local event-log store. Each case
sends the same request (after creating the same fixtures on both) and compares the HTTP status,
the ``error_code`` and the ``message`` of the answers, for valid and invalid inputs per endpoint.
Values that differ by nature (generated ids, times, paths) are substituted into the requests per
server and never compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.rest_servers import Served, answer, fill, normal, mlflow_and_evtrack

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.timeout(300)

API = "/api/2.0/mlflow"


def _setup(server: Served) -> None:
    """The same fixtures on both servers: an experiment, a run with a metric history, a model."""
    ok = server.call
    exp = ok("POST", f"{API}/experiments/create", {"name": "diff-exp"}).json()["experiment_id"]
    server.ids["exp"] = exp
    run = ok("POST", f"{API}/runs/create", {"experiment_id": exp, "run_name": "r1", "start_time": 1000}).json()
    server.ids["run"] = run["run"]["info"]["run_id"]
    metrics = [{"key": "loss", "value": 1.0 / (s + 1), "timestamp": 1000 + s, "step": s} for s in range(10)]
    assert ok("POST", f"{API}/runs/log-batch", {"run_id": server.ids["run"], "metrics": metrics}).status_code == 200
    dataset = {"name": "iris", "digest": "abc123", "source_type": "local", "source": "/data/iris.csv"}
    inputs = {"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "training"}]}
    logged = ok("POST", f"{API}/runs/log-inputs", {"run_id": server.ids["run"], "datasets": [inputs]})
    assert logged.status_code == 200, logged.text
    assert ok("POST", f"{API}/registered-models/create", {"name": "diff-model"}).status_code == 200
    for _ in range(2):
        version = ok(
            "POST",
            f"{API}/model-versions/create",
            {"name": "diff-model", "source": "runs:/{run}/model", "run_id": "{run}"},
        )
        assert version.status_code == 200, version.text


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Served]]:
    with mlflow_and_evtrack(tmp_path_factory) as (ref, ours):
        _setup(ref)
        _setup(ours)
        yield ref, ours


R = "{run}"
E = "{exp}"

# (method, path under /api/2.0/mlflow, body or query): status, error_code and message must match.
CASES: list[tuple[str, str, Any]] = [
    # -- type validation: a value of the wrong JSON type ----------------------------------
    ("POST", "/runs/update", {"run_id": 31, "status": "FINISHED"}),
    ("POST", "/runs/delete", {"run_id": 31}),
    ("POST", "/runs/log-metric", {"run_id": 31, "key": "m", "value": 1.0, "timestamp": 1}),
    ("POST", "/experiments/create", {"name": 123}),
    ("POST", "/experiments/create", {"name": ["a"]}),
    ("POST", "/runs/log-metric", {"run_id": R, "key": 5, "value": 1.0, "timestamp": 1}),
    ("POST", "/runs/log-metric", {"run_id": R, "key": "m", "value": "abc", "timestamp": 1}),
    ("POST", "/runs/log-metric", {"run_id": R, "key": "m", "value": 1.0, "timestamp": "x"}),
    ("POST", "/runs/log-parameter", {"run_id": R, "key": 7, "value": "v"}),
    ("POST", "/runs/set-tag", {"run_id": R, "key": "t", "value": 3}),
    ("POST", "/experiments/set-experiment-tag", {"experiment_id": E, "key": "k", "value": 3}),
    ("POST", "/runs/search", {"experiment_ids": [E], "max_results": "many"}),
    ("POST", "/runs/search", {"experiment_ids": [E], "max_results": 50001}),
    ("POST", "/runs/search", {"experiment_ids": [E], "order_by": [1]}),
    ("POST", "/runs/search", {"experiment_ids": E}),
    ("POST", "/experiments/search", {"max_results": "x"}),
    # -- missing required values -------------------------------------------------------------
    ("POST", "/experiments/create", {}),
    ("POST", "/experiments/create", {"name": ""}),
    ("POST", "/runs/log-metric", {"run_id": R, "key": "m", "timestamp": 1}),
    ("POST", "/runs/log-metric", {"run_id": R, "value": 1.0, "timestamp": 1}),
    ("POST", "/runs/set-tag", {"run_id": R, "value": "v"}),
    ("POST", "/runs/delete", {}),
    ("GET", "/runs/get", {}),
    ("GET", "/experiments/get", {}),
    ("GET", "/experiments/get-by-name", {}),
    ("GET", "/metrics/get-history", {"run_id": R}),
    # -- log-batch bodies ----------------------------------------------------------------------
    ("POST", "/runs/log-batch", {"run_id": R, "metrics": "foo"}),
    ("POST", "/runs/log-batch", {"run_id": R, "params": "foo"}),
    ("POST", "/runs/log-batch", {"run_id": R, "tags": {"a": "b"}}),
    ("POST", "/runs/log-batch", {"run_id": R, "metrics": [{"key": "m", "value": 1.0}]}),
    ("POST", "/runs/log-batch", {"run_id": R, "params": [{"value": "v"}]}),
    ("POST", "/runs/log-batch", {"metrics": []}),
    ("POST", "/runs/log-batch", {"run_id": R, "metrics": [{"key": "ok", "value": 2.0, "timestamp": 5, "step": 1}]}),
    # -- not found, and valid reads ------------------------------------------------------------
    ("GET", "/runs/get", {"run_id": "31"}),
    ("GET", "/runs/get", {"run_id": R}),
    ("GET", "/experiments/get", {"experiment_id": "99999"}),
    ("GET", "/experiments/get-by-name", {"experiment_name": "no-such-experiment"}),
    ("GET", "/metrics/get-history", {"run_id": R, "metric_key": "loss"}),
    # -- registry ------------------------------------------------------------------------------
    ("POST", "/registered-models/create", {"name": 123}),
    ("POST", "/registered-models/create", {}),
    ("POST", "/registered-models/create", {"name": "diff-model"}),
    ("GET", "/registered-models/get", {"name": "no-such-model"}),
    ("GET", "/registered-models/get", {}),
    ("POST", "/registered-models/rename", {"name": "diff-model"}),
    ("GET", "/registered-models/search", {"max_results": "1001"}),
    ("GET", "/registered-models/search", {"max_results": "x"}),
    ("POST", "/registered-models/get-latest-versions", {"name": "diff-model", "stages": "Staging"}),
    ("POST", "/registered-models/set-tag", {"name": "diff-model", "key": "k", "value": 1}),
    ("GET", "/model-versions/get", {"name": "diff-model", "version": "7"}),
    ("GET", "/model-versions/get", {"name": "diff-model"}),
    (
        "POST",
        "/model-versions/transition-stage",
        {"name": "diff-model", "version": "1", "stage": "Staging", "archive_existing_versions": "yes"},
    ),
    (
        "POST",
        "/model-versions/transition-stage",
        {"name": "diff-model", "version": "1", "stage": "Sideways", "archive_existing_versions": False},
    ),
    ("POST", "/model-versions/create", {"name": "diff-model"}),
    ("POST", "/model-versions/create", {"name": "no-such-model", "source": "runs:/{run}/model"}),
    ("POST", "/registered-models/alias", {"name": "diff-model", "alias": "champion"}),
    ("POST", "/registered-models/alias", {"name": "diff-model", "alias": "champion", "version": "9"}),
    ("GET", "/registered-models/alias", {"name": "diff-model", "alias": "nobody"}),
    ("GET", "/model-versions/search", {"max_results": "200001"}),
    ("GET", "/model-versions/search", {"filter": "name = 'diff-model'", "max_results": "1"}),
]


def _case_id(case: tuple[str, str, Any]) -> str:
    method, path, body = case
    return f"{method} {path} {body}"[:90]


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_the_same_request_gets_the_same_answer(servers: tuple[Served, Served], case: tuple[str, str, Any]) -> None:
    method, path, body = case
    ref, ours = servers
    theirs = answer(ref, ref.call(method, API + path, body))
    mine = answer(ours, ours.call(method, API + path, body))
    assert mine == theirs


# (method, path from the server root, body or query): the whole JSON answer must match.
BODY_CASES: list[tuple[str, str, Any]] = [
    ("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk", {"run_id": R, "metric_key": "loss"}),
    ("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk", {"run_id": R, "metric_key": "loss", "max_results": "3"}),
    ("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk", {"metric_key": "loss"}),
    (
        "GET",
        "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
        {"run_ids": R, "metric_key": "loss", "max_results": "5"},
    ),
    (
        "GET",
        "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
        {"run_ids": R, "metric_key": "loss", "start_step": "2", "end_step": "8", "max_results": "3"},
    ),
    ("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", {"experiment_ids": [E]}),
    ("POST", "/api/2.0/mlflow/experiments/create", {"name": "relative", "artifact_location": "my_location"}),
    ("GET", "/api/2.0/mlflow/experiments/get-by-name", {"experiment_name": "relative"}),
    ("POST", "/api/2.0/mlflow/registered-models/create", {"name": "model/path/0"}),
    ("GET", "/api/2.0/mlflow/registered-models/get", {"name": "model/path/0"}),
    (
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        {"name": "diff-model", "source": "mlflow-artifacts:/{exp}/{run}/artifacts/model", "run_id": R},
    ),
    ("GET", "/api/2.0/mlflow/runs/get", {"run_id": R}),
    ("POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [E]}),
    ("GET", "/api/2.0/mlflow/experiments/get", {"experiment_id": E}),
]


@pytest.mark.parametrize("case", BODY_CASES, ids=[_case_id(c) for c in BODY_CASES])
def test_the_same_request_gets_the_same_body(servers: tuple[Served, Served], case: tuple[str, str, Any]) -> None:
    method, path, body = case
    ref, ours = servers
    theirs, mine = ref.call(method, path, body), ours.call(method, path, body)
    assert mine.status_code == theirs.status_code, (mine.text, theirs.text)
    assert normal(ours, mine.json()) == normal(ref, theirs.json())


def test_a_remote_file_source_is_a_400_with_mlflows_message_where_mlflow_answers_500(
    servers: tuple[Served, Served],
) -> None:
    """A deliberate difference (docs/server.md): bad input is the client's error, never a 500."""
    ref, ours = servers
    body = {"name": "diff-model", "source": "file://otherhost/tmp/model"}
    theirs = ref.call("POST", API + "/model-versions/create", body)
    mine = ours.call("POST", API + "/model-versions/create", body)
    assert theirs.status_code == 500 and mine.status_code == 400
    assert mine.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert mine.json()["message"] == theirs.json()["message"]


# -- the artifact routes of MLflow's web UI -----------------------------------------------------


def _raw(server: Served, method: str, path: str, query: dict[str, str], content: bytes | None = None) -> Any:
    query = {k: fill(v, server.ids) for k, v in query.items()}
    response = server.http.request(method, path.format(**server.ids), params=query, content=content)
    try:
        body: Any = response.json()
        body = (body.get("error_code"), normal(server, body.get("message"))) if "error_code" in body else body
    except ValueError:
        body = response.content
    return response.status_code, body


UI_ARTIFACT_CASES: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("POST", "/ajax-api/2.0/mlflow/upload-artifact", {"run_uuid": R, "path": "ui/notes.txt"}, b"from the UI\n"),
    ("GET", "/get-artifact", {"run_uuid": R, "path": "ui/notes.txt"}, None),
    ("GET", "/get-artifact", {"run_id": R, "path": "ui/notes.txt"}, None),
    ("GET", "/model-versions/get-artifact", {"name": "files-model", "version": "1", "path": "MLmodel"}, None),
    ("GET", "/model-versions/get-artifact", {"name": "files-model", "version": "1", "path": "../../x"}, None),
    ("POST", "/ajax-api/2.0/mlflow/upload-artifact", {"path": "x.txt"}, b"x"),
    ("POST", "/ajax-api/2.0/mlflow/upload-artifact", {"run_uuid": R}, b"x"),
    ("POST", "/ajax-api/2.0/mlflow/upload-artifact", {"run_uuid": R, "path": "empty.txt"}, b""),
    ("POST", "/ajax-api/2.0/mlflow/upload-artifact", {"run_uuid": R, "path": "big.bin"}, b"0" * (10 * 1024 * 1024 + 1)),
    ("GET", "/ajax-api/2.0/mlflow/logged-models/{model}/artifacts/files", {"artifact_file_path": "w.txt"}, None),
    ("GET", "/ajax-api/2.0/mlflow/logged-models/{model}/artifacts/files", {}, None),
]


@pytest.fixture(scope="module")
def with_files(servers: tuple[Served, Served]) -> tuple[Served, Served]:
    """A model file under the run the first version points at, and a logged model with a file."""
    for server in servers:
        model = server.call("POST", API + "/logged-models", {"experiment_id": E, "name": "lm"})
        assert model.status_code == 200, model.text
        server.ids["model"] = model.json()["model"]["info"]["model_id"]
        for path, data in (
            ("{exp}/{run}/artifacts/model/MLmodel", b"flavors: {}\n"),
            ("{exp}/models/{model}/artifacts/w.txt", b"weights\n"),
        ):
            put = server.http.put("/api/2.0/mlflow-artifacts/artifacts/" + path.format(**server.ids), content=data)
            assert put.status_code == 200, put.text
        assert server.call("POST", API + "/registered-models/create", {"name": "files-model"}).status_code == 200
        source = {"name": "files-model", "source": "mlflow-artifacts:/{exp}/{run}/artifacts/model", "run_id": R}
        assert server.call("POST", API + "/model-versions/create", source).status_code == 200
    return servers


@pytest.mark.parametrize("case", UI_ARTIFACT_CASES, ids=[f"{c[0]} {c[1]} {c[2]}"[:90] for c in UI_ARTIFACT_CASES])
def test_the_uis_artifact_routes_answer_as_mlflows(with_files: tuple[Served, Served], case: tuple) -> None:
    method, path, query, content = case
    ref, ours = with_files
    assert _raw(ours, method, path, query, content) == _raw(ref, method, path, query, content)


def test_a_version_registered_from_a_runs_uri_serves_its_files_where_mlflow_answers_500(
    with_files: tuple[Served, Served],
) -> None:
    """A deliberate difference (docs/server.md): MLflow's server cannot resolve a ``runs:/``
    source it stored; evtrack serves the run's files."""
    ref, ours = with_files
    query = {"name": "diff-model", "version": "1", "path": "MLmodel"}
    assert _raw(ref, "GET", "/model-versions/get-artifact", query)[0] == 500
    assert _raw(ours, "GET", "/model-versions/get-artifact", query) == (200, b"flavors: {}\n")
