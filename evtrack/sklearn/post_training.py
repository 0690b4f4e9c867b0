"""Metrics computed after an autologged fit, logged to that fit's run, with MLflow's names.

After ``model = Lasso().fit(X, y)`` under autologging::

    pred = model.predict(X_test)
    sklearn.metrics.mean_squared_error(y_test, pred)   # → metric mean_squared_error_X_test
    model.score(X_test, y_test)                        # → metric Lasso_score_X_test

The metric's name is the function's (or ``<Estimator>_score``), ``-2``, ``-3``… for
the second and third call of the same function on one run, then ``_`` and the name
of the variable holding the evaluation data in the caller (``unknown_dataset`` when
there is none; ``-2`` again for a second dataset under the same name). The run's
``metric_info.json`` maps each metric to the call that made it. A prediction is
recognised by identity (``id``), and forgotten when it is garbage-collected.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import threading
import weakref
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from evtrack.autologging.patching import TrainingSession
from evtrack.tracking import fluent

RUN_ATTRIBUTE = "_mlflow_run_id"  # MLflow's attribute on a fitted estimator (kept for models fitted by either)
_EXCLUDED_METRIC_APIS = ("check_scoring", "get_scorer", "make_scorer", "get_scorer_names")


def metric_api_names() -> list[str]:
    """The functions of ``sklearn.metrics`` whose results are logged (not plots, classes or scorer makers)."""
    from sklearn import metrics

    return [
        name
        for name in metrics.__all__
        if name not in _EXCLUDED_METRIC_APIS
        and not name.startswith("plot_")
        and callable(getattr(metrics, name, None))
        and not inspect.isclass(getattr(metrics, name))
    ]


def var_name(value: Any, fallback: str) -> str:
    """The name the user's code gives ``value``: in the first frame up the stack, past evtrack's own,
    that does not receive it as an argument (a helper passing it on), as MLflow names it."""
    if value is None:
        return fallback
    try:
        frame = inspect.currentframe()
        frame = frame.f_back if frame else None
        while frame is not None:
            if frame.f_globals.get("__name__", "").startswith("evtrack."):  # autologging's own frames
                frame = frame.f_back
                continue
            info = inspect.getargvalues(frame)
            passed = [info.locals[a] for a in info.args if a in info.locals]
            if info.varargs:
                passed += list(info.locals.get(info.varargs, ()))
            if info.keywords:
                passed += list(info.locals.get(info.keywords, {}).values())
            if any(value is a for a in passed):
                frame = frame.f_back
                continue
            return next((name for name, v in frame.f_locals.items() if v is value), fallback)
        return fallback
    except Exception:  # noqa: BLE001 - a name is a nicety; never fail the user's call for it
        return fallback


def _with_index(name: str, index: int) -> str:
    return name if index == 0 else f"{name}-{index + 1}"


class Metrics:
    """What post-training logging remembers: ids of predictions and datasets, and the calls made (no data)."""

    def __init__(self) -> None:
        self._predictions: dict[int, tuple[str, str]] = {}  # id(prediction) → (dataset name, run id)
        self._datasets: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self._calls: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
        self._enabled = threading.local()

    def enabled(self) -> bool:
        """Off during a logged fit and inside a metric call (one metric calling another logs once)."""
        return not TrainingSession.is_active() and getattr(self._enabled, "on", True)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Within this block, nothing is logged as a post-training metric."""
        before = getattr(self._enabled, "on", True)
        self._enabled.on = False
        try:
            yield
        finally:
            self._enabled.on = before

    def dataset_name(self, run_id: str, dataset: Any, name: str) -> str:
        """``name``, or ``name-2``… when another object was registered under it for this run."""
        ids = self._datasets[run_id][name]
        if id(dataset) not in ids:
            ids.append(id(dataset))
        return _with_index(name, ids.index(id(dataset)))

    def register_prediction(self, run_id: str, dataset_name: str, prediction: Any) -> None:
        """Remember that ``prediction`` came from the model of ``run_id`` on ``dataset_name``."""
        key = id(prediction)
        self._predictions[key] = (dataset_name, run_id)
        with contextlib.suppress(TypeError):  # objects that take no weak reference stay until reused
            weakref.finalize(prediction, self._predictions.pop, key, None)

    def source_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str] | None:
        """``(dataset name, run id)`` of the first argument that is a registered prediction."""
        import numpy as np

        for arg in [*args, *kwargs.values()]:
            if arg is not None and not np.isscalar(arg) and id(arg) in self._predictions:
                return self._predictions[id(arg)]
        return None

    def log(self, run_id: str, metric_name: str, dataset_name: str, call: str, value: Any) -> str:
        """Log ``value`` under its generated key to ``run_id`` and rewrite ``metric_info.json``; returns the key."""
        calls = self._calls[run_id][metric_name]
        key = f"{_with_index(metric_name, len(calls))}_{dataset_name}"
        calls.append((key, call))
        client = fluent._client()
        client.log_metric(run_id, key, float(value))
        info = dict(sorted(c for per_name in self._calls[run_id].values() for c in per_name))
        client.log_dict(run_id, info, "metric_info.json")
        return key


