"""The model registry (and MLflow 3's logged models) through the tracking server: MLflow's own
client against a real server, the same registry read back through evtrack, and the HTTP contract."""

from __future__ import annotations

import httpx
import pytest

import evtrack
import evtrack.pyfunc

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException

API = "/api/2.0/mlflow"
pytestmark = pytest.mark.filterwarnings("ignore:Add type hints", "ignore::FutureWarning")


class Shout(mlflow.pyfunc.PythonModel):
    """A tiny model: upper-cases its input strings."""

    def predict(self, context, model_input, params=None):
        return [str(x).upper() for x in model_input]


def get(server, path: str, **params) -> httpx.Response:
    return httpx.get(f"{server.url}{API}/{path}", params=params)


def post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}{API}/{path}", json=body)


@pytest.fixture
def files_run(mlflow_client, tmp_path) -> str:
    """A run whose artifacts hold a pyfunc model under ``model/`` (MLflow 2 style: plain files)."""
    mlflow.pyfunc.save_model(str(tmp_path / "saved"), python_model=Shout(), pip_requirements=[])
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "saved"), artifact_path="model")
    return run.info.run_id


@pytest.fixture
def evtrack_store(evtrack_server):
    """``evtrack`` pointed at the server's store (as a user on the machine with the store would)."""
    evtrack.set_tracking_uri(evtrack_server.store_uri)
    return evtrack.EvtrackClient(evtrack_server.store_uri)


# -- MLflow's client --------------------------------------------------------------------------------


def test_mlflow3_log_model_then_register_from_the_run(mlflow_client, evtrack_store) -> None:
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Shout(), pip_requirements=[])
    model_id = info.model_id
    assert info.model_uri == f"models:/{model_id}"

    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "shout")
    assert (mv.name, mv.version, mv.source, mv.run_id) == ("shout", "1", info.model_uri, run.info.run_id)
    assert mlflow.pyfunc.load_model("models:/shout/1").predict(["a", "b"]) == ["A", "B"]
    assert mlflow_client.get_model_version_download_uri("shout", "1") == (
        f"mlflow-artifacts:/0/models/{model_id}/artifacts"
    )
    logged = mlflow_client.get_logged_model(model_id)
    assert logged.status.to_int() == 2 and logged.source_run_id == run.info.run_id
    assert '"name": "shout"' in logged.tags["mlflow.modelVersions"]

    stored = evtrack_store.get_model_version("shout", 1)
    assert stored.source.endswith(f"/artifacts/0/models/{model_id}/artifacts")
    assert stored.run_id == run.info.run_id
    assert evtrack.pyfunc.load_model("models:/shout/1").predict(["x"]) == ["X"]

    again = mlflow.register_model(info.model_uri, "shout")  # the models:/<model_id> form directly
    assert (again.version, again.source) == ("2", info.model_uri)


def test_log_model_into_an_experiment_with_its_own_artifact_location(mlflow_client, tmp_path) -> None:
    exp_id = mlflow_client.create_experiment("elsewhere", artifact_location="mlflow-artifacts:/shared/place")
    with mlflow.start_run(experiment_id=exp_id):
        info = mlflow.pyfunc.log_model(name="m", python_model=Shout(), pip_requirements=[])
    model = mlflow_client.get_logged_model(info.model_id)
    assert model.experiment_id == exp_id and f"/shared/place/models/{info.model_id}/" in model.artifact_location
    assert mlflow.pyfunc.load_model(info.model_uri).predict(["e"]) == ["E"]


def test_register_model_files_logged_in_the_run(mlflow_client, files_run, evtrack_store) -> None:
    mv = mlflow.register_model(f"runs:/{files_run}/model", "files")
    proxied = f"mlflow-artifacts:/0/{files_run}/artifacts/model"
    assert (mv.version, mv.source) == ("1", proxied)
    assert mlflow_client.get_model_version_download_uri("files", 1) == proxied
    assert mlflow.pyfunc.load_model("models:/files/latest").predict(["q"]) == ["Q"]

    stored = evtrack_store.get_model_version("files", 1)
    assert stored.source == f"{evtrack_store.get_run(files_run).info.artifact_uri}/model"
    assert evtrack.pyfunc.load_model("models:/files/1").predict(["z"]) == ["Z"]


