"""The python_function flavor: custom models with artifacts, any object with predict, and schema enforcement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import evtrack
import evtrack.pyfunc
from evtrack.errors import InvalidParameterError
from evtrack.models import ColSpec, ModelSignature, ParamSchema, ParamSpec, Schema, SchemaEnforcementError, TensorSpec
from evtrack.models.enforcement import enforce_schema


class Vocabulary(evtrack.pyfunc.PythonModel):
    """Maps words to their index in a vocabulary file given as an artifact."""

    def load_context(self, context: evtrack.pyfunc.PythonModelContext) -> None:
        self.words = Path(context.artifacts["vocab"]).read_text().split()
        self.offset = context.model_config.get("offset", 0)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        scale = (params or {}).get("scale", 1)
        return np.array([(self.words.index(w) + self.offset) * scale for w in model_input["word"]])


class WithoutContext(evtrack.pyfunc.PythonModel):
    def predict(self, model_input: Any) -> Any:
        return model_input["x"] + 1


class HasPredict:
    """Not a PythonModel: any object with a predict method will do."""

    def predict(self, data: Any) -> Any:
        return np.asarray(data).sum(axis=1)


@pytest.fixture
def local(local_uri: str, fresh_evtrack: None, cache_dir: Any) -> str:
    evtrack.set_tracking_uri(local_uri)
    return local_uri


@pytest.fixture
def vocab_file(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("apple banana cherry")
    return path


def test_python_model_with_artifacts_and_config(tmp_path: Path, vocab_file: Path) -> None:
    path = tmp_path / "m"
    evtrack.pyfunc.save_model(
        path,
        python_model=Vocabulary(),
        artifacts={"vocab": str(vocab_file)},
        model_config={"offset": 10},
        input_example=pd.DataFrame({"word": ["banana"]}),
    )
    vocab_file.unlink()  # the model carries its own copy
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    conf = mlmodel["flavors"]["python_function"]
    assert conf["loader_module"] == "evtrack.pyfunc.model" and conf["python_model"] == "python_model.pkl"
    assert conf["artifacts"] == {"vocab": {"path": "artifacts/vocab.txt", "uri": str(vocab_file)}}
    assert conf["config"] == {"offset": 10} and conf["cloudpickle_version"]
    assert (path / "artifacts" / "vocab.txt").read_text() == "apple banana cherry"
    assert json.loads(mlmodel["signature"]["inputs"]) == [{"type": "string", "name": "word", "required": True}]
    assert json.loads(mlmodel["signature"]["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}
    ]

    model = evtrack.pyfunc.load_model(path)
    assert model.predict(pd.DataFrame({"word": ["cherry", "apple"]})).tolist() == [12, 10]
    assert isinstance(model.unwrap_python_model(), Vocabulary)
    overridden = evtrack.pyfunc.load_model(path, model_config={"offset": 0})
    assert overridden.predict(pd.DataFrame({"word": ["cherry"]})).tolist() == [2]


def test_params_from_the_signature_reach_predict(tmp_path: Path, vocab_file: Path) -> None:
    example = (pd.DataFrame({"word": ["apple"]}), {"scale": 2})
    evtrack.pyfunc.save_model(
        tmp_path / "m", python_model=Vocabulary(), artifacts={"vocab": str(vocab_file)}, input_example=example
    )
    model = evtrack.pyfunc.load_model(tmp_path / "m")
    assert model.metadata.get_params_schema() == ParamSchema([ParamSpec("scale", "long", 2)])
    words = pd.DataFrame({"word": ["banana"]})
    assert model.predict(words).tolist() == [2]  # the default from the signature
    assert model.predict(words, params={"scale": 5}).tolist() == [5]
    with pytest.raises(SchemaEnforcementError, match="param 'scale'"):
        model.predict(words, params={"scale": "big"})
    served = json.loads((tmp_path / "m" / "serving_input_example.json").read_text())
    assert served == {"dataframe_split": {"columns": ["word"], "data": [["apple"]]}, "params": {"scale": 2}}


def test_any_object_with_predict_and_plain_functions(tmp_path: Path) -> None:
    evtrack.pyfunc.save_model(tmp_path / "obj", python_model=HasPredict(), input_example=np.ones((2, 3)))
    model = evtrack.pyfunc.load_model(tmp_path / "obj")
    assert model.predict(np.ones((4, 3))).tolist() == [3.0] * 4
    assert model.metadata.get_input_schema() == Schema([TensorSpec("float64", (-1, 3))])

    evtrack.pyfunc.save_model(
        tmp_path / "fn", python_model=lambda df: df["x"] * 2, input_example=pd.DataFrame({"x": [1, 2]})
    )
    assert evtrack.pyfunc.load_model(tmp_path / "fn").predict(pd.DataFrame({"x": [5]})).tolist() == [10]

    evtrack.pyfunc.save_model(tmp_path / "nc", python_model=WithoutContext())
    assert evtrack.pyfunc.load_model(tmp_path / "nc").predict(pd.DataFrame({"x": [1]})).tolist() == [2]

    with pytest.raises(InvalidParameterError, match="predict"):
        evtrack.pyfunc.save_model(tmp_path / "bad", python_model=object())
    with pytest.raises(InvalidParameterError, match="exactly one"):
        evtrack.pyfunc.save_model(tmp_path / "none")


def test_requirements_follow_what_the_model_pickles(tmp_path: Path) -> None:
    from importlib.metadata import version

    evtrack.pyfunc.save_model(tmp_path / "m", python_model=HasPredict())
    reqs = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert reqs[0] == f"evtrack=={evtrack.__version__}"
    assert {
        f"cloudpickle=={version('cloudpickle')}",
        f"numpy=={version('numpy')}",
        f"pandas=={version('pandas')}",
    } <= set(reqs)
    assert not any(r.startswith(("pytest", "PyYAML")) for r in reqs)


def test_loader_module_with_data_path(tmp_path: Path) -> None:
    data = tmp_path / "weights.json"
    data.write_text("[1, 2, 3]")
    evtrack.pyfunc.save_model(tmp_path / "m", loader_module="json", data_path=data)
    conf = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["flavors"]["python_function"]
    assert conf["loader_module"] == "json" and conf["data"] == "weights.json"
    assert (tmp_path / "m" / "weights.json").read_text() == "[1, 2, 3]"


def test_log_python_model_with_run_artifact_and_load_by_runs_uri(local: str, vocab_file: Path) -> None:
    with evtrack.start_run() as run:
        evtrack.log_artifact(str(vocab_file), "inputs")
        info = evtrack.pyfunc.log_model(
            name="vocab", python_model=Vocabulary(), artifacts={"vocab": f"runs:/{run.info.run_id}/inputs/vocab.txt"}
        )
    vocab_file.unlink()
    model = evtrack.pyfunc.load_model(info.model_uri)
    assert model.predict(pd.DataFrame({"word": ["cherry"]})).tolist() == [2]
    assert model.metadata.run_id == run.info.run_id
    assert info.flavors["python_function"]["artifacts"]["vocab"]["path"] == "artifacts/vocab.txt"


# -- schema enforcement -----------------------------------------------------------------------

COLUMNS = Schema(
    [ColSpec("double", "a"), ColSpec("long", "b"), ColSpec("string", "s"), ColSpec("float", "f", required=False)]
)


def test_missing_columns_are_named() -> None:
    with pytest.raises(SchemaEnforcementError, match=r"missing input column 'b' required by its signature"):
        enforce_schema(pd.DataFrame({"a": [1.0], "s": ["x"]}), COLUMNS)
    with pytest.raises(SchemaEnforcementError, match=r"missing input columns 'a', 'b'"):
        enforce_schema(pd.DataFrame({"s": ["x"]}), COLUMNS)


def test_safe_conversions_extra_columns_and_order() -> None:
    df = pd.DataFrame(
        {
            "s": ["x", "y"],
            "zzz": [0, 0],
            "b": np.array([1, 2], dtype="int32"),
            "a": np.array([1, 2], dtype="int64"),
            "f": np.array([0.5, 1], dtype="float32"),
        }
    )
    out = enforce_schema(df, COLUMNS)
    assert list(out.columns) == ["a", "b", "s", "f"]
    assert [str(t) for t in out.dtypes[:2]] == ["float64", "int64"] and out["f"].dtype == np.float32
    assert enforce_schema({"a": 1.0, "b": 2, "s": "x"}, COLUMNS).shape == (1, 3)
    assert enforce_schema([{"a": 1.0, "b": 2, "s": "x"}] * 3, COLUMNS).shape == (3, 3)
    dates = enforce_schema(pd.DataFrame({"d": ["2024-01-02"]}), Schema([ColSpec("datetime", "d")]))
    assert dates["d"].dtype.kind == "M"


@pytest.mark.parametrize(
    "column, values, message",
    [
        ("b", [1.5, 2.0], "column 'b': cannot safely convert float64 to long"),
        ("a", ["1.0", "x"], "column 'a'"),
        ("b", [1.0, None], "missing values"),
        ("f", [1e300, 1.0], "column 'f': cannot safely convert float64 to float"),
    ],
)
def test_unsafe_conversions_name_the_column(column: str, values: list[Any], message: str) -> None:
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2], "s": ["x", "y"]})
    df[column] = values
    with pytest.raises(SchemaEnforcementError, match=message):
        enforce_schema(df, COLUMNS)


def test_tensor_shape_and_dtype_checks() -> None:
    schema = Schema([TensorSpec("float32", (-1, 3))])
    assert enforce_schema(np.ones((2, 3), dtype="int8"), schema).dtype == np.float32  # safe cast
    assert enforce_schema([[1, 2, 3]], schema).shape == (1, 3)
    with pytest.raises(SchemaEnforcementError, match=r"Shape of input \(2, 4\) does not match"):
        enforce_schema(np.ones((2, 4), dtype="float32"), schema)
    with pytest.raises(SchemaEnforcementError, match="dtype of input float64 does not match"):
        enforce_schema(np.ones((2, 3)), schema)
    named = Schema([TensorSpec("int64", (-1,), "x"), TensorSpec("int64", (-1,), "y")])
    with pytest.raises(SchemaEnforcementError, match=r"missing inputs \['y'\]"):
        enforce_schema({"x": np.arange(3)}, named)


def test_predict_enforces_the_saved_signature(tmp_path: Path) -> None:
    sig = ModelSignature(Schema([ColSpec("double", "x")]))
    evtrack.pyfunc.save_model(tmp_path / "m", python_model=lambda df: df["x"] * 2, signature=sig)
    model = evtrack.pyfunc.load_model(tmp_path / "m")
    assert model.predict(pd.DataFrame({"x": [1, 2], "other": ["dropped", "too"]})).tolist() == [2.0, 4.0]
    with pytest.raises(SchemaEnforcementError, match="'x'"):
        model.predict(pd.DataFrame({"y": [1.0]}))


def test_loads_a_python_model_saved_by_mlflow(tmp_path: Path, vocab_file: Path) -> None:
    mlflow_pyfunc = pytest.importorskip("mlflow.pyfunc", reason="mlflow is not installed")

    class Prefix(mlflow_pyfunc.PythonModel):
        def load_context(self, context: Any) -> None:
            self.first = Path(context.artifacts["vocab"]).read_text().split()[0]

        def predict(self, ctx: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
            return [f"{self.first}-{x}" for x in model_input["x"]]

    mlflow_pyfunc.save_model(
        str(tmp_path / "m"),
        python_model=Prefix(),
        artifacts={"vocab": str(vocab_file)},
        input_example=pd.DataFrame({"x": [1]}),
        pip_requirements=["pandas"],
    )
    model = evtrack.pyfunc.load_model(tmp_path / "m", suppress_warnings=True)
    assert model.predict(pd.DataFrame({"x": [7, 8]})) == ["apple-7", "apple-8"]
    with pytest.raises(SchemaEnforcementError, match="'x'"):
        model.predict(pd.DataFrame({"y": [1]}))
