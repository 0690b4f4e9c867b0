"""MLflow's own package on evtrack's store through the plugin entry points (issue 13).

User code here imports only ``mlflow`` (and scikit-learn); evtrack is reached through the
``evtrack:`` / ``evtrack+s3:`` tracking URIs, as after ``pip install "evtrack[mlflow]"``.
S3 is moto's server over real HTTP; MLflow's artifact repositories talk to it directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

from mlflow.exceptions import MlflowException  # noqa: E402


def _clear_mlflow_caches() -> None:
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    tracking_utils._tracking_store_registry._get_store_with_resolved_uri.cache_clear()
    registry_utils._get_store_registry()._get_store_with_resolved_uri.cache_clear()


@pytest.fixture
def mlflow_state(fresh_evtrack: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """MLflow's globals (tracking URI, active experiment and runs, store caches) clean around a test."""
    import mlflow.tracking.fluent as fluent

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    _clear_mlflow_caches()
    yield mlflow
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.sklearn.autolog(disable=True)
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # mlflow.set_experiment sets it for child processes
    mlflow.set_tracking_uri("")
    _clear_mlflow_caches()


@pytest.fixture(params=["local", "s3"])
def plugin_uri(request: pytest.FixtureRequest, mlflow_state: Any) -> str:
    """An ``evtrack:///abs/path`` or ``evtrack+s3://bucket/prefix`` URI, set as MLflow's tracking URI."""
    if request.param == "local":
        uri = "evtrack://" + request.getfixturevalue("local_uri")
    else:
        uri = "evtrack+" + request.getfixturevalue("s3_uri")
    mlflow.set_tracking_uri(uri)
    return uri


def _evtrack_location(uri: str) -> str:
    return uri.removeprefix("evtrack+").removeprefix("evtrack://")


def _data() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(7)
    X = rng.random((60, 3))
    return X, X @ np.array([1.0, 2.0, 3.0]) + rng.normal(0, 0.05, 60)


# -- autologging, search, models --------------------------------------------------------------


def test_sklearn_autolog_writes_evtrack_events(plugin_uri: str) -> None:
    from sklearn.linear_model import Lasso

    import evtrack

    X, y = _data()
    mlflow.set_experiment("taxi")
    mlflow.sklearn.autolog()
    with mlflow.start_run(run_name="lasso-0.1") as run:
        Lasso(alpha=0.1).fit(X, y)
        mlflow.log_metric("rmse", 0.25)
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "lasso-0.1"
    assert got.data.params["alpha"] == "0.1"
    assert {"training_score", "training_mean_squared_error", "training_r2_score"} <= set(got.data.metrics)
    assert got.data.tags["estimator_name"] == "Lasso"
    assert got.outputs.model_outputs, "autolog's model is recorded as the run's output"
    assert [d.tags[0].value for d in got.inputs.dataset_inputs] == ["train"]  # autolog's training dataset
    summaries = mlflow.MlflowClient()._tracking_client.store._search_datasets([got.info.experiment_id])
    assert [(s.name, s.context) for s in summaries] == [(got.inputs.dataset_inputs[0].dataset.name, "train")]
    model_id = got.outputs.model_outputs[0].model_id
    logged = mlflow.get_logged_model(model_id)
    assert logged.status == "READY" and logged.source_run_id == run.info.run_id

    # the same events, seen by evtrack's own client
    evtrack.set_tracking_uri(_evtrack_location(plugin_uri))
    ours = evtrack.get_run(run.info.run_id)
    assert ours.data.params["alpha"] == "0.1" and ours.data.metrics["rmse"] == 0.25
    assert ours.data.metrics["training_score"] == got.data.metrics["training_score"]

    df = mlflow.search_runs(filter_string="metrics.rmse < 0.5")
    assert list(df["run_id"]) == [run.info.run_id]
    assert {"metrics.rmse", "params.alpha", "tags.estimator_name", "status", "start_time"} <= set(df.columns)
    assert mlflow.search_runs(filter_string="metrics.rmse > 0.5").empty


