"""What scikit-learn autologging records about one fitted estimator, with MLflow's names.

Classifiers: ``<prefix>precision_score``, ``recall_score``, ``f1_score`` (weighted,
or binary with ``pos_label``), ``accuracy_score`` and, with ``predict_proba``,
``log_loss`` and ``roc_auc``; plots ``<prefix>confusion_matrix.png`` and, for
two classes, ``roc_curve.png`` and ``precision_recall_curve.png``. Regressors:
``mean_squared_error``, ``root_mean_squared_error``, ``mean_absolute_error``,
``r2_score``. Every estimator with ``score``: ``<prefix>score``; and
``estimator.html``. A metric or plot that fails is skipped with a warning naming
it, as in MLflow.
"""

from __future__ import annotations

import inspect
import logging
import math
import tempfile
from collections.abc import Callable
from copy import deepcopy
from typing import Any

TRAINING_PREFIX = "training_"
SAMPLE_WEIGHT = "sample_weight"
_log = logging.getLogger("evtrack.sklearn")

# scikit-learn's data-preparation modules: fitting a scaler or an imputer is not a training run
_EXCLUDED_MODULES = (
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
)
_EXCLUDED_CLASSES = ("sklearn.compose._column_transformer.ColumnTransformer",)


def estimator_tags(estimator: Any) -> dict[str, str]:
    """The ``estimator_name`` and ``estimator_class`` tags of an estimator."""
    cls = type(estimator)
    return {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__name__}"}


def estimators_to_patch() -> list[type]:
    """Every scikit-learn estimator class whose fit is a training run, plus the searches and Pipeline."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    classes = {cls for _, cls in all_estimators()} | {GridSearchCV, RandomizedSearchCV, Pipeline}
    return sorted(
        (
            c
            for c in classes
            if not c.__module__.startswith(_EXCLUDED_MODULES)
            and f"{c.__module__}.{c.__name__}" not in _EXCLUDED_CLASSES
        ),
        key=lambda c: (c.__module__, c.__name__),
    )


def is_parameter_search(estimator: Any) -> bool:
    """Whether ``estimator`` is a ``GridSearchCV`` or ``RandomizedSearchCV``."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    return isinstance(estimator, (GridSearchCV, RandomizedSearchCV))


def _arg_names(fn: Callable[..., Any]) -> list[str]:
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def x_y_and_sample_weight(
    fit: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """Copies of the ``X`` and ``y`` given to a ``fit`` call, and its ``sample_weight`` (each may be None)."""
    names = _arg_names(fit)
    x_name, y_name = (names + ["X", "y"])[:2]
    if len(args) >= 2:
        x, y = args[0], args[1]
    elif len(args) == 1:
        x, y = args[0], kwargs.get(y_name)
    else:
        x, y = kwargs.get(x_name), kwargs.get(y_name)
    weight = None
    if SAMPLE_WEIGHT in names:
        index = names.index(SAMPLE_WEIGHT)
        weight = args[index] if len(args) > index else kwargs.get(SAMPLE_WEIGHT)
    return (deepcopy(x) if x is not None else None, deepcopy(y) if y is not None else None, weight)


def _compute(named: list[tuple[str, Callable[..., Any], dict[str, Any]]]) -> dict[str, float]:
    values: dict[str, float] = {}
    for name, fn, kwargs in named:
        try:
            values[name] = fn(**kwargs)
        except Exception as exc:  # noqa: BLE001 - a metric that does not apply is skipped, as MLflow
            _log.warning("%s failed. The metric %s will not be recorded. Metric error: %s", fn.__qualname__, name, exc)
    return values


def classifier_metrics(estimator: Any, prefix: str, x: Any, y: Any, weight: Any, pos_label: Any) -> dict[str, float]:
    """The classification metrics MLflow logs for a fitted classifier on ``(x, y)``."""
    from sklearn import metrics

    average = "weighted" if pos_label is None else "binary"
    y_pred = estimator.predict(x)
    per_label = {"y_true": y, "y_pred": y_pred, "pos_label": pos_label, "average": average, "sample_weight": weight}
    named: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
        (prefix + "precision_score", metrics.precision_score, per_label),
        (prefix + "recall_score", metrics.recall_score, per_label),
        (prefix + "f1_score", metrics.f1_score, per_label),
        (
            prefix + "accuracy_score",
            metrics.accuracy_score,
            {"y_true": y, "y_pred": y_pred, "normalize": True, "sample_weight": weight},
        ),
    ]
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(x)
        named.append((prefix + "log_loss", metrics.log_loss, {"y_true": y, "y_pred": proba, "sample_weight": weight}))
        score = proba[:, 1] if len(proba[0]) == 2 else proba
        named.append(
            (
                prefix + "roc_auc",
                metrics.roc_auc_score,
                {"y_true": y, "y_score": score, "average": "weighted", "sample_weight": weight, "multi_class": "ovo"},
            )
        )
    return _compute(named)


