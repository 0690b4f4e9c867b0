"""evtrack's errors as MLflow's ``MlflowException``, and MLflow's features the store does not keep.

Every public method of the plugin stores runs inside :func:`mlflow_errors`, so MLflow's
client, server and UI see the error codes and messages they know
(``RESOURCE_DOES_NOT_EXIST``, ``INVALID_PARAMETER_VALUE``, …) and never a bare evtrack
traceback. :func:`refuse_unsupported` builds the methods of features evtrack's store does not keep
(traces, assessments, AI Gateway, …): they answer ``NOT_IMPLEMENTED`` (HTTP 501 from MLflow's server) with a sentence naming
the feature, which MLflow's UI shows as a message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, NOT_IMPLEMENTED, ErrorCode

from evtrack.errors import EvtrackError

T = TypeVar("T")


def to_mlflow(error: EvtrackError) -> MlflowException:
    """The MlflowException that carries an evtrack error's message and code."""
    try:
        code = ErrorCode.Value(error.error_code)
    except ValueError:
        code = INTERNAL_ERROR
    return MlflowException(error.message, error_code=code)


@contextmanager
def mlflow_errors() -> Iterator[None]:
    """Re-raise evtrack's errors inside the block as MlflowExceptions."""
    try:
        yield
    except EvtrackError as exc:
        raise to_mlflow(exc) from exc


def translating(method: Callable[..., T]) -> Callable[..., T]:
    """``method`` with its evtrack errors raised as MlflowExceptions."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with mlflow_errors():
            return method(*args, **kwargs)

    return wrapper


def translate_errors(cls: type[T]) -> type[T]:
    """Class decorator: every public method the class itself defines goes through :func:`translating`."""
    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_") and not isinstance(value, type):
            setattr(cls, name, translating(value))
    return cls


def feature_disabled(feature: str) -> MlflowException:
    """The error for one of MLflow's features the evtrack store does not keep."""
    return MlflowException(
        f"{feature} are not supported by the evtrack store: it keeps experiments, runs, logged models "
        "and the model registry. Use an MLflow tracking server with a database backend for them.",
        error_code=NOT_IMPLEMENTED,
    )


# What each unsupported method is about, by a word of its name (first match wins).
_FEATURES = (
    ("webhook", "Webhooks"),
    ("assessment", "Assessments"),
    ("trace", "Traces"),
    ("span", "Traces"),
    ("scor", "Scorers"),
    ("label_schema", "Label schemas"),
    ("queue", "Review queues"),
    ("issue", "Issues"),
    ("mcp", "MCP servers"),
    ("skill", "Skills"),
    ("gateway", "AI Gateway endpoints"),
    ("endpoint", "AI Gateway endpoints"),
    ("secret", "AI Gateway secrets"),
    ("budget", "AI Gateway budgets"),
    ("guardrail", "AI Gateway guardrails"),
    ("model_definition", "AI Gateway endpoints"),
    ("dataset", "Evaluation datasets"),
    ("job", "Jobs"),
    ("workspace", "Workspaces"),
)


def feature_of(method_name: str) -> str | None:
    """The feature an MLflow store method belongs to, when it is one the evtrack store does not keep."""
    return next((feature for word, feature in _FEATURES if word in method_name), None)


def refuse_unsupported(cls: type[T], base: type) -> type[T]:
    """Give ``cls`` a refusing method (NOT_IMPLEMENTED, naming the feature) for every public method
    of MLflow's ``base`` store that belongs to an unsupported feature and that ``cls`` does not
    define itself; returns the class. New methods of later MLflow versions are covered by name."""
    own = {name for klass in cls.__mro__ if klass.__module__.startswith("evtrack.") for name in vars(klass)}
    for name in dir(base):
        feature = feature_of(name)
        if name.startswith("_") or name in own or feature is None or not callable(getattr(base, name)):
            continue

        def refuse(self: Any, *args: Any, _feature: str = feature, **kwargs: Any) -> Any:
            raise feature_disabled(_feature)

        refuse.__name__ = refuse.__qualname__ = name
        refuse.__doc__ = f"Not supported by the evtrack store ({feature}): raises NOT_IMPLEMENTED."
        setattr(cls, name, refuse)
    return cls
