"""Models: the MLmodel directory format, signature inference, requirements, and sklearn round trips.

A scikit-learn model is trained, saved or logged, and loaded back by every URI
form (path, ``file://``, ``runs:/``, ``models:/`` by version, alias, stage and
``latest``, on a local and an S3 store); its predictions must not change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import evtrack
from evtrack.errors import InvalidParameterError, InvalidUriError, ResourceAlreadyExistsError
from evtrack.models import ColSpec, Model, ModelSignature, ParamSchema, ParamSpec, Schema, TensorSpec
from evtrack.models.inference import infer_signature

import evtrack.pyfunc
import evtrack.sklearn

FEATURES = pd.DataFrame({"a": [0.1, 1.5, 2.2, 3.9, 0.3, 2.8], "b": [1, 0, 1, 0, 1, 1]})
LABELS = [0, 1, 1, 1, 0, 1]


@pytest.fixture(scope="module")
def clf() -> Any:
    """A fitted scikit-learn model (the test is skipped when scikit-learn is not installed)."""
    linear_model = pytest.importorskip("sklearn.linear_model", reason="scikit-learn is not installed")
    return linear_model.LogisticRegression().fit(FEATURES, LABELS)


@pytest.fixture
def local(local_uri: str, fresh_evtrack: None, cache_dir: Any) -> str:
    evtrack.set_tracking_uri(local_uri)
    return local_uri


def _mlmodel(path: Path) -> dict[str, Any]:
    return yaml.safe_load((path / "MLmodel").read_text())


# -- the MLmodel directory --------------------------------------------------------------------


def test_saved_directory_has_mlflows_files_and_mlmodel_fields(clf: Any, tmp_path: Path) -> None:
    from importlib.metadata import version

    path = tmp_path / "m"
    evtrack.sklearn.save_model(clf, path, input_example=FEATURES.head(3), metadata={"team": "growth"})

    assert sorted(p.name for p in path.iterdir()) == [
        "MLmodel",
        "conda.yaml",
        "input_example.json",
        "model.pkl",
        "python_env.yaml",
        "requirements.txt",
        "serving_input_example.json",
    ]
    mlmodel = _mlmodel(path)
    assert "run_id" not in mlmodel and "artifact_path" not in mlmodel  # null fields are left out
    assert len(mlmodel["model_uuid"]) == 32 and int(mlmodel["model_uuid"], 16) >= 0
    assert mlmodel["utc_time_created"][:2] == "20" and len(mlmodel["utc_time_created"]) == 26
    assert mlmodel["mlflow_version"] == "3.17.2" and mlmodel["evtrack_version"] == evtrack.__version__
    assert mlmodel["metadata"] == {"team": "growth"}
    assert mlmodel["model_size_bytes"] > 0
    assert mlmodel["flavors"]["sklearn"] == {
        "pickled_model": "model.pkl",
        "serialization_format": "pickle",
        "sklearn_version": version("scikit-learn"),
        "code": None,
    }
    pyfunc = mlmodel["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "evtrack.sklearn" and pyfunc["model_path"] == "model.pkl"
    assert pyfunc["predict_fn"] == "predict" and pyfunc["env"] == {
        "conda": "conda.yaml",
        "virtualenv": "python_env.yaml",
    }
    assert pyfunc["python_version"].count(".") == 2
    assert mlmodel["signature"] == {
        "inputs": '[{"type": "double", "name": "a", "required": true}, '
        '{"type": "long", "name": "b", "required": true}]',
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
        "params": None,
    }
    assert mlmodel["saved_input_example_info"] == {
        "artifact_path": "input_example.json",
        "type": "dataframe",
        "pandas_orient": "split",
        "serving_input_path": "serving_input_example.json",
    }
    assert json.loads((path / "input_example.json").read_text()) == {
        "columns": ["a", "b"],
        "data": [[0.1, 1], [1.5, 0], [2.2, 1]],
    }
    assert json.loads((path / "serving_input_example.json").read_text()) == {
        "dataframe_split": {"columns": ["a", "b"], "data": [[0.1, 1], [1.5, 0], [2.2, 1]]}
    }


def test_environment_files_pin_the_installed_versions(clf: Any, tmp_path: Path) -> None:
    from importlib.metadata import version

    path = tmp_path / "m"
    evtrack.sklearn.save_model(clf, path, serialization_format="cloudpickle", extra_pip_requirements=["requests>=2"])
    reqs = (path / "requirements.txt").read_text().splitlines()
    assert reqs[0] == f"evtrack=={evtrack.__version__}"
    for dist in ("scikit-learn", "numpy", "pandas", "cloudpickle"):
        assert f"{dist}=={version(dist)}" in reqs
    assert reqs[-1] == "requests>=2"
    python_env = yaml.safe_load((path / "python_env.yaml").read_text())
    assert list(python_env) == ["python", "build_dependencies", "dependencies"]
    assert python_env["dependencies"] == ["-r requirements.txt"]
    assert any(d.startswith("pip") for d in python_env["build_dependencies"])
    conda = yaml.safe_load((path / "conda.yaml").read_text())
    assert conda["dependencies"][0] == f"python={python_env['python']}"
    assert conda["dependencies"][-1] == {"pip": reqs}
    assert _mlmodel(path)["flavors"]["sklearn"]["serialization_format"] == "cloudpickle"
    assert (evtrack.sklearn.load_model(path).predict(FEATURES) == clf.predict(FEATURES)).all()


def test_pip_requirements_replace_the_inferred_ones(clf: Any, tmp_path: Path) -> None:
    req_file = tmp_path / "reqs.txt"
    req_file.write_text("# pinned by hand\nscikit-learn\n\nnumpy<3\n")
    evtrack.sklearn.save_model(clf, tmp_path / "m", pip_requirements=str(req_file))
    assert (tmp_path / "m" / "requirements.txt").read_text().splitlines() == ["scikit-learn", "numpy<3"]
    with pytest.raises(InvalidParameterError, match="Only one of"):
        evtrack.sklearn.save_model(clf, tmp_path / "m2", pip_requirements=["a"], extra_pip_requirements=["b"])


def test_save_refuses_a_non_empty_directory_and_bad_options(clf: Any, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    with pytest.raises(ResourceAlreadyExistsError, match="already exists"):
        evtrack.sklearn.save_model(clf, tmp_path / "m")
    with pytest.raises(InvalidParameterError, match="serialization format"):
        evtrack.sklearn.save_model(clf, tmp_path / "m2", serialization_format="skops")
    with pytest.raises(InvalidParameterError, match="pyfunc_predict_fn"):
        evtrack.sklearn.save_model(clf, tmp_path / "m3", pyfunc_predict_fn="fit")


def test_predict_fn_predict_proba_is_served(clf: Any, tmp_path: Path) -> None:
    evtrack.sklearn.save_model(clf, tmp_path / "m", pyfunc_predict_fn="predict_proba", input_example=FEATURES)
    model = evtrack.pyfunc.load_model(tmp_path / "m")
    np.testing.assert_allclose(model.predict(FEATURES), clf.predict_proba(FEATURES))
    assert model.metadata.get_output_schema() == Schema([TensorSpec("float64", (-1, 2))])


def test_mlmodel_round_trips_unknown_keys_and_signatures() -> None:
    sig = ModelSignature(
        Schema(
            [
                ColSpec("double", "x"),
                ColSpec("string", "s", required=False),
                ColSpec({"type": "array", "items": {"type": "long"}}, "arr"),
            ]
        ),
        Schema([TensorSpec("float32", (-1, 3))]),
        ParamSchema([ParamSpec("k", "long", 3), ParamSpec("names", "string", ["a"], (-1,))]),
    )
    d = Model(flavors={"x": {}}, signature=sig, prompts=None, model_id="m-1").to_dict()
    back = Model.from_dict(yaml.safe_load(yaml.safe_dump(d)))
    assert back.signature == sig
    assert back.to_dict() == d
    assert json.loads(d["signature"]["inputs"])[2] == {
        "type": "array",
        "items": {"type": "long"},
        "name": "arr",
        "required": True,
    }


# -- signature inference ----------------------------------------------------------------------


def _inputs(data: Any) -> list[dict[str, Any]]:
    return json.loads(infer_signature(data).to_dict()["inputs"])


@pytest.mark.parametrize(
    "data, expected",
    [
        (
            pd.DataFrame(
                {
                    "i32": np.array([1], dtype="int32"),
                    "i64": [1],
                    "f32": np.array([1.0], dtype="float32"),
                    "f64": [1.0],
                    "s": ["x"],
                    "b": [True],
                    "by": [b"x"],
                    "d": pd.to_datetime(["2024-01-01"]),
                }
            ),
            [
                ("integer", "i32"),
                ("long", "i64"),
                ("float", "f32"),
                ("double", "f64"),
                ("string", "s"),
                ("boolean", "b"),
                ("binary", "by"),
                ("datetime", "d"),
            ],
        ),
        ({"a": [1.0, 2.0], "b": [1, 2]}, [("double", "a"), ("long", "b")]),
        ([{"a": 1.0, "b": "x"}, {"a": 2, "b": "y"}], [("double", "a"), ("string", "b")]),
        ({"a": 1.5, "b": "x"}, [("double", "a"), ("string", "b")]),
    ],
)
def test_column_signatures_from_frames_dicts_and_records(data: Any, expected: list[tuple[str, str]]) -> None:
    assert [(c["type"], c["name"]) for c in _inputs(data)] == expected
    assert all(c["required"] for c in _inputs(data))


def test_missing_values_make_a_column_optional_and_arrays_give_tensors() -> None:
    assert _inputs(pd.DataFrame({"a": [1.0, None]})) == [{"type": "double", "name": "a", "required": False}]
    assert _inputs(np.zeros((4, 3, 2), dtype="float32")) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3, 2]}}
    ]
    assert _inputs({"x": np.zeros((2, 5)), "y": np.arange(2)}) == [
        {"name": "x", "type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 5]}},
        {"name": "y", "type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}},
    ]
    sig = infer_signature(FEATURES, pd.Series([1, 0], name="label"), params={"alpha": 0.5, "k": 3})
    assert json.loads(sig.to_dict()["outputs"]) == [{"type": "long", "name": "label", "required": True}]
    assert json.loads(sig.to_dict()["params"]) == [
        {"name": "alpha", "default": 0.5, "shape": None, "type": "double"},
        {"name": "k", "default": 3, "shape": None, "type": "long"},
    ]


def test_inference_failure_saves_without_signature(clf: Any, tmp_path: Path, caplog: Any) -> None:
    evtrack.sklearn.save_model(clf, tmp_path / "m", input_example={"a": [1.0], "b": [[1, 2]]})
    assert "signature" not in _mlmodel(tmp_path / "m")
    assert "Failed to infer the model signature" in caplog.text


@pytest.mark.parametrize(
    "example",
    [FEATURES.to_numpy(), {"a": [0.1, 1.5], "b": [1, 0]}, [{"a": 0.1, "b": 1}, {"a": 1.5, "b": 0}]],
    ids=["ndarray", "dict-of-lists", "list-of-dicts"],
)
def test_saved_examples_load_back_and_feed_the_model(clf: Any, tmp_path: Path, example: Any) -> None:
    evtrack.sklearn.save_model(clf, tmp_path / "m", input_example=example)
    model = evtrack.pyfunc.load_model(tmp_path / "m")
    loaded = model.input_example
    if isinstance(example, np.ndarray):
        np.testing.assert_array_equal(loaded, example)
        assert _mlmodel(tmp_path / "m")["saved_input_example_info"]["type"] == "ndarray"
    else:
        assert loaded == example
        assert _mlmodel(tmp_path / "m")["saved_input_example_info"]["type"] == "json_object"
    assert len(model.predict(loaded)) == len(FEATURES if isinstance(example, np.ndarray) else loaded)


# -- logging to runs and loading by URI -------------------------------------------------------


def test_log_model_round_trip_by_every_uri_form(clf: Any, local: str, tmp_path: Path) -> None:
    with evtrack.start_run() as run:
        info = evtrack.sklearn.log_model(clf, name="clf", input_example=FEATURES.head(2), registered_model_name="churn")
    rid = run.info.run_id
    assert info.model_uri == f"runs:/{rid}/clf" and info.run_id == rid and info.artifact_path == "clf"
    assert info.registered_model_version == 1 and set(info.flavors) == {"python_function", "sklearn"}
    assert info.signature.inputs.input_names() == ["a", "b"]
    client = evtrack.MlflowClient()
    second = evtrack.sklearn.log_model(clf, name="clf2", run_id=rid, registered_model_name="churn")
    assert second.registered_model_version == 2
    client.set_registered_model_alias("churn", "champion", 1)
    client.transition_model_version_stage("churn", 1, "Production")

    expected = clf.predict(FEATURES)
    local_dir = evtrack.pyfunc.load_model(info.model_uri).model_dir
    uris = [
        info.model_uri,
        str(local_dir),
        f"file://{local_dir}",
        "models:/churn/1",
        "models:/churn@champion",
        "models:/churn/Production",
        "models:/churn/production",
        "models:/churn/latest",
    ]
    for uri in uris:
        assert (evtrack.pyfunc.load_model(uri).predict(FEATURES) == expected).all(), uri
        assert (evtrack.sklearn.load_model(uri).predict(FEATURES) == expected).all(), uri
    assert evtrack.pyfunc.load_model("models:/churn/latest").metadata.artifact_path == "clf2"
    copied = evtrack.sklearn.load_model("models:/churn/1", dst_path=tmp_path / "copy")
    assert (copied.predict(FEATURES) == expected).all() and (tmp_path / "copy" / "clf" / "MLmodel").is_file()

    mlmodel = _mlmodel(local_dir)
    assert mlmodel["run_id"] == rid and mlmodel["artifact_path"] == "clf"
    assert mlmodel["model_uuid"] == info.model_uuid


def test_log_model_records_history_searchable_by_tag(clf: Any, local: str) -> None:
    with evtrack.start_run() as with_model:
        evtrack.sklearn.log_model(clf, "model")
        evtrack.pyfunc.log_model("doubler", python_model=lambda df: df * 2)
    with evtrack.start_run():
        evtrack.log_param("p", 1)
    history = json.loads(evtrack.get_run(with_model.info.run_id).data.tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["model", "doubler"]
    assert set(history[0]) == {"run_id", "artifact_path", "utc_time_created", "model_uuid", "flavors"}
    assert set(history[0]["flavors"]) == {"python_function", "sklearn"}
    found = evtrack.search_runs(filter_string="tags.mlflow.log-model.history LIKE '%sklearn%'", output_format="list")
    assert [r.info.run_id for r in found] == [with_model.info.run_id]
    files = {f.path for f in evtrack.MlflowClient().list_artifacts(with_model.info.run_id, "model")}
    assert "model/MLmodel" in files and "model/model.pkl" in files


def test_log_model_argument_checks(clf: Any, local: str) -> None:
    with evtrack.start_run():
        with pytest.raises(InvalidParameterError, match="only one of them"):
            evtrack.sklearn.log_model(clf, "a", name="b")
        with pytest.raises(InvalidParameterError):
            evtrack.sklearn.log_model(clf, name="../escape")


def test_bad_model_uris_are_refused(local: str) -> None:
    for uri in ("models:/", "models:/a/b/c", "models:/@alias", "runs:/"):
        with pytest.raises(InvalidUriError):
            evtrack.pyfunc.load_model(uri)


def test_runs_uri_round_trip_on_both_stores(clf: Any, tracking_uri: str, cache_dir: Any) -> None:
    with evtrack.start_run():
        info = evtrack.sklearn.log_model(clf, name="model", input_example=FEATURES.head(2))
    model = evtrack.pyfunc.load_model(info.model_uri)
    assert (model.predict(FEATURES) == clf.predict(FEATURES)).all()
    assert model.metadata.model_uuid == info.model_uuid


# -- MLflow interoperability ------------------------------------------------------------------


def test_mlflow_reads_evtrack_models_and_evtrack_reads_mlflow_models(clf: Any, tmp_path: Path) -> None:
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn", reason="mlflow is not installed")
    import mlflow.pyfunc

    evtrack.sklearn.save_model(clf, tmp_path / "ours", input_example=FEATURES.head(2))
    assert (mlflow_sklearn.load_model(str(tmp_path / "ours")).predict(FEATURES) == clf.predict(FEATURES)).all()
    theirs_pyfunc = mlflow.pyfunc.load_model(str(tmp_path / "ours"))
    assert (theirs_pyfunc.predict(FEATURES) == clf.predict(FEATURES)).all()
    assert str(theirs_pyfunc.metadata.get_input_schema().input_names()) == "['a', 'b']"

    mlflow_sklearn.save_model(
        clf,
        str(tmp_path / "theirs"),
        serialization_format="cloudpickle",
        input_example=FEATURES.head(2),
        pip_requirements=["scikit-learn"],
    )  # skips MLflow's slow requirement capture
    model = evtrack.pyfunc.load_model(tmp_path / "theirs")
    assert (model.predict(FEATURES) == clf.predict(FEATURES)).all()
    assert model.metadata.get_input_schema().input_names() == ["a", "b"]
    assert (evtrack.sklearn.load_model(tmp_path / "theirs").predict(FEATURES) == clf.predict(FEATURES)).all()


def test_importing_evtrack_and_the_model_modules_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, evtrack, evtrack.models, evtrack.pyfunc, evtrack.sklearn, evtrack.cli.serve_cmds; "
        "print(sorted(m for m in ('numpy', 'pandas', 'sklearn', 'yaml', 'starlette', 'uvicorn', "
        "'cloudpickle') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
