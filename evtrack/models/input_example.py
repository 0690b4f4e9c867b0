"""Input examples: ``input_example.json`` and ``serving_input_example.json`` in a model directory.

As MLflow writes them: a DataFrame is stored in pandas' ``split`` orient
(``{"columns": [...], "data": [[...]]}``, type ``dataframe``), a numpy array (or a
dict of arrays) as nested lists (type ``ndarray``), anything else JSON-able as is
(type ``json_object``). The serving file holds the request body that the scoring
server accepts for the same data: ``{"dataframe_split": …}`` or ``{"inputs": …}``,
plus ``"params"`` when the example is a ``(data, params)`` tuple. The ``MLmodel``
file records where they are in ``saved_input_example_info``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.models import jsonify

EXAMPLE_FILENAME = "input_example.json"
SERVING_EXAMPLE_FILENAME = "serving_input_example.json"


def split_params(example: Any) -> tuple[Any, dict[str, Any] | None]:
    """``(data, params)`` of an example given as data or as a ``(data, params)`` tuple."""
    if isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], dict):
        return example[0], example[1]
    return example, None


def _encode(data: Any) -> tuple[str, Any, dict[str, Any]]:
    """(example type, JSON-able stored form, serving request body) of the data."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        split = jsonify.jsonable(data, pandas_orient="split")
        return "dataframe", split, {"dataframe_split": split}
    if isinstance(data, np.ndarray) or (
        isinstance(data, dict) and data and all(isinstance(v, np.ndarray) for v in data.values())
    ):
        stored = jsonify.jsonable(data)
        return "ndarray", stored, {"inputs": stored}
    if isinstance(data, (dict, list, str, int, float, bool)):
        stored = jsonify.jsonable(data)
        return "json_object", stored, {"inputs": stored}
    raise InvalidParameterError(
        "An input example must be a pandas DataFrame or Series, a numpy array, a dict of numpy arrays, "
        f"a dict, a list or a scalar; got {type(data).__name__}"
    )


def save_example(model_dir: str | os.PathLike, example: Any) -> dict[str, Any]:
    """Write the example files into ``model_dir``; returns ``saved_input_example_info``."""
    data, params = split_params(example)
    kind, stored, serving = _encode(data)
    info: dict[str, Any] = {"artifact_path": EXAMPLE_FILENAME, "type": kind}
    if kind == "dataframe":
        info["pandas_orient"] = "split"
    if params:
        stored = {"inputs": stored, "params": jsonify.jsonable(params)}
        serving = {**serving, "params": jsonify.jsonable(params)}
        info["params"] = "true"  # MLflow's marker for a (data, params) example
    with open(os.path.join(model_dir, EXAMPLE_FILENAME), "w", encoding="utf-8") as fh:
        json.dump(stored, fh)
    with open(os.path.join(model_dir, SERVING_EXAMPLE_FILENAME), "w", encoding="utf-8") as fh:
        json.dump(serving, fh, indent=2)
    info["serving_input_path"] = SERVING_EXAMPLE_FILENAME
    return info


def load_example(model_dir: str | os.PathLike, info: dict[str, Any] | None) -> Any:
    """The saved example as the data it was (DataFrame, ndarray, dict, list…), or None."""
    if not info:
        return None
    with open(os.path.join(model_dir, info.get("artifact_path", EXAMPLE_FILENAME)), encoding="utf-8") as fh:
        stored = json.load(fh)
    if info.get("params") == "true" and isinstance(stored, dict) and "inputs" in stored:
        stored = stored["inputs"]
    kind = info.get("type")
    if kind == "dataframe":
        import pandas as pd

        if info.get("pandas_orient", "split") == "records":
            return pd.DataFrame.from_records(stored)
        return pd.DataFrame(data=stored["data"], columns=stored.get("columns"), index=stored.get("index"))
    if kind == "ndarray":
        import numpy as np

        if isinstance(stored, dict):
            return {k: np.asarray(v) for k, v in stored.items()}
        return np.asarray(stored)
    return stored


def load_serving_example(model_dir: str | os.PathLike, info: dict[str, Any] | None) -> str | None:
    """The text of the saved scoring request body, or None."""
    path = (info or {}).get("serving_input_path")
    if not path or not os.path.exists(os.path.join(model_dir, path)):
        return None
    with open(os.path.join(model_dir, path), encoding="utf-8") as fh:
        return fh.read()
