"""``evtrack.pyfunc``: the generic ``python_function`` flavor, as ``mlflow.pyfunc``.

Save any model as a directory that every evtrack (and MLflow) tool can load and
serve: a ``PythonModel`` subclass, any object with ``predict``, a function, or
(``loader_module`` + ``data_path``) files with a module that knows how to load
them. ``load_model`` loads any model with a ``python_function`` flavor (a
scikit-learn model too) from a path, ``runs:/``, ``models:/`` or ``s3://`` URI.

Example::

    class AddN(evtrack.pyfunc.PythonModel):
        def __init__(self, n):
            self.n = n

        def predict(self, context, model_input, params=None):
            return model_input + self.n

    with evtrack.start_run():
        info = evtrack.pyfunc.log_model(name="add_n", python_model=AddN(5),
                                        input_example=pd.DataFrame({"x": [1.0]}))
    evtrack.pyfunc.load_model(info.model_uri).predict(pd.DataFrame({"x": [2.0]}))
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.models import saving
from evtrack.models.model import Model, ModelInfo
from evtrack.models.signature import ModelSignature
from evtrack.pyfunc import log_to_run
from evtrack.pyfunc.model import PythonModel, PythonModelContext, save_python_model
from evtrack.pyfunc.pyfunc_model import FLAVOR_NAME, PyFuncModel, add_pyfunc_flavor, load_from_dir

__all__ = [
    "FLAVOR_NAME",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "add_to_model",
    "get_model_dependencies",
    "load_model",
    "log_model",
    "save_model",
]

_FLAVOR_PACKAGES = ("cloudpickle", "numpy", "pandas")


def add_to_model(model: Model, loader_module: str, data: str | None = None, **kwargs: Any) -> Model:
    """Add the ``python_function`` flavor to a ``Model`` (for flavor authors), as MLflow's."""
    return add_pyfunc_flavor(model, loader_module, data, **kwargs)


def save_model(
    path: str | os.PathLike,
    loader_module: str | None = None,
    data_path: str | os.PathLike | None = None,
    *,
    python_model: Any = None,
    artifacts: dict[str, Any] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
) -> Model:
    """Save a custom model as a directory at ``path``; returns its ``Model`` (the MLmodel content).

    Give either ``python_model`` (with optional ``artifacts``: name → path or URI) or
    ``loader_module`` (a module with ``_load_pyfunc(data_path)``) with ``data_path``.
    The positional order after ``path`` is MLflow's (``loader_module``, ``data_path``).
    """
    if (python_model is None) == (loader_module is None):
        raise InvalidParameterError("Pass exactly one of python_model and loader_module")
    if artifacts and python_model is None:
        raise InvalidParameterError("artifacts go with python_model, not with loader_module")
    path = saving.new_model_dir(path)
    model = mlflow_model if mlflow_model is not None else Model()
    if python_model is not None:
        modules = save_python_model(path, model, python_model, artifacts, model_config)
        predict = _predict_for_inference(path, model, python_model, model_config)
    else:
        modules = {loader_module.split(".")[0]}
        data = None
        if data_path is not None:
            src = Path(data_path)
            data = src.name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, path / data)
        add_pyfunc_flavor(model, loader_module, data)
        predict = None
    saving.save_example_and_signature(path, model, input_example, signature, predict)
    return saving.finish(path, model, modules, _FLAVOR_PACKAGES, pip_requirements, extra_pip_requirements, metadata)


def _predict_for_inference(path: Path, model: Model, python_model: Any, model_config: dict[str, Any] | None):
    """``predict(data, params)`` of the model being saved, with its context pointing at the copies."""

    def predict(data: Any, params: dict[str, Any] | None) -> Any:
        from evtrack.pyfunc.model import PythonModelPyfunc, load_context

        context = load_context(path, model.flavor(FLAVOR_NAME), model_config)
        if hasattr(python_model, "load_context"):
            python_model.load_context(context)
        return PythonModelPyfunc(python_model, context).predict(data, params)

    return predict


def log_model(
    artifact_path: str | None = None,
    loader_module: str | None = None,
    data_path: str | os.PathLike | None = None,
    *,
    python_model: Any = None,
    name: str | None = None,
    artifacts: dict[str, Any] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    await_registration_for: int | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Save a custom model into the active run's artifacts (``name``, default ``model``); returns ``ModelInfo``."""
    return log_to_run.log_model(
        save_model,
        artifact_path=artifact_path,
        name=name,
        registered_model_name=registered_model_name,
        run_id=run_id,
        await_registration_for=await_registration_for,
        python_model=python_model,
        artifacts=artifacts,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        model_config=model_config,
        loader_module=loader_module,
        data_path=data_path,
    )


def load_model(
    model_uri: str | os.PathLike,
    suppress_warnings: bool = False,
    dst_path: str | os.PathLike | None = None,
    model_config: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> PyFuncModel:
    """Load a model with a ``python_function`` flavor from a path, ``runs:/``, ``models:/`` or store URI."""
    from evtrack.models.uri import download_model

    local = download_model(model_uri, dst_path, tracking_uri)
    return load_from_dir(local, model_config, suppress_warnings)


def get_model_dependencies(model_uri: str | os.PathLike, tracking_uri: str | None = None) -> str:
    """The local path of the model's ``requirements.txt`` (``pip install -r`` it to serve the model)."""
    from evtrack.models.uri import download_model

    path = download_model(model_uri, tracking_uri=tracking_uri) / "requirements.txt"
    if not path.is_file():
        raise InvalidParameterError(f"The model at {model_uri} has no requirements.txt")
    return str(path)
