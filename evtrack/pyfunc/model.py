"""Custom Python models: ``PythonModel``, its context, and how they are saved and loaded.

A ``PythonModel`` subclass (or any object with ``predict``, or a plain function)
is cloudpickled to ``python_model.pkl``; its ``artifacts`` (name → local path or
``runs:/``/``s3://`` URI) are copied under ``artifacts/`` and handed back at load
time as ``context.artifacts`` (name → absolute local path). The
``python_function`` flavor names this module as its loader, as MLflow's names
``mlflow.pyfunc.model``.
"""

from __future__ import annotations

import inspect
import logging
import os
import posixpath
from pathlib import Path
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.models import serialization
from evtrack.models.model import Model
from evtrack.pyfunc.calling import accepts_params
from evtrack.pyfunc.pyfunc_model import add_pyfunc_flavor

PYTHON_MODEL_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"
LOADER_MODULE = "evtrack.pyfunc.model"
_log = logging.getLogger("evtrack.pyfunc")


class PythonModelContext:
    """What a ``PythonModel`` gets at load time: its artifacts (name → local path) and config."""

    def __init__(self, artifacts: dict[str, str], model_config: dict[str, Any] | None = None) -> None:
        self._artifacts = dict(artifacts)
        self._model_config = dict(model_config or {})

    @property
    def artifacts(self) -> dict[str, str]:
        """Artifact name → absolute path of its local copy."""
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any]:
        """The configuration given at save (or load) time."""
        return self._model_config


class PythonModel:
    """Base class of custom models: override ``predict`` (and ``load_context`` if needed).

    Example::

        class AddN(evtrack.pyfunc.PythonModel):
            def __init__(self, n):
                self.n = n

            def predict(self, context, model_input, params=None):
                return model_input + self.n
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Called once after loading, with the model's artifacts; load heavy state here."""

    def predict(self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Return predictions for ``model_input`` (after schema enforcement)."""
        raise NotImplementedError("PythonModel subclasses must implement predict(context, model_input, params)")


def _predict_fn(python_model: Any) -> Any:
    if hasattr(python_model, "predict") and callable(python_model.predict):
        return python_model.predict
    if callable(python_model):
        return python_model
    raise InvalidParameterError(
        "python_model must be a PythonModel, an object with a predict method, or a function; "
        f"got {type(python_model).__name__}"
    )


def _takes_context(python_model: Any, fn: Any) -> bool:
    """MLflow's rule for PythonModels (evtrack's, MLflow's or look-alikes with ``load_context``):
    ``predict`` takes the context first when it has a ``context`` parameter or two inputs besides ``params``."""
    if not (isinstance(python_model, PythonModel) or hasattr(python_model, "load_context")):
        return False
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "context" in params or len([p for p in params if p not in ("self", "params")]) == 2


class PythonModelPyfunc:
    """The object the ``python_function`` flavor calls: a user model with its context."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context
        self._fn = _predict_fn(python_model)
        self._with_context = _takes_context(python_model, self._fn)
        self._params = accepts_params(self._fn)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Call the user's predict with the context (when it takes one) and the params."""
        args = (self.context, data) if self._with_context else (data,)
        if self._params:
            return self._fn(*args, params=params)
        if params:
            _log.warning("The model's predict takes no params; ignoring %s", sorted(params))
        return self._fn(*args)


def copy_artifacts(path: Path, artifacts: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """Copy each artifact under ``path/artifacts``; returns the flavor's ``artifacts`` entry."""
    from evtrack.models.uri import download_artifact

    out: dict[str, dict[str, str]] = {}
    for name, uri in (artifacts or {}).items():
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(f"Artifact names must be non-empty strings, got {name!r}")
        local = download_artifact(uri, path / ARTIFACTS_DIR / name if _clashes(out, uri) else path / ARTIFACTS_DIR)
        out[name] = {"path": posixpath.join(*local.relative_to(path).parts), "uri": os.fspath(uri)}
    return out


def _clashes(done: dict[str, dict[str, str]], uri: Any) -> bool:
    base = os.path.basename(os.fspath(uri).rstrip("/"))
    return any(posixpath.basename(entry["path"]) == base for entry in done.values())


def save_python_model(
    path: Path, model: Model, python_model: Any, artifacts: dict[str, Any] | None, model_config: dict[str, Any] | None
) -> set[str]:
    """Pickle the model and copy its artifacts into ``path``; adds the flavor; returns pickled modules."""
    _predict_fn(python_model)  # fail early on an object that cannot predict
    conf: dict[str, Any] = {"loader_module": LOADER_MODULE, "python_model": PYTHON_MODEL_FILE}
    copied = copy_artifacts(path, artifacts)
    if copied:
        conf["artifacts"] = copied
    modules = serialization.dump(python_model, str(path / PYTHON_MODEL_FILE), serialization.CLOUDPICKLE)
    from evtrack.models.environment import installed_version

    conf["cloudpickle_version"] = installed_version("cloudpickle")
    if model_config:
        conf["config"] = dict(model_config)
    add_pyfunc_flavor(model, **conf)
    return modules


def load_context(model_dir: Path, conf: dict[str, Any], model_config: dict[str, Any] | None) -> PythonModelContext:
    """The context of a saved python model: absolute artifact paths and the merged config."""
    artifacts = {
        name: str((model_dir / entry["path"]).resolve()) for name, entry in (conf.get("artifacts") or {}).items()
    }
    return PythonModelContext(artifacts, {**(conf.get("config") or {}), **(model_config or {})})


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> PythonModelPyfunc:
    """Loader of the ``python_function`` flavor: unpickle, build the context, call ``load_context``."""
    model_dir = Path(path)
    if model_dir.is_file():
        model_dir = model_dir.parent
    conf = Model.load(model_dir).flavor("python_function")
    python_model = serialization.load(
        str(model_dir / conf.get("python_model", PYTHON_MODEL_FILE)), serialization.CLOUDPICKLE
    )
    context = load_context(model_dir, conf, model_config)
    if hasattr(python_model, "load_context"):
        python_model.load_context(context)
    return PythonModelPyfunc(python_model, context)
