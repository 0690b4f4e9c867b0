"""``PyFuncModel``: any saved model behind one ``predict(data, params=None)``, with its signature enforced.

Loading reads the ``python_function`` flavor of ``MLmodel``, imports its
``loader_module`` and calls ``_load_pyfunc(data_path)``, exactly as MLflow does,
so models saved by MLflow load too: ``mlflow.sklearn`` is served by
``evtrack.sklearn`` (same files, same flavor keys) and ``mlflow.pyfunc.model``
by ``evtrack.pyfunc.model``; any other loader module is imported as named.
"""

from __future__ import annotations

import importlib
import logging
import platform
from pathlib import Path
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.models.enforcement import enforce_params, enforce_schema
from evtrack.models.model import Model
from evtrack.pyfunc.calling import accepts_params, positional_count

FLAVOR_NAME = "python_function"
_LOADER_ALIASES = {"mlflow.sklearn": "evtrack.sklearn", "mlflow.pyfunc.model": "evtrack.pyfunc.model"}
_log = logging.getLogger("evtrack.pyfunc")
_NOT_NEEDED = {"mlflow", "mlflow-skinny"}  # pinned by MLflow-saved models; evtrack loads them without it


def add_pyfunc_flavor(model: Model, loader_module: str, data: str | None = None, **kwargs: Any) -> Model:
    """Add the ``python_function`` flavor (loader module, data path, Python version) to ``model``."""
    conf: dict[str, Any] = {"loader_module": loader_module, "python_version": platform.python_version()}
    if data is not None:
        conf["data"] = data
    conf.update({k: v for k, v in kwargs.items() if v is not None})
    return model.add_flavor(FLAVOR_NAME, **conf)


class PyFuncModel:
    """A loaded model: ``predict`` checks the input against the signature, then calls the flavor."""

    def __init__(
        self, model_meta: Model, model_impl: Any, predict_fn: str = "predict", model_dir: str | Path | None = None
    ) -> None:
        self._meta = model_meta
        self._impl = model_impl
        self._predict_fn = predict_fn
        self._model_dir = Path(model_dir) if model_dir is not None else None

    @property
    def metadata(self) -> Model:
        """The model's ``MLmodel`` content."""
        return self._meta

    @property
    def loader_module(self) -> str:
        """The module that loaded the model."""
        return self._meta.flavor(FLAVOR_NAME)["loader_module"]

    @property
    def model_dir(self) -> Path | None:
        """The local directory the model was loaded from."""
        return self._model_dir

    @property
    def input_example(self) -> Any:
        """The input example saved with the model (None when there is none)."""
        return self._meta.load_input_example(self._model_dir) if self._model_dir else None

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data``; ``SchemaEnforcementError`` naming what does not fit the signature."""
        schema = self._meta.get_input_schema()
        if schema is not None:
            data = enforce_schema(data, schema)
        params = enforce_params(params, self._meta.get_params_schema())
        fn = getattr(self._impl, self._predict_fn, None)
        if fn is None:
            raise InvalidParameterError(f"The loaded model has no {self._predict_fn!r} method")
        if accepts_params(fn):
            return fn(data, params=params)
        if params:
            _log.warning("The model's %s takes no params; ignoring %s", self._predict_fn, sorted(params))
        return fn(data)

    def unwrap_python_model(self) -> Any:
        """The user's ``PythonModel`` (or object) inside a custom python model."""
        inner = getattr(self._impl, "python_model", None)
        if inner is None:
            raise InvalidParameterError("unwrap_python_model() works only on models saved with python_model=")
        return inner

    def get_raw_model(self) -> Any:
        """The flavor's own model object (e.g. the scikit-learn estimator)."""
        for attr in ("sklearn_model", "python_model"):
            if hasattr(self._impl, attr):
                return getattr(self._impl, attr)
        return self._impl

    def __repr__(self) -> str:
        info = {"flavor": self.loader_module}
        if self._meta.run_id:
            info["run_id"] = self._meta.run_id
        if self._meta.artifact_path:
            info["artifact_path"] = self._meta.artifact_path
        return "evtrack.pyfunc.loaded_model:\n" + "".join(f"  {k}: {v}\n" for k, v in info.items())


def warn_requirement_mismatches(model_dir: Path) -> None:
    """Warn about pinned requirements whose installed version differs (or that are missing)."""
    from evtrack.models.environment import installed_version, read_requirements

    for req in read_requirements(model_dir):
        name, sep, want = req.partition("==")
        if not sep or any(c in name for c in "<>=!~;[ @") or name.strip().lower() in _NOT_NEEDED:
            continue
        have = installed_version(name.strip())
        if have != want.strip():
            _log.warning(
                "The model was saved with %s, but %s",
                req,
                f"{name}=={have} is installed" if have else f"{name} is not installed",
            )


def load_from_dir(
    model_dir: Path, model_config: dict[str, Any] | None = None, suppress_warnings: bool = False
) -> PyFuncModel:
    """Load the ``python_function`` flavor of the model in a local directory."""
    meta = Model.load(model_dir)
    conf = meta.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise InvalidParameterError(f'Model does not have the "{FLAVOR_NAME}" flavor (it has {sorted(meta.flavors)})')
    if not suppress_warnings:
        warn_requirement_mismatches(model_dir)
    module_name = _LOADER_ALIASES.get(conf["loader_module"], conf["loader_module"])
    data_path = str(model_dir / conf["data"]) if conf.get("data") else str(model_dir)
    loader = importlib.import_module(module_name)._load_pyfunc
    if model_config and positional_count(loader) < 2:
        raise InvalidParameterError(f"The {module_name} flavor does not take a model_config")
    impl = loader(data_path, model_config) if model_config else loader(data_path)
    return PyFuncModel(meta, impl, conf.get("predict_fn", "predict"), model_dir)
