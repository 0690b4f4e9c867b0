"""``evtrack.models``: the model directory format (``MLmodel``), signatures and input examples.

Modules, one concern each:

- ``model``          the ``MLmodel`` file (``Model``) and ``ModelInfo``
- ``signature``      column / tensor / param specs in MLflow's JSON format
- ``inference``      signature inference from an input example
- ``enforcement``    making an input fit a signature (or a clear error)
- ``input_example``  ``input_example.json`` and ``serving_input_example.json``
- ``serialization``  pickling while noting the modules a model needs
- ``environment``    ``requirements.txt``, ``python_env.yaml``, ``conda.yaml``
- ``saving``         the save steps flavors share
- ``run_logging``    a logged model's artifact path and the run's model history tag
- ``uri``            path / ``runs:/`` / ``models:/`` / ``s3://`` resolution
- ``serving_io``     scoring-request parsing and prediction output

Flavors live in ``evtrack.pyfunc`` (with ``log_model`` for every flavor and the REST
scoring server of ``evtrack models serve``) and ``evtrack.sklearn``. Nothing here imports
numpy, pandas or PyYAML until a function needs them.
"""

from __future__ import annotations

import os

from evtrack.models.enforcement import SchemaEnforcementError
from evtrack.models.inference import infer_signature
from evtrack.models.model import MLMODEL_FILE_NAME, Model, ModelInfo
from evtrack.models.signature import ColSpec, ModelSignature, ParamSchema, ParamSpec, Schema, TensorSpec

__all__ = [
    "MLMODEL_FILE_NAME",
    "ColSpec",
    "Model",
    "ModelInfo",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "SchemaEnforcementError",
    "TensorSpec",
    "get_model_info",
    "infer_signature",
]


def get_model_info(model_uri: str | os.PathLike, tracking_uri: str | None = None) -> ModelInfo:
    """The ``ModelInfo`` of the model at a path, ``runs:/``, ``models:/`` or store URI."""
    from evtrack.models.uri import download_model

    return ModelInfo.from_model(Model.load(download_model(model_uri, tracking_uri=tracking_uri)), os.fspath(model_uri))
