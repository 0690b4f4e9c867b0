"""Signature inference from an input example and the model's output on it.

The rules are MLflow's: a pandas DataFrame (or Series, list of dicts, dict of
equal-length lists) gives column specs typed from the dtypes (``int32`` →
``integer``, ``int64`` → ``long``, ``float32`` → ``float``, ``float64`` →
``double``, strings → ``string``, bytes → ``binary``, datetimes → ``datetime``,
bools → ``boolean``), a column holding missing values is not ``required``; a
numpy array gives a tensor spec with a variable first dimension; a dict of
numpy arrays gives named tensor specs.

One deliberate difference: MLflow reads a dict of lists as one row of array
columns; evtrack reads it as a table (one column per key), which is what a
tabular model takes and what the scoring server's ``inputs`` form means.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.models.signature import ColSpec, ModelSignature, ParamSchema, ParamSpec, Schema, TensorSpec


def _numpy_type(dtype: Any) -> str:
    """The signature type of a numpy or pandas dtype."""
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind in "iu":
        if size < 4 or (kind == "i" and size == 4):
            return "integer"
        if size < 8 or (kind == "i" and size == 8):
            return "long"
    elif kind == "f":
        return "float" if size <= 4 else "double"
    elif kind == "U":
        return "string"
    elif kind == "S":
        return "binary"
    elif kind == "M":
        return "datetime"
    raise InvalidParameterError(f"Unsupported data type {dtype} (kind {kind!r}) in the input example")


def _python_type(values: list[Any]) -> str:
    """The signature type of a list of Python scalars (missing values skipped)."""
    import numpy as np

    present = [v for v in values if not _missing(v)]
    if not present:
        raise InvalidParameterError("Cannot infer the type of a column holding only missing values")
    kinds: set[str] = set()
    for v in present:
        if isinstance(v, (bool, np.bool_)):
            kinds.add("boolean")
        elif isinstance(v, (int, np.integer)):
            kinds.add("long")
        elif isinstance(v, (float, np.floating)):
            kinds.add("double")
        elif isinstance(v, str):
            kinds.add("string")
        elif isinstance(v, (bytes, bytearray)):
            kinds.add("binary")
        elif isinstance(v, (dt.datetime, dt.date, np.datetime64)):
            kinds.add("datetime")
        else:
            raise InvalidParameterError(f"Cannot infer a column type from a value of type {type(v).__name__}")
    if kinds == {"long", "double"}:
        return "double"
    if len(kinds) > 1:
        raise InvalidParameterError(f"A column of the input example mixes types {sorted(kinds)}")
    return kinds.pop()


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and v != v:
        return True
    try:
        import pandas as pd

        return v is pd.NA or v is pd.NaT
    except ImportError:  # pragma: no cover - pandas is there whenever a frame is
        return False


def _series_type(col: Any) -> str:
    import pandas as pd

    if getattr(col.values, "ndim", 1) > 1:
        raise InvalidParameterError(f"Column {col.name!r} is not one-dimensional")
    if pd.api.types.is_string_dtype(col.dtype) and col.dtype.kind != "O":
        return "string"  # pandas' StringDtype
    if col.dtype.kind == "O":
        return _python_type(col.tolist())
    return _numpy_type(col.dtype)


def _frame_schema(df: Any) -> Schema:
    specs = []
    for name in df.columns:
        col = df[name]
        if isinstance(col, type(df)):
            raise InvalidParameterError(f"The input example has duplicate column {name!r}")
        specs.append(ColSpec(_series_type(col), str(name), required=not col.isna().any()))
    return Schema(specs)


def _tensor_spec(arr: Any, name: str | None = None) -> TensorSpec:
    if arr.dtype.kind == "O":
        raise InvalidParameterError("Cannot infer a tensor spec from a numpy array of objects")
    dtype = {"U": "str", "S": "bytes"}.get(arr.dtype.kind, arr.dtype.name)  # sizes dropped, as MLflow
    return TensorSpec(dtype, (-1, *arr.shape[1:]), name)


def _is_scalar(v: Any) -> bool:
    import numpy as np

    return v is None or np.isscalar(v) or isinstance(v, (dt.datetime, dt.date))


def infer_schema(data: Any) -> Schema:
    """The schema of some model input or output (DataFrame, Series, ndarray, dict, list, scalar)."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return _frame_schema(data)
    if isinstance(data, pd.Series):
        name = None if data.name is None else str(data.name)
        return Schema([ColSpec(_series_type(data), name, required=not data.isna().any())])
    if isinstance(data, np.ndarray):
        return Schema([_tensor_spec(data)])
    if isinstance(data, dict):
        if not data:
            raise InvalidParameterError("Cannot infer a schema from an empty dict")
        values = list(data.values())
        if all(isinstance(v, np.ndarray) for v in values):
            return Schema([_tensor_spec(v, str(k)) for k, v in data.items()])
        if all(_is_scalar(v) for v in values):
            return _frame_schema(pd.DataFrame([data]))
        if all(isinstance(v, (list, tuple)) and all(_is_scalar(x) for x in v) for v in values):
            if len({len(v) for v in values}) != 1:
                raise InvalidParameterError("The lists of a dict input example differ in length")
            return _frame_schema(pd.DataFrame({k: list(v) for k, v in data.items()}))
        raise InvalidParameterError(
            "A dict input example must map names to scalars, to lists of scalars or to numpy arrays"
        )
    if isinstance(data, (list, tuple)):
        if not data:
            raise InvalidParameterError("Cannot infer a schema from an empty list")
        if all(isinstance(x, dict) for x in data):
            return _frame_schema(pd.DataFrame(list(data)))
        if all(_is_scalar(x) for x in data):
            return Schema([ColSpec(_python_type(list(data)), required=not any(_missing(x) for x in data))])
        return Schema([_tensor_spec(np.asarray(data))])
    if _is_scalar(data):
        return Schema([ColSpec(_python_type([data]))])
    raise InvalidParameterError(f"Cannot infer a schema from data of type {type(data).__name__}")


def _param_spec(name: str, value: Any) -> ParamSpec:
    if isinstance(value, (list, tuple)):
        return ParamSpec(name, _python_type(list(value)), list(value), (-1,))
    if isinstance(value, (dt.datetime, dt.date)):
        return ParamSpec(name, "datetime", value.isoformat())
    return ParamSpec(name, _python_type([value]), value)


def infer_signature(
    model_input: Any = None, model_output: Any = None, params: dict[str, Any] | None = None
) -> ModelSignature:
    """A signature from example input, output and params (each optional), as ``mlflow.models.infer_signature``."""
    inputs = infer_schema(model_input) if model_input is not None else None
    outputs = infer_schema(model_output) if model_output is not None else None
    param_schema = ParamSchema([_param_spec(k, v) for k, v in params.items()]) if params else None
    return ModelSignature(inputs, outputs, param_schema)