def _registry_scenario(artifact_location: str | None) -> dict[str, Any]:
    """log_model with registered_model_name, aliases, a second version, stages: what MLflow answers."""
    from sklearn.linear_model import Lasso

    X, y = _data()
    exp = mlflow.create_experiment("models", artifact_location=artifact_location)
    with mlflow.start_run(experiment_id=exp) as run:
        model = Lasso(alpha=0.2).fit(X, y)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="taxi", input_example=X[:2])
    client = mlflow.MlflowClient()
    mv = client.get_model_version("taxi", "1")
    client.set_registered_model_alias("taxi", "champion", "1")
    loaded = mlflow.pyfunc.load_model("models:/taxi@champion")
    assert list(loaded.predict(X[:5])) == pytest.approx(list(model.predict(X[:5])))
    mlflow.register_model(f"models:/{info.model_id}", "taxi")
    client.transition_model_version_stage("taxi", "2", "Staging")
    client.set_model_version_tag("taxi", "2", "validated", "yes")
    client.update_registered_model("taxi", description="NYC taxi fares")
    registered = client.get_registered_model("taxi")
    return {
        "registered_version": info.registered_model_version,
        "run_matches": mv.run_id == run.info.run_id,
        # MLflow's file store keeps a version's model_id, its SQL store drops it; evtrack keeps it
        "model_id": mv.model_id == info.model_id if mv.model_id else None,
        "source": mv.source.replace(info.model_id, "<model_id>"),
        "by_alias": client.get_model_version_by_alias("taxi", "champion").version,
        "aliases": registered.aliases,
        "description": registered.description,
        "latest": sorted((v.version, v.current_stage) for v in registered.latest_versions),
        "versions": [v.version for v in client.search_model_versions("name='taxi'")],
        "staging": [v.version for v in client.get_latest_versions("taxi", ["Staging"])],
        "tags_v2": client.get_model_version("taxi", "2").tags,
        "logged_model_versions": json.loads(mlflow.get_logged_model(info.model_id).tags["mlflow.modelVersions"]),
        "models": [m.name for m in client.search_registered_models()],
    }


def test_log_model_register_alias_and_load_as_mlflow_sqlite(plugin_uri: str, tmp_path: Any) -> None:
    pytest.importorskip("sqlalchemy")
    ours = _registry_scenario(None)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    theirs = _registry_scenario(str(tmp_path / "mlflow-artifacts"))
    assert ours.pop("model_id") is True and theirs.pop("model_id") is None
    assert ours == theirs
    assert ours["source"] == "models:/<model_id>" and ours["versions"] == [2, 1]


def test_runs_uri_model_of_mlflow2_style_logging(plugin_uri: str) -> None:
    """``runs:/<run_id>/model`` resolves through the logged model when the run holds no files there."""
    from sklearn.linear_model import Ridge

    X, y = _data()
    with mlflow.start_run() as run:
        model = Ridge().fit(X, y)
        mlflow.sklearn.log_model(model, name="model")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "ridge")
    loaded = mlflow.sklearn.load_model(f"models:/ridge/{mv.version}")
    assert list(loaded.predict(X[:3])) == pytest.approx(list(model.predict(X[:3])))


# -- writes: queued, then durable at end_run / flush ------------------------------------------------


def _inbox_objects(location: str) -> int:
    from evtrack.store import open_store

    return sum(1 for _ in open_store(location).list("events/"))


def test_logging_calls_queue_and_flush_makes_them_durable(plugin_uri: str) -> None:
    location = _evtrack_location(plugin_uri)
    run = mlflow.start_run()
    mlflow.flush_async_logging()
    before = _inbox_objects(location)
    for step in range(200):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_param("alpha", "0.5")
    assert _inbox_objects(location) == before, "logging calls must not write to the store inline"
    mlflow.flush_async_logging()
    assert _inbox_objects(location) > before
    mlflow.end_run()
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(200))
    page = mlflow.MlflowClient()._tracking_client.store.get_metric_history(run.info.run_id, "loss", max_results=50)
    assert len(page) == 50 and page.token


# -- MLflow's rules and errors ------------------------------------------------------------------------


def test_mlflow_errors_and_codes(plugin_uri: str) -> None:
    client = mlflow.MlflowClient()
    with pytest.raises(MlflowException) as missing:
        client.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    exp = client.create_experiment("e")
    with pytest.raises(MlflowException) as taken:
        client.create_experiment("e")
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"
    run = client.create_run(exp)
    client.log_param(run.info.run_id, "alpha", "1")
    with pytest.raises(MlflowException, match="Changing param values is not allowed") as changed:
        client.log_param(run.info.run_id, "alpha", "2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as deleted:
        client.log_metric(run.info.run_id, "m", 1.0)
    assert deleted.value.error_code == "INVALID_STATE"
    client.restore_run(run.info.run_id)
    client.delete_experiment(exp)
    assert client.get_experiment(exp).lifecycle_stage == "deleted"
    client.restore_experiment(exp)
    client.rename_experiment(exp, "renamed")
    assert client.get_experiment_by_name("renamed").experiment_id == exp
    assert client.get_experiment_by_name("e") is None


def test_unsupported_features_answer_not_implemented(plugin_uri: str) -> None:
    client = mlflow.MlflowClient()
    with pytest.raises(MlflowException, match="Traces are not supported by the evtrack store") as traces:
        client.search_traces(experiment_ids=["0"])
    assert traces.value.error_code == "NOT_IMPLEMENTED"
    store = client._tracking_client.store
    with pytest.raises(MlflowException, match="Assessments are not supported"):
        store.get_assessment("tr-1", "a-1")
    with pytest.raises(MlflowException, match="Webhooks are not supported") as webhooks:
        client.list_webhooks()
    assert webhooks.value.error_code == "NOT_IMPLEMENTED"


def test_prompts_live_in_the_registry_apart_from_models(plugin_uri: str) -> None:
    """MLflow's prompts are registered models tagged as prompts: versions, aliases, search."""
    mlflow.genai.register_prompt(name="greeting", template="Hi {{name}}")
    mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}!")
    mlflow.genai.set_prompt_alias("greeting", "prod", 2)
    assert mlflow.genai.load_prompt("prompts:/greeting/1").format(name="Ada") == "Hi Ada"
    assert mlflow.genai.load_prompt("prompts:/greeting@prod").template == "Hello {{name}}!"
    assert [p.name for p in mlflow.genai.search_prompts()] == ["greeting"]
    client = mlflow.MlflowClient()
    client.create_registered_model("a-model")
    assert [m.name for m in client.search_registered_models()] == ["a-model"]