def regressor_metrics(estimator: Any, prefix: str, x: Any, y: Any, weight: Any) -> dict[str, float]:
    """The regression metrics MLflow logs for a fitted regressor on ``(x, y)``."""
    from sklearn import metrics

    y_pred = estimator.predict(x)
    kwargs = {"y_true": y, "y_pred": y_pred, "sample_weight": weight, "multioutput": "uniform_average"}
    values = _compute(
        [
            (prefix + "mean_squared_error", metrics.mean_squared_error, kwargs),
            (prefix + "mean_absolute_error", metrics.mean_absolute_error, kwargs),
            (prefix + "r2_score", metrics.r2_score, kwargs),
        ]
    )
    if prefix + "mean_squared_error" in values:
        values[prefix + "root_mean_squared_error"] = math.sqrt(values[prefix + "mean_squared_error"])
    return values


def _classifier_plots(
    estimator: Any, prefix: str, x: Any, y: Any, weight: Any
) -> list[tuple[str, Callable[[], Any], str]]:
    from sklearn import metrics

    def confusion() -> Any:
        import matplotlib
        import matplotlib.pyplot as plt

        labels = getattr(estimator, "classes_", None)
        count = len(labels) if labels is not None else len(set(y))
        with matplotlib.rc_context({"font.size": min(8.0, 50.0 / count), "axes.labelsize": 8.0, "figure.dpi": 175}):
            _, ax = plt.subplots(1, 1, figsize=(6.0, 4.0))
            return metrics.ConfusionMatrixDisplay.from_estimator(
                estimator, x, y, sample_weight=weight, normalize="true", cmap="Blues", ax=ax
            )

    plots: list[tuple[str, Callable[[], Any], str]] = [
        (prefix + "confusion_matrix", confusion, "Normalized confusion matrix")
    ]
    if len(set(y)) == 2:
        plots.append(
            (
                prefix + "roc_curve",
                lambda: metrics.RocCurveDisplay.from_estimator(estimator, x, y, sample_weight=weight),
                "ROC curve",
            )
        )
        plots.append(
            (
                prefix + "precision_recall_curve",
                lambda: metrics.PrecisionRecallDisplay.from_estimator(estimator, x, y, sample_weight=weight),
                "Precision recall curve",
            )
        )
    return plots


def _log_plots(client: Any, run_id: str, plots: list[tuple[str, Callable[[], Any], str]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        _log.warning("Failed to import matplotlib (%r). Skipping artifact logging.", exc)
        return
    with tempfile.TemporaryDirectory(prefix="evtrack-autolog-") as tmp:
        written = 0
        for name, draw, title in plots:
            try:
                with matplotlib.rc_context({"savefig.dpi": 175, "figure.autolayout": True, "font.size": 8}):
                    display = draw()
                    display.ax_.set_title(title)
                    display.figure_.savefig(fname=f"{tmp}/{name}.png", format="png")
                    plt.close(display.figure_)
                written += 1
            except Exception as exc:  # noqa: BLE001 - a plot that does not apply is skipped, as MLflow
                _log.warning("The artifact %s will not be recorded. Artifact error: %s", name, exc)
        if written:
            client.log_artifacts(run_id, tmp)


def _estimator_html(estimator: Any) -> str:
    from sklearn.utils import estimator_html_repr

    return (
        '\n<!DOCTYPE html>\n<html lang="en">\n  <head>\n    <meta charset="UTF-8"/>\n  </head>\n  <body>\n'
        f"    {estimator_html_repr(estimator)}\n  </body>\n</html>\n    "
    )


def estimator_content(
    client: Any, run_id: str, estimator: Any, prefix: str, x: Any, y: Any, weight: Any, pos_label: Any
) -> dict[str, float]:
    """Compute the metrics and draw the plots for ``estimator`` on ``(x, y)``, log the plots and
    ``estimator.html``; returns the metrics (to be logged by the caller, in one batch)."""
    import sklearn.base

    values: dict[str, float] = {}
    if y is not None:
        try:
            if sklearn.base.is_classifier(estimator):
                values = classifier_metrics(estimator, prefix, x, y, weight, pos_label)
            elif sklearn.base.is_regressor(estimator):
                values = regressor_metrics(estimator, prefix, x, y, weight)
        except Exception as exc:  # noqa: BLE001
            _log.warning("Failed to autolog metrics for %s. Logging error: %s", type(estimator).__name__, exc)
        if sklearn.base.is_classifier(estimator):
            try:
                plots = _classifier_plots(estimator, prefix, x, y, weight)
            except Exception as exc:  # noqa: BLE001
                _log.warning("Failed to autolog artifacts for %s. Logging error: %s", type(estimator).__name__, exc)
            else:
                _log_plots(client, run_id, plots)
        if hasattr(estimator, "score"):
            try:
                args = (x, y, weight) if SAMPLE_WEIGHT in _arg_names(estimator.score) else (x, y)
                values[prefix + "score"] = estimator.score(*args)
            except Exception as exc:  # noqa: BLE001
                _log.warning("The '%sscore' metric will not be recorded. Scoring error: %s", prefix, exc)
    client.log_text(run_id, _estimator_html(estimator), "estimator.html")
    return values
