"""Schema enforcement: make a model's input fit its signature, or say exactly what is wrong.

Column signatures: the input becomes a DataFrame (from a frame, Series, dict,
list of dicts, list or array), every required named column must be there (the
error names each missing one), extra columns are dropped, columns come in the
signature's order and are converted only when nothing is lost, as in MLflow:
object → string, a wider int or float of the same kind, (u)int → double when
every value is exactly representable, ints of 0/1 → float, any datetime
precision → ``datetime64[ns]``. Anything else (a float column for a ``long``, a
string column for a ``double``) fails naming the column.

Tensor signatures: shape (``-1`` matches any size) and dtype are checked; a
dtype that numpy casts safely is converted, and so are plain Python lists
(they carry no dtype: JSON numbers become the declared float or int width).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.models.signature import NUMPY_DTYPES, ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

_log = logging.getLogger(__name__)
_EXACT_FLOAT_INT = 2**53  # every integer of magnitude up to this is exact in a float64


class SchemaEnforcementError(InvalidParameterError):
    """A model input or parameter does not match the model's signature."""


# -- columns ----------------------------------------------------------------------------------


def _to_frame(data: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    try:
        if isinstance(data, dict):
            values = list(data.values())
            if values and all(np.isscalar(v) or v is None for v in values):
                return pd.DataFrame([data])
            return pd.DataFrame(
                {k: (v.tolist() if isinstance(v, np.ndarray) and v.ndim > 1 else v) for k, v in data.items()}
            )
        if isinstance(data, (list, tuple, np.ndarray)):
            return pd.DataFrame(list(data) if isinstance(data, tuple) else data)
        if np.isscalar(data):
            return pd.DataFrame([data])
    except (ValueError, TypeError) as exc:
        raise SchemaEnforcementError(
            f"This model has a column-based signature, which takes a DataFrame; the input could not "
            f"be turned into one: {exc}"
        ) from None
    raise SchemaEnforcementError(
        f"This model has a column-based signature, which takes a DataFrame; got {type(data).__name__}"
    )


def _incompatible(name: Any, have: Any, want: str, hint: str = "") -> SchemaEnforcementError:
    return SchemaEnforcementError(
        f"Incompatible input types for column {name!r}: cannot safely convert {have} to {want} "
        f"(the signature declares {want}).{hint}"
    )


def _numeric(name: Any, values: Any, type_: str) -> Any:
    import numpy as np

    target = np.dtype(NUMPY_DTYPES[type_])
    have = values.dtype
    if have == target:
        return values
    kind = getattr(have, "kind", "O")
    if kind == target.kind:
        safe = have.itemsize <= target.itemsize
    elif kind == "u" and target.kind == "i":
        safe = have.itemsize < target.itemsize
    elif kind in "iu" and target.kind == "f":
        # MLflow: small ints always, 0/1 always; evtrack also lets any int through when every
        # value is exact in a float64 (|v| <= 2**53) - nothing is lost, unlike a blind cast.
        limit = _EXACT_FLOAT_INT if target.itemsize == 8 else 2**24
        safe = (
            have.itemsize <= (6 if target.itemsize == 8 else 2)
            or bool(values.dropna().isin([0, 1]).all())
            or bool((values.dropna().abs() <= limit).all())
        )
    else:
        safe = False
    if safe:
        try:
            return values.astype(target)
        except (ValueError, TypeError):
            pass  # e.g. a nullable Int64 column holding NA: fall through to the error
    hint = ""
    if kind == "f" and target.kind in "iu" and values.hasnans:
        hint = (
            " Hint: integer columns cannot hold missing values, so pandas stores them as floats; "
            "declare the column as double, or infer the signature from data with missing values."
        )
    raise _incompatible(name, have, type_, hint)


def convert_column(name: Any, values: Any, spec: ColSpec) -> Any:
    """One column converted to its declared type (MLflow's safe conversions only)."""
    import pandas as pd

    type_ = spec.type
    if not spec.is_scalar:
        return values  # array / object / map / any: passed through
    if values.dtype == object and type_ not in ("string", "binary"):
        values = values.infer_objects()
    is_text = values.dtype == object or pd.api.types.is_string_dtype(values.dtype)
    if type_ in ("string", "binary"):
        if is_text or (type_ == "binary" and values.dtype.kind == "S"):
            return values
        raise _incompatible(name, values.dtype, type_)
    if type_ == "datetime":
        if values.dtype.kind == "M" or is_text:
            try:
                return values.astype("datetime64[ns]") if values.dtype.kind == "M" else pd.to_datetime(values)
            except (ValueError, TypeError) as exc:
                raise SchemaEnforcementError(
                    f"Failed to convert column {name!r} from type {values.dtype} to datetime: {exc}"
                ) from None
        raise _incompatible(name, values.dtype, type_)
    if type_ == "boolean" and values.dtype == object:
        return values  # keeps None as None rather than False, as MLflow does
    if values.dtype == object:
        raise _incompatible(name, "object (" + _value_types(values) + ")", type_)
    return _numeric(name, values, type_)


def _value_types(values: Any) -> str:
    return ", ".join(sorted({type(v).__name__ for v in values.tolist()})) or "empty"


def _enforce_columns(data: Any, schema: Schema) -> Any:
    import pandas as pd

    df = _to_frame(data)
    if schema.has_input_names():
        present = {str(c): c for c in df.columns}
        missing = [n for n in schema.required_input_names() if n not in present]
        if missing:
            listed = ", ".join(repr(n) for n in missing)
            word = "column" if len(missing) == 1 else "columns"
            raise SchemaEnforcementError(
                f"Model is missing input {word} {listed} required by its signature "
                f"(the input has columns {list(present)})."
            )
        out = {
            spec.name: convert_column(spec.name, df[present[spec.name]], spec)
            for spec in schema.inputs
            if spec.name in present
        }
        return pd.DataFrame(out, index=df.index)
    if len(df.columns) < len(schema.inputs):
        raise SchemaEnforcementError(
            f"Model is missing inputs: its signature declares {len(schema.inputs)} unnamed columns, "
            f"the input has {len(df.columns)}."
        )
    return pd.DataFrame(
        {c: convert_column(c, df[c], spec) for c, spec in zip(df.columns, schema.inputs)}, index=df.index
    )


# -- tensors ----------------------------------------------------------------------------------


def check_tensor(values: Any, spec: TensorSpec) -> Any:
    """A numpy array with the spec's shape and dtype (safely cast), else a clear error."""
    import numpy as np

    what = f"input {spec.name!r}" if spec.name else "input"
    arr = np.asarray(values)
    if not isinstance(values, np.ndarray) and spec.dtype != "object" and arr.dtype.kind in "biuf":
        arr = arr.astype(spec.dtype) if np.can_cast(arr.dtype, spec.dtype, "same_kind") else arr
    if spec.dtype != "object" and arr.dtype == object:
        try:
            arr = arr.astype(spec.dtype)
        except (ValueError, TypeError):
            raise SchemaEnforcementError(
                f"The {what} cannot be converted to a {spec.dtype} tensor of shape {spec.shape}"
            ) from None
    if len(arr.shape) != len(spec.shape) or any(want not in (-1, have) for want, have in zip(spec.shape, arr.shape)):
        raise SchemaEnforcementError(f"Shape of {what} {arr.shape} does not match expected shape {spec.shape}")
    want = np.dtype(spec.dtype)
    if arr.dtype == want or want == object:
        return arr
    if arr.dtype.kind == want.kind and want.kind in "USM" or np.can_cast(arr.dtype, want, "safe"):
        return arr.astype(want)
    raise SchemaEnforcementError(f"dtype of {what} {arr.dtype} does not match expected dtype {want}")


def _enforce_tensors(data: Any, schema: Schema) -> Any:
    import numpy as np
    import pandas as pd

    if not schema.has_input_names():
        spec = schema.inputs[0]
        if isinstance(data, pd.DataFrame):
            if data.empty:
                raise SchemaEnforcementError("Input DataFrame is empty.")
            if len(data.columns) == 1:
                col = data[data.columns[0]].tolist()
                arr = np.asarray(col if not isinstance(col[0], (list, np.ndarray)) else np.vstack(col))
                if arr.ndim == 1 and len(spec.shape) == 2:
                    arr = arr.reshape(-1, 1)
                return check_tensor(arr, spec)
            return check_tensor(data.to_numpy(), spec)
        if isinstance(data, dict):
            raise SchemaEnforcementError("This model takes one unnamed tensor, not a dict of inputs")
        return check_tensor(data, spec)
    if isinstance(data, pd.DataFrame):
        data = {
            c: (
                np.vstack(data[c].tolist())
                if len(data) and isinstance(data[c].iloc[0], (list, np.ndarray))
                else data[c].to_numpy()
            )
            for c in data.columns
        }
    if not isinstance(data, dict):
        if len(schema.inputs) == 1:
            data = {schema.inputs[0].name: data}
        else:
            raise SchemaEnforcementError(
                f"This model takes named tensors {schema.input_names()}: pass a dict or a DataFrame"
            )
    missing = [n for n in schema.input_names() if n not in data]
    if missing:
        raise SchemaEnforcementError(f"Model is missing inputs {missing} required by its signature.")
    return {spec.name: check_tensor(data[spec.name], spec) for spec in schema.inputs}


def enforce_schema(data: Any, schema: Schema) -> Any:
    """``data`` made to fit ``schema``: a DataFrame for column signatures, arrays for tensor ones."""
    if schema.is_tensor_spec():
        return _enforce_tensors(data, schema)
    return _enforce_columns(data, schema)


# -- params -----------------------------------------------------------------------------------


def _param_value(spec: ParamSpec, value: Any) -> Any:
    t = spec.type
    if not isinstance(t, str):
        return value  # MLflow's object params: passed through as given
    if t == "boolean" and isinstance(value, bool):
        return value
    if t in ("long", "integer") and isinstance(value, int) and not isinstance(value, bool):
        return value
    if t in ("double", "float") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if t in ("string", "binary") and isinstance(value, (str, bytes)):
        return value
    if t == "datetime":
        if isinstance(value, (dt.datetime, dt.date)):
            return value
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                pass
    raise SchemaEnforcementError(f"Failed to convert value {value!r} of param {spec.name!r} to its declared type {t}")


def enforce_params(params: dict[str, Any] | None, schema: ParamSchema | None) -> dict[str, Any] | None:
    """The params to pass to ``predict``: declared defaults overridden by valid given values."""
    if schema is None:
        if params:
            _log.warning("The model's signature declares no params; ignoring %s", sorted(params))
        return None
    out = {p.name: p.default for p in schema.params}
    specs = {p.name: p for p in schema.params}
    for key, value in (params or {}).items():
        spec = specs.get(key)
        if spec is None:
            _log.warning("Param %r is not in the model's signature and is ignored", key)
            continue
        if spec.shape is None:
            out[key] = _param_value(spec, value)
        elif isinstance(value, (list, tuple)):
            out[key] = [_param_value(spec, v) for v in value]
        else:
            raise SchemaEnforcementError(f"Param {key!r} takes a list of {spec.type} values, got {value!r}")
    return out