@pytest.mark.parametrize(
    "uri,why",
    [
        ("evtrack://some-host/path", "a store is a directory, not a host"),
        ("evtrack:", "it names no directory"),
        ("evtrack+s3:///prefix", "it names no bucket"),
    ],
)
def test_bad_store_uris_say_what_is_wrong(mlflow_state: Any, uri: str, why: str) -> None:
    mlflow.set_tracking_uri(uri)
    with pytest.raises(MlflowException, match=why) as info:
        mlflow.MlflowClient().search_experiments()
    assert "evtrack:///abs/path" in str(info.value)


def test_relative_uri_and_evtrack_logging_read_by_mlflow(
    mlflow_state: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evtrack

    monkeypatch.chdir(tmp_path)
    evtrack.set_tracking_uri(str(tmp_path / "shared"))
    with evtrack.start_run() as run:
        evtrack.log_param("lr", "0.01")
        evtrack.log_metric("acc", 0.9, step=3)
    mlflow.set_tracking_uri("evtrack:shared")
    got = mlflow.get_run(run.info.run_id)
    assert got.data.params == {"lr": "0.01"} and got.data.metrics == {"acc": 0.9}
    assert got.data._metric_objs[0].step == 3


def _experiment_searches() -> dict[str, list[str]]:
    client = mlflow.MlflowClient()
    for name, tags in (
        ("taxi-lasso", {"team": "fares"}),
        ("taxi-ridge", {"team": "fares"}),
        ("churn", {"team": "crm"}),
    ):
        client.create_experiment(name, tags=tags)
        time.sleep(0.005)  # 'newest first' must not hinge on a same-millisecond tie
    client.delete_experiment(client.get_experiment_by_name("churn").experiment_id)
    searches = {
        "active": {},
        "all by name": {"view_type": 3, "order_by": ["name"]},
        "deleted": {"view_type": 2},
        "like": {"filter_string": "name LIKE 'taxi%'", "order_by": ["name DESC"]},
        "tag": {"filter_string": "tags.team = 'fares'", "order_by": ["name"]},
    }
    out = {key: [e.name for e in client.search_experiments(**kw)] for key, kw in searches.items()}
    first = client.search_experiments(view_type=3, max_results=2, order_by=["name"])
    out["page 2"] = [e.name for e in client.search_experiments(view_type=3, max_results=2, order_by=["name"],
                                                                  page_token=first.token)]  # fmt: skip
    return out


def test_search_experiments_as_mlflow_sqlite(plugin_uri: str, tmp_path: Any) -> None:
    pytest.importorskip("sqlalchemy")
    ours = _experiment_searches()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    theirs = _experiment_searches()
    assert ours == theirs and ours["like"] == ["taxi-ridge", "taxi-lasso"]


def test_a_script_that_exits_without_end_run_leaves_its_run_finished_and_complete(tmp_path: Any) -> None:
    """MLflow ends the active run at exit; evtrack's writer then ships it: nothing is lost."""
    import evtrack

    script = (
        "import mlflow\n"
        f"mlflow.set_tracking_uri('evtrack://{tmp_path / 'store'}')\n"
        "mlflow.start_run(run_name='no-end')\n"
        "for i in range(500): mlflow.log_metric('loss', 1 / (i + 1), step=i)\n"
        "mlflow.log_param('alpha', '0.5')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["EVTRACK_SPOOL_DIR"] = str(tmp_path / "spool")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120, capture_output=True)
    (run,) = evtrack.EvtrackClient(str(tmp_path / "store")).search_runs(["0"])
    assert (run.info.run_name, run.info.status, run.data.params) == ("no-end", "FINISHED", {"alpha": "0.5"})
    history = evtrack.EvtrackClient(str(tmp_path / "store")).get_metric_history(run.info.run_id, "loss")
    assert len(history) == 500
