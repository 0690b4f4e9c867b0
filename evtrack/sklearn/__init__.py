"""``evtrack.sklearn``: the scikit-learn flavor, as ``mlflow.sklearn``.

A saved model directory holds ``model.pkl`` (pickle by default, or cloudpickle)
and an ``MLmodel`` with two flavors: ``sklearn`` (``pickled_model``,
``serialization_format``, ``sklearn_version``) to get the estimator back, and
``python_function`` (``loader_module: evtrack.sklearn``, ``predict_fn``) to
serve it. The keys are MLflow's, so ``mlflow.sklearn.load_model`` reads these
directories and ``evtrack.sklearn.load_model`` reads MLflow's pickled ones.

Example::

    with evtrack.start_run():
        info = evtrack.sklearn.log_model(clf, name="model", input_example=X[:5],
                                         registered_model_name="iris")
    clf2 = evtrack.sklearn.load_model("models:/iris/1")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.models import saving, serialization
from evtrack.models.model import Model, ModelInfo
from evtrack.models.signature import ModelSignature
from evtrack.pyfunc import log_to_run
from evtrack.sklearn.autologging import autolog

__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SUPPORTED_SERIALIZATION_FORMATS",
    "autolog",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "sklearn"
SERIALIZATION_FORMAT_PICKLE = serialization.PICKLE
SERIALIZATION_FORMAT_CLOUDPICKLE = serialization.CLOUDPICKLE
SUPPORTED_SERIALIZATION_FORMATS = serialization.FORMATS
MODEL_FILE = "model.pkl"
_FLAVOR_PACKAGES = ("scikit-learn", "numpy", "pandas")
_PREDICT_FNS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "predict_joint_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)


def _sklearn_version() -> str:
    try:
        import sklearn
    except ImportError:
        raise InvalidParameterError("evtrack.sklearn needs scikit-learn: pip install scikit-learn") from None
    return sklearn.__version__


def save_model(
    sk_model: Any,
    path: str | os.PathLike,
    serialization_format: str = SERIALIZATION_FORMAT_PICKLE,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
) -> Model:
    """Save a scikit-learn model as a model directory at ``path``; returns its ``Model``.

    The signature is inferred from ``input_example`` and the model's
    ``pyfunc_predict_fn`` output on it when not given.
    """
    version = _sklearn_version()
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidParameterError(
            f"Unrecognized serialization format: {serialization_format!r}. Please specify one of the "
            f"following supported formats: {list(SUPPORTED_SERIALIZATION_FORMATS)}."
        )
    if pyfunc_predict_fn not in _PREDICT_FNS or not callable(getattr(sk_model, pyfunc_predict_fn, None)):
        raise InvalidParameterError(
            f"pyfunc_predict_fn={pyfunc_predict_fn!r} is not a method of this model "
            f"(expected one of {list(_PREDICT_FNS)})"
        )
    path = saving.new_model_dir(path)
    model = mlflow_model if mlflow_model is not None else Model()

    def predict(data: Any, params: dict[str, Any] | None) -> Any:
        return getattr(sk_model, pyfunc_predict_fn)(data)

    saving.save_example_and_signature(path, model, input_example, signature, predict)
    modules = serialization.dump(sk_model, str(path / MODEL_FILE), serialization_format)
    from evtrack.pyfunc.pyfunc_model import add_pyfunc_flavor

    add_pyfunc_flavor(model, "evtrack.sklearn", model_path=MODEL_FILE, predict_fn=pyfunc_predict_fn)
    model.add_flavor(
        FLAVOR_NAME,
        pickled_model=MODEL_FILE,
        sklearn_version=version,
        serialization_format=serialization_format,
        code=None,
    )
    return saving.finish(path, model, modules, _FLAVOR_PACKAGES, pip_requirements, extra_pip_requirements, metadata)


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    serialization_format: str = SERIALIZATION_FORMAT_PICKLE,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    await_registration_for: int | None = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Save a scikit-learn model into the active run's artifacts (``name``, default ``model``).

    Records it in the run's ``mlflow.log-model.history`` tag, registers it when
    ``registered_model_name`` is given, and returns a ``ModelInfo``.
    """
    return log_to_run.log_model(
        save_model,
        artifact_path=artifact_path,
        name=name,
        registered_model_name=registered_model_name,
        run_id=run_id,
        await_registration_for=await_registration_for,
        sk_model=sk_model,
        serialization_format=serialization_format,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        pyfunc_predict_fn=pyfunc_predict_fn,
        metadata=metadata,
    )


def _load_from_dir(model_dir: Path) -> Any:
    conf = Model.load(model_dir).flavor(FLAVOR_NAME)
    fmt = conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE)
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidParameterError(
            f"This model was saved in the {fmt!r} format, which evtrack cannot load "
            f"(it loads {list(SUPPORTED_SERIALIZATION_FORMATS)})"
        )
    return serialization.load(str(model_dir / conf.get("pickled_model", MODEL_FILE)), fmt)


def load_model(
    model_uri: str | os.PathLike, dst_path: str | os.PathLike | None = None, tracking_uri: str | None = None
) -> Any:
    """The scikit-learn estimator saved at a path, ``runs:/``, ``models:/`` or store URI."""
    from evtrack.models.uri import download_model

    return _load_from_dir(download_model(model_uri, dst_path, tracking_uri))


class _SklearnPyfunc:
    """The ``python_function`` face of an estimator: each predict-like method takes ``params``."""

    def __init__(self, sklearn_model: Any) -> None:
        self.sklearn_model = sklearn_model

    def __getattr__(self, name: str) -> Any:
        if name not in _PREDICT_FNS:
            raise AttributeError(name)
        method = getattr(self.sklearn_model, name)

        def call(data: Any, params: dict[str, Any] | None = None) -> Any:
            return method(data)

        return call


def _load_pyfunc(path: str) -> _SklearnPyfunc:
    """Loader of the ``python_function`` flavor (``loader_module: evtrack.sklearn``)."""
    p = Path(path)
    return _SklearnPyfunc(_load_from_dir(p.parent if p.is_file() else p))
