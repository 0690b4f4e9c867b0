"""``evtrack.sklearn.autolog()``: scikit-learn fits logged as MLflow's ``mlflow.sklearn.autolog`` logs them.

On ``fit`` / ``fit_transform`` / ``fit_predict`` of an estimator (the outermost
one: a Pipeline's steps and a search's candidates are not runs of their own),
in the active run or in one started for the call and ended after it:

- params: ``estimator.get_params(deep=True)`` (not deep for a parameter search);
- tags: ``estimator_name``, ``estimator_class`` (and ``mlflow.autologging=sklearn``
  on a run autologging started);
- the training dataset as an input with context ``train`` (``log_datasets``);
- metrics and plots (``evtrack.sklearn.training_content``) with the ``training_``
  prefix, all logged in one batch;
- the model under ``model`` with a signature inferred from the first rows of
  ``X`` (``log_model_signatures``), the rows themselves as input example only with
  ``log_input_examples=True`` (MLflow's default is off), registered as
  ``registered_model_name`` if given;
- for ``GridSearchCV`` / ``RandomizedSearchCV``: ``evtrack.sklearn.param_search``.

Inside ``cross_val_score``, ``cross_validate``, ``cross_val_predict``,
``learning_curve``, ``validation_curve`` and ``permutation_test_score`` nothing
is logged (their internal fits are not the user's runs), as in MLflow.
"""

from __future__ import annotations

import logging
from copy import deepcopy
from typing import Any

from evtrack.autologging import config, patching
from evtrack.entities import Metric, Param, RunTag
from evtrack.errors import InvalidParameterError
from evtrack.eventlog.events import now_ms
from evtrack.sklearn import param_search, post_training, training_content as content
from evtrack.tracking import fluent

