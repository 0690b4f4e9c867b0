"""What logging a model to a run records: its artifact path and the run's model history tag.

``evtrack.pyfunc.log_to_run.log_model`` (which every flavor's ``log_model`` calls)
saves the model, uploads it and registers it; this module is the part the server and
the tracking side share without importing the flavors.

The artifact path is MLflow 3's ``name`` or MLflow 2's ``artifact_path`` (``model`` by
default). The run's ``mlflow.log-model.history`` tag is a JSON list of the logged models'
``MLmodel`` entries, as MLflow's, trimmed from the oldest to fit the tag limit.

The history tag is read, appended to and written back (as MLflow's stores do):
two processes logging models into the same run at the same instant may keep
only one of the two entries; the model files themselves are never lost.
"""

from __future__ import annotations

import json
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.models.model import Model
from evtrack.eventlog.validation import MAX_TAG_VAL_LENGTH, validate_artifact_path

LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"
DEFAULT_ARTIFACT_PATH = "model"


def artifact_path_of(artifact_path: str | None, name: str | None) -> str:
    """The artifact path from MLflow 2's ``artifact_path`` or MLflow 3's ``name`` (default ``model``)."""
    if artifact_path is not None and name is not None and artifact_path != name:
        raise InvalidParameterError(
            f"Both artifact_path={artifact_path!r} and name={name!r} were given; pass only one of them"
        )
    path = validate_artifact_path(name if name is not None else artifact_path)
    return path or DEFAULT_ARTIFACT_PATH


def history_with(current: str | None, entry: dict[str, Any]) -> str:
    """The history tag value with ``entry`` appended (oldest entries dropped to fit the tag limit)."""
    try:
        history = json.loads(current) if current else []
        if not isinstance(history, list):
            history = []
    except ValueError:
        history = []  # a truncated or hand-edited tag: start over rather than fail the logging
    history.append(entry)
    text = json.dumps(history)
    while len(text) > MAX_TAG_VAL_LENGTH and len(history) > 1:
        history.pop(0)
        text = json.dumps(history)
    return text


def record_logged_model(client: Any, run_id: str, model: Model) -> None:
    """Append the model to the run's ``mlflow.log-model.history`` tag."""
    current = client.get_run(run_id).data.tags.get(LOG_MODEL_HISTORY_TAG)
    client.set_tag(run_id, LOG_MODEL_HISTORY_TAG, history_with(current, model.get_tags_dict()))