def test_a_runs_uri_source_given_to_create_model_version(mlflow_client, files_run, evtrack_store) -> None:
    mlflow_client.create_registered_model("direct")
    mv = mlflow_client.create_model_version("direct", f"runs:/{files_run}/model", run_id=files_run)
    assert mv.source == f"runs:/{files_run}/model"
    assert mlflow_client.get_model_version_download_uri("direct", mv.version) == f"runs:/{files_run}/model"
    assert mlflow.pyfunc.load_model("models:/direct/1").predict(["r"]) == ["R"]
    assert evtrack.pyfunc.load_model("models:/direct/1").predict(["s"]) == ["S"]


def test_stages_aliases_and_searches(mlflow_client, files_run, evtrack_store) -> None:
    client = mlflow_client
    client.create_registered_model("reg-a", tags={"team": "x"}, description="first")
    client.create_registered_model("reg-b")
    source = f"mlflow-artifacts:/0/{files_run}/artifacts/model"
    for _ in range(3):
        client.create_model_version("reg-a", source, run_id=files_run)
    client.transition_model_version_stage("reg-a", 1, "Staging")
    client.transition_model_version_stage("reg-a", 2, "production")
    moved = client.transition_model_version_stage("reg-a", 3, "Production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert client.get_model_version("reg-a", 2).current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions("reg-a", stages=["Production"])] == ["3"]
    assert {v.current_stage: v.version for v in client.get_latest_versions("reg-a")} == {
        "Staging": "1",
        "Production": "3",
        "Archived": "2",
    }

    client.set_registered_model_alias("reg-a", "champion", 1)
    assert client.get_model_version_by_alias("reg-a", "champion").version == "1"
    assert client.get_registered_model("reg-a").aliases == {"champion": "1"}
    assert mlflow.pyfunc.load_model("models:/reg-a@champion").predict(["c"]) == ["C"]

    assert [m.name for m in client.search_registered_models("name LIKE 'reg-%'")] == ["reg-a", "reg-b"]
    assert [m.name for m in client.search_registered_models("tags.team = 'x'")] == ["reg-a"]
    first = client.search_model_versions("name = 'reg-a'", max_results=2, order_by=["version_number ASC"])
    assert [v.version for v in first] == ["1", "2"] and first.token
    rest = client.search_model_versions(
        "name = 'reg-a'", max_results=2, order_by=["version_number ASC"], page_token=first.token
    )
    assert [v.version for v in rest] == ["3"] and not rest.token
    assert len(client.search_model_versions(f"run_id = '{files_run}'")) == 3

    rows = evtrack.sql(
        "SELECT version, current_stage FROM model_versions WHERE name = 'reg-a' ORDER BY version"
    ).to_pylist()
    assert rows == [
        {"version": 1, "current_stage": "Staging"},
        {"version": 2, "current_stage": "Archived"},
        {"version": 3, "current_stage": "Production"},
    ]
    assert evtrack.sql("SELECT alias, version FROM registered_model_aliases").to_pylist() == [
        {"alias": "champion", "version": 1}
    ]
    assert evtrack_store.get_model_version_by_alias("reg-a", "champion").version == 1

    client.delete_registered_model_alias("reg-a", "champion")
    with pytest.raises(MlflowException, match="alias champion not found"):
        client.get_model_version_by_alias("reg-a", "champion")


def test_rename_update_tags_and_delete(mlflow_client, files_run, evtrack_store) -> None:
    client = mlflow_client
    client.create_registered_model("old-name")
    client.create_model_version("old-name", f"runs:/{files_run}/model", run_id=files_run)
    client.rename_registered_model("old-name", "new-name")
    assert client.get_registered_model("new-name").latest_versions[0].version == "1"
    assert client.update_registered_model("new-name", description="about").description == "about"
    assert client.update_model_version("new-name", 1, description="v1 notes").description == "v1 notes"
    client.set_registered_model_tag("new-name", "owner", "ana")
    client.set_model_version_tag("new-name", "1", "validated", "yes")
    model = client.get_registered_model("new-name")
    assert model.tags == {"owner": "ana"} and model.latest_versions[0].tags == {"validated": "yes"}
    assert evtrack_store.get_model_version("new-name", 1).tags == {"validated": "yes"}
    client.delete_model_version_tag("new-name", "1", "validated")
    client.delete_registered_model_tag("new-name", "owner")
    assert client.get_model_version("new-name", 1).tags == {}
    assert client.get_registered_model("new-name").tags == {}

    client.delete_model_version("new-name", 1)
    with pytest.raises(MlflowException, match="not found") as missing:
        client.get_model_version("new-name", 1)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model("new-name")
    assert evtrack.sql("SELECT count(*) AS n FROM registered_models").to_pylist() == [{"n": 0}]


def test_searches_leave_out_prompts_as_mlflow_does(mlflow_client, evtrack_server) -> None:
    mlflow_client.create_registered_model("plain")
    post(
        evtrack_server,
        "registered-models/create",
        {"name": "a-prompt", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
    )
    assert [m.name for m in mlflow_client.search_registered_models()] == ["plain"]
    prompts = mlflow_client.search_registered_models("tags.`mlflow.prompt.is_prompt` = 'true'")
    assert [m.name for m in prompts] == ["a-prompt"]


# -- the HTTP contract ------------------------------------------------------------------------------


def test_unknown_model_and_version_are_404(evtrack_server) -> None:
    post(evtrack_server, "registered-models/create", {"name": "known"})
    for path, params in [
        ("registered-models/get", {"name": "nope"}),
        ("model-versions/get", {"name": "nope", "version": "1"}),
        ("model-versions/get", {"name": "known", "version": "7"}),
        ("model-versions/get-download-uri", {"name": "known", "version": "1"}),
        ("registered-models/get-latest-versions", {"name": "nope"}),
    ]:
        response = get(evtrack_server, path, **params)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    bad = get(evtrack_server, "model-versions/get", name="known", version="x")
    assert bad.status_code == 400 and "must be an integer" in bad.json()["message"]
    no_alias = get(evtrack_server, "registered-models/alias", name="known", alias="gone")
    assert no_alias.status_code == 400 and no_alias.json()["message"] == "Registered model alias gone not found."
    missing_name = get(evtrack_server, "registered-models/get")
    assert missing_name.status_code == 400 and "'name'" in missing_name.json()["message"]


def test_registry_json_shapes(evtrack_server, files_run) -> None:
    created = post(
        evtrack_server, "registered-models/create", {"name": "shape", "tags": [{"key": "k", "value": "v"}]}
    ).json()["registered_model"]
    assert created["name"] == "shape" and created["tags"] == [{"key": "k", "value": "v"}]
    assert isinstance(created["creation_timestamp"], int)
    mv = post(
        evtrack_server,
        "model-versions/create",
        {"name": "shape", "source": f"runs:/{files_run}/model", "run_id": files_run},
    ).json()["model_version"]
    assert (mv["version"], mv["current_stage"], mv["status"], mv["source"]) == (
        "1",
        "None",
        "READY",
        f"runs:/{files_run}/model",
    )
    post(evtrack_server, "registered-models/alias", {"name": "shape", "alias": "prod", "version": "1"})
    model = get(evtrack_server, "registered-models/get", name="shape").json()["registered_model"]
    assert model["aliases"] == [{"alias": "prod", "version": "1"}]
    assert "aliases" not in model["latest_versions"][0]  # as MLflow's: the model names them, its latest versions do not
    latest = httpx.post(
        f"{evtrack_server.url}{API}/registered-models/get-latest-versions", json={"name": "shape", "stages": ["None"]}
    ).json()
    assert [v["version"] for v in latest["model_versions"]] == ["1"]
    assert get(evtrack_server, "registered-models/search", filter="name = 'nothing'").json() == {}


@pytest.mark.parametrize(
    "source, run_id, field",
    [
        ("runs:/{run}/model", None, "run_id"),
        ("runs:/{run}/model", "f" * 32, "run_id"),
        ("mlflow-artifacts:/0/{run}/artifacts/model", None, "run_id"),
        ("mlflow-artifacts:/0/{other}/artifacts/model", "{run}", "run_id"),
        ("mlflow-artifacts:/0/{run}/artifacts/../../../x", "{run}", "absolute path"),
        ("/etc", "{run}", "contained within"),
        ("models:/m-" + "a" * 32, None, "model_id"),
    ],
)
def test_create_model_version_refuses_sources_outside_the_run(evtrack_server, files_run, source, run_id, field) -> None:
    post(evtrack_server, "registered-models/create", {"name": "guarded"})
    body = {"name": "guarded", "source": source.format(run=files_run, other="e" * 32)}
    if run_id:
        body["run_id"] = run_id.format(run=files_run)
    response = post(evtrack_server, "model-versions/create", body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert field in response.json()["message"]


def test_logged_model_endpoints(evtrack_server) -> None:
    created = post(
        evtrack_server,
        "logged-models",
        {"experiment_id": "0", "name": "lm", "params": [{"key": "alpha", "value": "0.1"}]},
    ).json()
    info = created["model"]["info"]
    model_id = info["model_id"]
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/models/{model_id}/artifacts"
    assert created["model"]["data"] == {"params": [{"key": "alpha", "value": "0.1"}]}
    post(evtrack_server, "logged-models", {"experiment_id": "0", "name": "other"})

    url = f"{evtrack_server.url}{API}/logged-models/{model_id}"
    ready = httpx.patch(url, json={"model_id": model_id, "status": "LOGGED_MODEL_READY"}).json()
    assert ready["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    found = post(
        evtrack_server,
        "logged-models/search",
        {"experiment_ids": ["0"], "filter": "name = 'lm' AND params.alpha = '0.1'"},
    ).json()
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]
    everything = post(evtrack_server, "logged-models/search", {"experiment_ids": ["0"], "max_results": 1}).json()
    assert len(everything["models"]) == 1 and everything["next_page_token"]

    assert httpx.delete(url).json() == {}
    assert httpx.get(url).status_code == 404
    assert httpx.get(url, params={"allow_deleted": "true"}).status_code == 200
    unknown = httpx.get(f"{evtrack_server.url}{API}/logged-models/m-{'0' * 32}")
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    deleted_exp = post(evtrack_server, "logged-models", {"experiment_id": "12345"})
    assert deleted_exp.status_code == 404


def test_concurrent_logged_model_tag_changes_are_all_kept(evtrack_server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    model_id = post(evtrack_server, "logged-models", {"experiment_id": "0"}).json()["model"]["info"]["model_id"]
    url = f"{evtrack_server.url}{API}/logged-models/{model_id}/tags"

    def tag(i: int) -> int:
        return httpx.patch(url, json={"tags": [{"key": f"k{i}", "value": str(i)}]}, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(tag, range(16))) == {200}
    info = httpx.get(f"{evtrack_server.url}{API}/logged-models/{model_id}").json()["model"]["info"]
    assert {t["key"]: t["value"] for t in info["tags"]} == {f"k{i}": str(i) for i in range(16)}
    gone = httpx.delete(f"{url}/k3")
    assert gone.json() == {} and httpx.delete(f"{url}/k3").status_code == 404
