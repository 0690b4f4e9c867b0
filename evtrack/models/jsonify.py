"""Model data as JSON: numpy and pandas values turned into plain Python, as MLflow's encoder does.

Arrays become lists, numpy scalars Python numbers, bytes base64 text, datetimes
ISO text, DataFrames ``records`` (or ``split`` when asked). Non-finite floats
are written as ``NaN`` / ``Infinity``, as Python's and MLflow's JSON do.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any


def jsonable(value: Any, pandas_orient: str = "records") -> Any:
    """``value`` made of dicts, lists, str, int, float, bool and None only."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v, pandas_orient) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, pandas_orient) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    module = type(value).__module__.split(".")[0]
    if module == "numpy":
        return _numpy(value, pandas_orient)
    if module == "pandas":
        return _pandas(value, pandas_orient)
    return value


def _numpy(value: Any, orient: str) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), orient)
    if isinstance(value, np.datetime64):
        return str(value)
    if isinstance(value, np.generic):
        return jsonable(value.item(), orient)
    return value


def _pandas(value: Any, orient: str) -> Any:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        if orient == "split":
            return {
                "columns": [str(c) for c in value.columns],
                "data": jsonable(value.to_numpy(dtype=object).tolist(), orient),
            }
        return jsonable(value.to_dict(orient=orient), orient)
    if isinstance(value, pd.Series):
        return _pandas(value.to_frame(), orient)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def dumps(value: Any, indent: int | None = None, pandas_orient: str = "records") -> str:
    """JSON text of ``value`` (see :func:`jsonable`)."""
    return json.dumps(jsonable(value, pandas_orient), indent=indent)
