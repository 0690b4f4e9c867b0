"""scikit-learn autologging: what a fit logs, compared with MLflow's own ``mlflow.sklearn.autolog()``.

MLflow's side runs in a subprocess (its autolog patches the same scikit-learn classes
evtrack's does), on its sqlite store, fitting the same estimators on the same data.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("mlflow")

import evtrack  # noqa: E402
from evtrack.autologging import config, patching  # noqa: E402

FITS = textwrap.dedent(
    """
    import sklearn.metrics
    from sklearn.datasets import load_diabetes, load_iris, load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.linear_model import Lasso, LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    def fits():
        X, y = load_diabetes(return_X_y=True)
        yield "lasso", lambda: Lasso(alpha=0.1).fit(X, y)
        Xb, yb = load_breast_cancer(return_X_y=True)
        yield "tree", lambda: DecisionTreeClassifier(max_depth=3, random_state=0).fit(Xb, yb)
        Xi, yi = load_iris(return_X_y=True)
        yield "pipeline", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(Xi, yi)
        yield "grid", lambda: GridSearchCV(Lasso(), {"alpha": [0.01, 0.1, 1.0]}, cv=3).fit(X, y)

        def post_training():
            X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
            model = Lasso(alpha=0.2).fit(X_train, y_train)
            pred = model.predict(X_test)
            sklearn.metrics.mean_squared_error(y_test, pred)
            sklearn.metrics.mean_squared_error(y_test, pred)  # a second call: mean_squared_error-2_X_test
            sklearn.metrics.r2_score(y_test, pred)
            model.score(X_test, y_test)
            sklearn.metrics.r2_score(y_test, y_test)  # not on a prediction: not logged

        yield "post_training", post_training
    """
)

DUMP = textwrap.dedent(
    """
    def dump(client, run_id, list_artifacts, children):
        run = client.get_run(run_id)
        kids = children(run_id)
        return {
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
            "tags": {k: v for k, v in run.data.tags.items() if k in ("estimator_name", "estimator_class", "mlflow.autologging")},
            "status": run.info.status,
            "artifacts": sorted(list_artifacts(run_id)),
            "children": sorted(
                [{"params": dict(k.data.params), "metrics": sorted(k.data.metrics), "status": k.info.status,
                  "tags": {t: v for t, v in k.data.tags.items() if t in ("estimator_name", "estimator_class", "mlflow.autologging")}}
                 for k in kids], key=lambda c: c["params"].get("alpha", "")),
        }
    """
)

MLFLOW_SIDE = (
    FITS
    + DUMP
    + textwrap.dedent(
        """
    import json, sys, mlflow
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("autolog")
    mlflow.sklearn.autolog(silent=True)
    client = mlflow.MlflowClient()
    out = {}
    for name, fit in fits():
        fit()
        rid = mlflow.last_active_run().info.run_id
        exp = mlflow.get_run(rid).info.experiment_id
        out[name] = dump(
            client, rid, lambda r: [f.path for f in client.list_artifacts(r)],
            lambda r: mlflow.search_runs([exp], filter_string=f"tags.mlflow.parentRunId = '{r}'", output_format="list"),
        )
    print(json.dumps(out))
    """
    )
)


@pytest.fixture(autouse=True)
def _no_patches_left() -> Any:
    yield
    patching.revert_all()
    config.reset()


def _evtrack_side() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(FITS + DUMP, namespace)
    evtrack.set_experiment("autolog")
    evtrack.sklearn.autolog(silent=True)
    client = evtrack.MlflowClient()
    out = {}
    for name, fit in namespace["fits"]():
        fit()
        rid = evtrack.last_active_run().info.run_id
        out[name] = namespace["dump"](
            client,
            rid,
            lambda r: [f.path for f in client.list_artifacts(r)],
            lambda r: evtrack.search_runs(filter_string=f"tags.mlflow.parentRunId = '{r}'", output_format="list"),
        )
    return out


@pytest.fixture(scope="module")
def mlflow_logged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    proc = subprocess.run(
        [sys.executable, "-c", MLFLOW_SIDE, f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=db.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_fits_log_what_mlflow_logs(tracking_uri: str, mlflow_logged: dict[str, Any]) -> None:
    ours = _evtrack_side()
    post = {"mean_squared_error_X_test", "mean_squared_error-2_X_test", "r2_score_X_test", "Lasso_score_X_test"}
    assert post <= set(mlflow_logged["post_training"]["metrics"])  # the comparison below covers them
    assert "metric_info.json" in mlflow_logged["post_training"]["artifacts"]
    for name, theirs in mlflow_logged.items():
        mine = ours[name]
        assert mine["params"] == theirs["params"], name
        assert mine["tags"] == theirs["tags"], name
        assert mine["status"] == theirs["status"] == "FINISHED"
        assert sorted(mine["metrics"]) == sorted(theirs["metrics"]), name
        for key, value in theirs["metrics"].items():
            assert math.isclose(mine["metrics"][key], value, rel_tol=1e-9, abs_tol=1e-12), (name, key)
        # MLflow 3 stores logged models outside the run's artifacts; evtrack keeps them under model/
        assert set(mine["artifacts"]) - {"model", "best_estimator", "evtrack"} == set(theirs["artifacts"]), name
        assert "model" in mine["artifacts"]
        assert len(mine["children"]) == len(theirs["children"]), name
        for kid, their_kid in zip(mine["children"], theirs["children"]):
            assert kid["params"] == their_kid["params"]
            assert kid["metrics"] == their_kid["metrics"]
            assert kid["tags"] == their_kid["tags"]
            assert kid["status"] == their_kid["status"] == "FINISHED"


def test_grid_search_parent_has_best_params_and_children_nested(tracking_uri: str) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Lasso
    from sklearn.model_selection import GridSearchCV

    X, y = load_diabetes(return_X_y=True)
    evtrack.sklearn.autolog(max_tuning_runs=2)
    search = GridSearchCV(Lasso(), {"alpha": [0.01, 0.1, 1.0]}, cv=3).fit(X, y)
    parent = evtrack.get_run(evtrack.last_active_run().info.run_id)
    assert parent.data.params["best_alpha"] == str(search.best_params_["alpha"])
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    kids = evtrack.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list")
    assert len(kids) == 2  # the two best of three candidates
    assert str(search.best_params_["alpha"]) in {k.data.params["alpha"] for k in kids}
    assert evtrack.get_parent_run(kids[0].info.run_id).info.run_id == parent.info.run_id


def test_the_model_loads_back_with_a_signature(tracking_uri: str) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    evtrack.sklearn.autolog(log_input_examples=True)
    clf = LogisticRegression(max_iter=300).fit(X, y)
    rid = evtrack.last_active_run().info.run_id
    loaded = evtrack.sklearn.load_model(f"runs:/{rid}/model")
    assert (loaded.predict(X) == clf.predict(X)).all()
    info = evtrack.models.get_model_info(f"runs:/{rid}/model")
    assert info.signature is not None and info.saved_input_example_info is not None


def test_disable_and_log_models_false(tracking_uri: str) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Lasso

    X, y = load_diabetes(return_X_y=True)
    evtrack.sklearn.autolog(log_models=False)
    Lasso().fit(X, y)
    rid = evtrack.last_active_run().info.run_id
    assert "model" not in {f.path for f in evtrack.MlflowClient().list_artifacts(rid)}
    evtrack.sklearn.autolog(disable=True)
    assert patching.patched_attributes("sklearn") == 0
    Lasso().fit(X, y)
    assert evtrack.last_active_run().info.run_id == rid  # no new run
    assert len(evtrack.search_runs(output_format="list")) == 1


def test_a_user_run_gets_the_fit_and_stays_open(tracking_uri: str) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Lasso

    X, y = load_diabetes(return_X_y=True)
    evtrack.sklearn.autolog()
    with evtrack.start_run() as run:
        Lasso(alpha=0.5).fit(X, y)
        assert evtrack.active_run().info.run_id == run.info.run_id
    logged = evtrack.get_run(run.info.run_id)
    assert logged.data.params["alpha"] == "0.5"
    assert "mlflow.autologging" not in logged.data.tags  # the user's run, not autologging's
    evtrack.sklearn.autolog(exclusive=True)
    with evtrack.start_run() as other:
        Lasso(alpha=0.7).fit(X, y)
    assert "alpha" not in evtrack.get_run(other.info.run_id).data.params


def test_a_failing_fit_raises_and_its_run_fails(tracking_uri: str) -> None:
    from sklearn.linear_model import Lasso

    evtrack.sklearn.autolog()
    with pytest.raises(ValueError):
        Lasso().fit([[1.0], [2.0]], [1.0])  # inconsistent numbers of samples
    run = evtrack.get_run(evtrack.last_active_run().info.run_id)
    assert run.info.status == "FAILED"
    assert evtrack.active_run() is None


def test_silent_hides_autologging_warnings(tracking_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    from sklearn.cluster import KMeans

    X = [[0.0, 1.0], [1.0, 0.0], [5.0, 5.0], [6.0, 5.0]]
    evtrack.sklearn.autolog()
    with caplog.at_level(logging.WARNING, logger="evtrack"):
        KMeans(n_clusters=2, n_init=2).fit(X)  # no labels: the "training metrics will not be recorded" warning
    assert any("training labels were not specified" in r.getMessage() for r in caplog.records)
    caplog.clear()
    evtrack.sklearn.autolog(silent=True)
    with caplog.at_level(logging.WARNING, logger="evtrack"):
        KMeans(n_clusters=2, n_init=2).fit(X)
    assert not [r for r in caplog.records if r.name.startswith("evtrack")]


def test_patching_keeps_hasattr_and_cross_validation_logs_nothing(tracking_uri: str) -> None:
    from sklearn.datasets import load_iris
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    evtrack.sklearn.autolog()
    assert not hasattr(SVC(), "predict_proba")
    assert hasattr(SVC(probability=True), "predict_proba")
    X, y = load_iris(return_X_y=True)
    cross_val_score(SVC(), X, y, cv=3)
    assert evtrack.search_runs(output_format="list") == []


def test_universal_autolog_turns_on_sklearn_when_imported_later(tmp_path: Any) -> None:
    script = textwrap.dedent(
        """
        import sys, evtrack
        evtrack.set_tracking_uri(sys.argv[1])
        evtrack.autolog()
        assert "sklearn" not in sys.modules  # autolog() does not import scikit-learn itself
        from sklearn.linear_model import Lasso
        Lasso().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
        run = evtrack.get_run(evtrack.last_active_run().info.run_id)
        print(run.data.tags["mlflow.autologging"], run.data.tags["estimator_name"], "training_score" in run.data.metrics)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "store")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["sklearn", "Lasso", "True"]


def test_bad_arguments_are_refused(tracking_uri: str) -> None:
    with pytest.raises(evtrack.InvalidParameterError, match="max_tuning_runs"):
        evtrack.sklearn.autolog(max_tuning_runs=-1)