METRICS = Metrics()


def loggable(value: Any) -> bool:
    """A number that can be a metric (not a bool, not an array)."""
    import numpy as np

    return isinstance(value, (numbers.Number, np.number)) and not isinstance(value, (bool, np.bool_))


def call_text(owner: Any, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """``fn(y_true=y_test, y_pred=pred)``: the call as ``metric_info.json`` records it."""
    import numpy as np

    def show(arg: Any) -> str:
        if arg is None or np.isscalar(arg):
            return repr(arg[:32] + "...") if isinstance(arg, str) and len(arg) > 32 else repr(arg)
        return var_name(arg, f"<{type(arg).__name__}>")

    names = list(inspect.signature(fn).parameters)
    if owner is not None:
        names = names[1:]
    parts = [f"{n}={show(a)}" for n, a in zip(names, args)] + [f"{n}={show(a)}" for n, a in kwargs.items()]
    label = f"{type(owner).__name__}.{fn.__name__}" if owner is not None else fn.__name__
    return f"{label}({', '.join(parts)})"


def _first_arg(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    params = list(inspect.signature(original).parameters)
    return kwargs.get(params[1]) if len(params) > 1 else None


def patched_predict(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    """``predict`` & co. of an autologged model: remember the result as a prediction on the data's name."""
    run_id = getattr(self, RUN_ATTRIBUTE, None)
    if not (run_id and METRICS.enabled()):
        return original(self, *args, **kwargs)
    with METRICS.paused():
        result = original(self, *args, **kwargs)
    data = _first_arg(original, args, kwargs)
    METRICS.register_prediction(run_id, METRICS.dataset_name(run_id, data, var_name(data, "unknown_dataset")), result)
    return result


def patched_score(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    """``score`` of an autologged model: log ``<Estimator>_score_<data>``."""
    run_id = getattr(self, RUN_ATTRIBUTE, None)
    if not (run_id and METRICS.enabled()):
        return original(self, *args, **kwargs)
    with METRICS.paused():
        value = original(self, *args, **kwargs)
    if loggable(value):
        data = _first_arg(original, args, kwargs)
        dataset = METRICS.dataset_name(run_id, data, var_name(data, "unknown_dataset"))
        METRICS.log(run_id, f"{type(self).__name__}_score", dataset, call_text(self, original, args, kwargs), value)
    return value


def patched_metric(original: Any, *args: Any, **kwargs: Any) -> Any:
    """A ``sklearn.metrics`` function called on a prediction of an autologged model: log its result."""
    if not METRICS.enabled():
        return original(*args, **kwargs)
    with METRICS.paused():
        value = original(*args, **kwargs)
    source = METRICS.source_of(args, kwargs) if loggable(value) else None
    if source is not None:
        dataset, run_id = source
        METRICS.log(run_id, original.__name__, dataset, call_text(None, original, args, kwargs), value)
    return value