FLAVOR_NAME = "sklearn"
INPUT_EXAMPLE_SAMPLE_ROWS = 5
_FIT_METHODS = ("fit", "fit_transform", "fit_predict")
_PREDICT_METHODS = ("predict", "predict_proba", "transform", "predict_log_proba")
_DISABLED_IN = (
    "cross_validate",
    "cross_val_predict",
    "cross_val_score",
    "learning_curve",
    "permutation_test_score",
    "validation_curve",
)
_log = logging.getLogger("evtrack.sklearn")


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = 5,
    log_post_training_metrics: bool = True,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Turn scikit-learn autologging on (or off with ``disable=True``), with MLflow's arguments.

    With ``log_post_training_metrics``, metrics computed after the fit on the model's
    predictions are logged to its run too (``evtrack.sklearn.post_training``).
    """
    if max_tuning_runs is not None and max_tuning_runs < 0:
        raise InvalidParameterError(f"`max_tuning_runs` must be non-negative, instead got {max_tuning_runs}.")
    if extra_tags is not None and not isinstance(extra_tags, dict):
        raise InvalidParameterError(f"extra_tags must be a dict, got {type(extra_tags).__name__}")
    arguments = dict(locals())
    patching.revert(FLAVOR_NAME)
    config.set_config(FLAVOR_NAME, arguments)
    if disable:
        return
    import sklearn.model_selection

    tags = dict(extra_tags or {})
    if tags.pop(patching.AUTOLOGGING_TAG, None) is not None:
        _log.warning("Tag `%s` is ignored as it is a reserved tag by evtrack.", patching.AUTOLOGGING_TAG)
    for cls in content.estimators_to_patch():
        for name in _FIT_METHODS:
            if _patchable(cls, name):
                patching.safe_patch(FLAVOR_NAME, cls, name, _patched_fit, manage_run=True, extra_tags=tags)
        if not log_post_training_metrics:
            continue
        for name in _PREDICT_METHODS:
            if _patchable(cls, name):
                patching.safe_patch(FLAVOR_NAME, cls, name, post_training.patched_predict)
        if _patchable(cls, "score"):
            patching.safe_patch(FLAVOR_NAME, cls, "score", post_training.patched_score)
    if log_post_training_metrics:
        import sklearn.metrics

        for name in post_training.metric_api_names():
            patching.safe_patch(FLAVOR_NAME, sklearn.metrics, name, post_training.patched_metric)
    import importlib

    for name in _DISABLED_IN:
        function = getattr(sklearn.model_selection, name, None)
        if function is None:
            continue
        # where it is defined too, so that a name imported before autolog() (whose body calls
        # cross_validate through its module) is covered
        home = importlib.import_module(function.__module__)
        for module in {sklearn.model_selection, home}:
            if getattr(module, name, None) is function:
                patching.safe_patch(FLAVOR_NAME, module, name, _with_autologging_disabled)


def _patchable(cls: type, name: str) -> bool:
    """A plain method, a property or scikit-learn's ``available_if`` (patched keeping ``hasattr``'s answer)."""
    import inspect

    try:
        raw = inspect.getattr_static(cls, name)
    except AttributeError:
        return False
    return inspect.isfunction(raw) or isinstance(raw, property) or (hasattr(raw, "fn") and hasattr(raw, "check"))


def _with_autologging_disabled(original: Any, *args: Any, **kwargs: Any) -> Any:
    with config.disable_autologging():
        return original(*args, **kwargs)


def _patched_fit(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    with patching.TrainingSession(self, allow_children=False) as session:
        if not session.should_log():
            return original(self, *args, **kwargs)
        result = _fit_and_log(original, self, *args, **kwargs)
        run = fluent.active_run()
    if run is not None and _setting("log_post_training_metrics", True):
        setattr(self, post_training.RUN_ATTRIBUTE, run.info.run_id)  # later metrics on it go to this run
    return result


def _setting(key: str, default: Any = None) -> Any:
    return config.get_config(FLAVOR_NAME, key, default)


def _dataset_input(x: Any, y: Any) -> Any:
    """The training dataset as a run input (context ``train``), or None for data evtrack cannot describe."""
    import numpy as np

    from evtrack import data
    from evtrack.data.dataset import code_source
    from evtrack.tracking.inputs import dataset_input

    try:
        import pandas as pd

        if isinstance(x, pd.DataFrame):
            dataset = data.from_pandas(x, source=code_source())
        elif hasattr(x, "toarray"):  # a scipy sparse matrix
            y_dense = y.toarray() if hasattr(y, "toarray") else y
            dataset = data.from_numpy(x.toarray(), source=code_source(), targets=y_dense)
        elif isinstance(x, np.ndarray):
            dataset = data.from_numpy(x, source=code_source(), targets=y)
        else:
            _log.warning("Unrecognized dataset type %s. Dataset logging skipped.", type(x))
            return None
        return dataset_input(dataset, "train", None)
    except Exception as exc:  # noqa: BLE001
        _log.warning("Failed to log training dataset information to evtrack. Reason: %s", exc)
        return None


def _fit_and_log(original: Any, estimator: Any, *args: Any, **kwargs: Any) -> Any:
    run = fluent.active_run()
    assert run is not None  # the managed-run wrapper started one
    rid, client = run.info.run_id, run.client
    x, y, weight = content.x_y_and_sample_weight(estimator.fit, args, kwargs)
    search = content.is_parameter_search(estimator)
    params = estimator.get_params(deep=not search)
    client.log_batch(
        rid,
        params=[Param(str(k), str(v)) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in content.estimator_tags(estimator).items()],
    )
    train_input = _dataset_input(x, y) if _setting("log_datasets", True) and x is not None else None
    if train_input is not None:
        client.log_inputs(rid, [train_input])

    result = original(estimator, *args, **kwargs)

    example = None
    try:
        example = deepcopy(x[:INPUT_EXAMPLE_SAMPLE_ROWS])
    except Exception as exc:  # noqa: BLE001
        _log.warning("Failed to gather input example: %s", exc)
    signature = None
    if _setting("log_models", True):
        signature = _signature(estimator, example) if _setting("log_model_signatures", True) else None
        _log_model(estimator, "model", signature, example, _setting("registered_model_name"))
    values = content.estimator_content(
        client, rid, estimator, content.TRAINING_PREFIX, x, y, weight, _setting("pos_label")
    )
    if y is None and not values:
        _log.warning(
            "Training metrics will not be recorded because training labels were not specified. To automatically "
            "record training metrics, provide training labels as inputs to the model training function."
        )
    ts = now_ms()
    client.log_batch(rid, metrics=[Metric(k, float(v), ts, 0) for k, v in values.items()])
    if search:
        if hasattr(estimator, "best_estimator_") and _setting("log_models", True):
            _log_model(estimator.best_estimator_, "best_estimator", signature, example, None)
        child_tags = {patching.AUTOLOGGING_TAG: FLAVOR_NAME}
        param_search.log_search_results(client, run, estimator, _setting("max_tuning_runs", 5), child_tags, train_input)
    return result


def _signature(estimator: Any, example: Any) -> Any:
    from evtrack.models.inference import infer_signature

    try:
        if example is None:
            raise ValueError("could not sample data to infer model signature")
        if hasattr(estimator, "predict"):
            output = estimator.predict(deepcopy(example))
        elif hasattr(estimator, "transform"):
            output = estimator.transform(deepcopy(example))
        else:
            raise ValueError("the trained model does not have a `predict` or `transform` function")
        return infer_signature(example, output)
    except Exception as exc:  # noqa: BLE001
        _log.warning("Failed to infer model signature: %s", exc)
        return None


def _log_model(estimator: Any, name: str, signature: Any, example: Any, registered_model_name: str | None) -> None:
    from evtrack import sklearn as flavor

    try:
        flavor.log_model(
            estimator,
            name=name,
            signature=signature,
            input_example=example if _setting("log_input_examples", False) else None,
            serialization_format=_setting("serialization_format", "cloudpickle"),
            registered_model_name=registered_model_name,
        )
    except Exception as exc:  # noqa: BLE001 - an unpicklable estimator: the run keeps the rest
        _log.warning("Failed to log the %s model: %s", name, exc)
