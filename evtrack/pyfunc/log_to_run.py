"""``log_model`` for every flavor: save the model, upload it to a run, record it, register it.

The model directory goes under the run's artifacts at ``<name>`` (``model`` by
default), ``MLmodel`` carrying the run id and artifact path. The run's
``mlflow.log-model.history`` tag gets the model's entry appended (a JSON list, as
MLflow's), so ``tags.mlflow.log-model.history LIKE '%sklearn%'`` finds runs with
a scikit-learn model; every uploaded file is an ``artifact_logged`` event. With
``registered_model_name`` the model is then registered (``evtrack.register_model``).

How the history tag is kept, and what two concurrent writers of it may lose:
``evtrack.models.run_logging``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from evtrack.models.model import Model, ModelInfo
from evtrack.models.run_logging import artifact_path_of, record_logged_model
from evtrack.registry.fluent import register_model
from evtrack.tracking import fluent


def log_model(
    save_model: Callable[..., Any],
    *,
    artifact_path: str | None = None,
    name: str | None = None,
    registered_model_name: str | None = None,
    run_id: str | None = None,
    await_registration_for: int | None = None,
    **save_kwargs: Any,
) -> ModelInfo:
    """Save a model with the flavor's ``save_model`` and log it to the active (or given) run."""
    path = artifact_path_of(artifact_path, name)
    rid, client = fluent._target(run_id)
    model = Model(artifact_path=path, run_id=rid)
    with tempfile.TemporaryDirectory(prefix="evtrack-log-model-") as tmp:
        local = Path(tmp) / "model"
        save_model(path=str(local), mlflow_model=model, **save_kwargs)
        client.log_artifacts(rid, str(local), path)
    record_logged_model(client, rid, model)
    client.flush()  # the model is findable from other processes once log_model returns
    model_uri = f"runs:/{rid}/{path}"
    info = ModelInfo.from_model(model, model_uri)
    if registered_model_name is not None:
        kwargs = {} if await_registration_for is None else {"await_registration_for": await_registration_for}
        version = register_model(model_uri, registered_model_name, **kwargs)
        info.registered_model_version = int(version.version)
    return info
