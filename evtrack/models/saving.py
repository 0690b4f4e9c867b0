"""The steps every flavor's ``save_model`` shares, in order.

1. :func:`new_model_dir` - refuse to overwrite, create the directory.
2. :func:`save_example_and_signature` - write the input example, infer the
   signature from it (and the model's output on it) when none was given.
3. the flavor serializes its model and adds its flavor(s) to the ``Model``.
4. :func:`finish` - write the environment files and ``MLmodel``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from evtrack.errors import ResourceAlreadyExistsError
from evtrack.models import environment, input_example
from evtrack.models.model import MLMODEL_FILE_NAME, Model, directory_size
from evtrack.models.signature import ModelSignature

_log = logging.getLogger("evtrack.models")


def new_model_dir(path: str | os.PathLike) -> Path:
    """Create the model directory; ``ResourceAlreadyExistsError`` if it exists and is not empty."""
    p = Path(path).expanduser()
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise ResourceAlreadyExistsError(f"Path '{p}' already exists and is not empty")
    p.mkdir(parents=True, exist_ok=True)
    return p


def save_example_and_signature(
    path: Path,
    model: Model,
    example: Any,
    signature: ModelSignature | None,
    predict: Callable[[Any, dict[str, Any] | None], Any] | None,
) -> None:
    """Write the example into ``path`` and set ``model``'s example info and signature.

    ``predict(data, params)`` gives the model's output for inferring the output
    schema; inference that fails only warns (the model is saved without a
    signature), as in MLflow.
    """
    if example is not None:
        model.saved_input_example_info = input_example.save_example(path, example)
    if signature is not None or example is None:
        model.signature = signature
        return
    from evtrack.models.enforcement import enforce_schema
    from evtrack.models.inference import infer_schema, infer_signature

    data, params = input_example.split_params(example)
    try:
        inputs = infer_signature(data, None, params)
    except Exception as exc:  # noqa: BLE001
        _log.warning("Failed to infer the model signature from the input example: %s", exc)
        return
    output = None
    if predict is not None:
        try:  # the model sees what PyFuncModel.predict will give it: the input made to fit the schema
            output = predict(enforce_schema(data, inputs.inputs) if inputs.inputs else data, params)
        except Exception as exc:  # noqa: BLE001 - the user's model; saving still goes on
            _log.warning(
                "Could not compute the model's output on the input example, so the signature has no outputs: %s", exc
            )
    try:
        outputs = infer_schema(output) if output is not None else None
    except Exception as exc:  # noqa: BLE001
        _log.warning("Failed to infer the output schema from the model's output: %s", exc)
        outputs = None
    model.signature = ModelSignature(inputs.inputs, outputs, inputs.params)


def finish(
    path: Path,
    model: Model,
    modules: set[str],
    flavor_packages: Sequence[str],
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Write requirements, environment files and ``MLmodel``; returns ``model``."""
    inferred = environment.infer_requirements(modules, flavor_packages)
    requirements = environment.resolve_requirements(inferred, pip_requirements, extra_pip_requirements)
    env = environment.write_environment(path, requirements)
    pyfunc_conf = model.flavors.get("python_function")
    if pyfunc_conf is not None:
        pyfunc_conf["env"] = env
    if metadata is not None:
        model.metadata = metadata
    model.model_size_bytes = directory_size(path)
    model.save(path / MLMODEL_FILE_NAME)
    return model
