"""Scoring requests and responses, in the contract of MLflow's scoring server.

A JSON request body is an object with exactly one of::

    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}   # pandas split orient
    {"dataframe_records": [{"a": 1, "b": 2}, ...]}                  # pandas records orient
    {"instances": [...]}                                              # TF-serving rows
    {"inputs": [...] or {"a": [...], ...}}                            # TF-serving columns / tensors

plus optional ``"params"``; a ``text/csv`` body is a table with a header row.
Values are cast towards the signature's types where JSON cannot say them
(``float`` columns, base64 ``binary``, tensor dtypes); enforcement then checks
them and names the column that does not fit. The answer is
``{"predictions": ...}`` (arrays as lists, frames as records).
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from evtrack.errors import EvtrackError, InvalidParameterError
from evtrack.models import jsonify
from evtrack.models.signature import NUMPY_DTYPES, Schema

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
CONTENT_TYPES = (CONTENT_TYPE_JSON, CONTENT_TYPE_CSV)
INPUT_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_FORMAT_HELP = f"The input must be a JSON object with exactly one of the input fields {list(INPUT_FORMATS)}"


class ScoringInputError(InvalidParameterError):
    """A scoring request body cannot be read (bad JSON, bad CSV, wrong input fields)."""

    error_code = "BAD_REQUEST"


class UnsupportedContentTypeError(EvtrackError):
    """A scoring request has a content type (or charset) the server does not take."""

    error_code = "BAD_REQUEST"


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header; refuses other charsets than UTF-8 and unknown parameters."""
    parts = [p.strip() for p in (content_type or "").split(";")]
    mime = parts[0].lower()
    for part in parts[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() != "charset":
            raise UnsupportedContentTypeError(f"Unrecognized content type parameter: {key.strip()}")
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedContentTypeError("The scoring server only supports UTF-8")
    if mime not in CONTENT_TYPES:
        raise UnsupportedContentTypeError(
            f"This predictor only supports the following content types: {list(CONTENT_TYPES)}. Got {content_type!r}."
        )
    return mime


# -- casting towards the signature ----------------------------------------------------------


def _cast_numeric(values: Any, type_: str) -> Any:
    import numpy as np

    target = np.dtype(NUMPY_DTYPES[type_])
    kind = values.dtype.kind
    if kind not in "iuf" or values.dtype == target:
        return values  # strings, objects, bools: left for enforcement to judge
    present = values.dropna()
    if target.kind == "i":
        if values.hasnans or not (present == present.round()).all():
            return values  # never truncate 1.5 to 1; enforcement names the column
        info = np.iinfo(target)
        if len(present) and (present.min() < info.min or present.max() > info.max):
            return values
    return values.astype(target)


def cast_frame(df: Any, schema: Schema | None) -> Any:
    """A request's DataFrame with columns cast to the signature's types where that is lossless."""
    if schema is None or schema.is_tensor_spec():
        return df
    pairs = (
        [(s.name, s) for s in schema.inputs if s.name in df.columns]
        if schema.has_input_names()
        else list(zip(df.columns, schema.inputs))
    )
    for name, spec in pairs:
        if not spec.is_scalar:
            continue
        col = df[name]
        if spec.type == "binary":
            try:
                df[name] = col.map(lambda v: base64.b64decode(v) if isinstance(v, str) else v)
            except ValueError as exc:
                raise ScoringInputError(f"Column {name!r} must hold base64 text for binary values: {exc}") from None
        elif spec.type in ("integer", "long", "float", "double"):
            df[name] = _cast_numeric(col, spec.type)
    return df


def _tensor_inputs(data: Any, schema: Schema | None) -> Any:
    """Lists as numpy arrays (with the signature's dtype when there is one)."""
    import numpy as np

    specs = {s.name: s for s in schema.inputs} if schema is not None and schema.is_tensor_spec() else {}

    def arr(value: Any, name: str | None) -> Any:
        spec = specs.get(name) or (schema.inputs[0] if specs and not schema.has_input_names() else None)
        try:
            return np.asarray(value, dtype=spec.dtype if spec is not None and spec.dtype != "object" else None)
        except (ValueError, TypeError) as exc:
            what = f"input {name!r}" if name else "the input"
            raise ScoringInputError(f"Cannot read {what} as a {spec.dtype if spec else ''} tensor: {exc}") from None

    if isinstance(data, dict):
        return {k: arr(v, k) for k, v in data.items()}
    return arr(data, None)


def _frame(build: Any, what: str) -> Any:
    try:
        return build()
    except (ValueError, TypeError) as exc:
        raise ScoringInputError(f"Provided {what} field is not a valid dataframe representation: {exc}") from None


def _table_or_tensor(data: Any, schema: Schema | None, key: str) -> Any:
    import numpy as np
    import pandas as pd

    columns = schema is not None and not schema.is_tensor_spec()
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        if columns or schema is None:
            return cast_frame(_frame(lambda: pd.DataFrame.from_records(data), key), schema)
        data = {k: [row.get(k) for row in data] for k in data[0]}  # rows of named tensors → columns
    if columns and isinstance(data, dict):
        values = list(data.values())
        if values and all(np.isscalar(v) or v is None for v in values):
            return cast_frame(pd.DataFrame([data]), schema)
        return cast_frame(_frame(lambda: pd.DataFrame(data), key), schema)
    if columns and isinstance(data, list):
        names = schema.input_names()
        if len(schema.inputs) == 1 and names and all(np.isscalar(x) or x is None for x in data):
            return cast_frame(pd.DataFrame({names[0]: data}), schema)  # a list of values of the one column
        return cast_frame(_frame(lambda: pd.DataFrame(data), key), schema)
    return _tensor_inputs(data, schema)


def parse_json_request(body: bytes | str | dict[str, Any], schema: Schema | None) -> tuple[Any, dict[str, Any] | None]:
    """``(model input, params)`` of a JSON scoring request."""
    import pandas as pd

    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ScoringInputError(f"Ensure that input is a valid JSON formatted string. Error: {exc}") from None
    if not isinstance(body, dict):
        raise ScoringInputError(f"{_FORMAT_HELP}. Received a {type(body).__name__}.")
    keys = [k for k in INPUT_FORMATS if k in body]
    unknown = sorted(set(body) - set(INPUT_FORMATS) - {"params"})
    if len(keys) != 1 or unknown:
        raise ScoringInputError(f"{_FORMAT_HELP}. Received input fields: {list(body)}.")
    params = body.get("params")
    if params is not None and not isinstance(params, dict):
        raise ScoringInputError("'params' must be a JSON object of parameter name to value")
    key = keys[0]
    data = body[key]
    if key == "dataframe_split":
        if not isinstance(data, dict) or "data" not in data or set(data) - {"columns", "data", "index"}:
            raise ScoringInputError(
                "Dataframe split format must be an object with a 'data' field and "
                "optionally 'columns' and 'index' fields."
            )
        df = _frame(lambda: pd.DataFrame(data=data["data"], columns=data.get("columns"), index=data.get("index")), key)
        return cast_frame(df, schema), params
    if key == "dataframe_records":
        if not isinstance(data, list):
            raise ScoringInputError(f"Dataframe records format must be a list of records, got a {type(data).__name__}.")
        return cast_frame(_frame(lambda: pd.DataFrame.from_records(data), key), schema), params
    return _table_or_tensor(data, schema, key), params


def parse_csv_request(body: bytes | str, schema: Schema | None) -> Any:
    """The DataFrame of a CSV scoring request (header row first)."""
    import pandas as pd

    text = body.decode("utf-8") if isinstance(body, bytes) else body
    dtypes = {}
    if schema is not None and schema.has_input_names() and not schema.is_tensor_spec():
        dtypes = {s.name: str for s in schema.inputs if s.is_scalar and s.type in ("string", "binary")}
    try:
        df = pd.read_csv(io.StringIO(text), dtype=dtypes or None)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ScoringInputError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted "
            f"Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: {exc}"
        ) from None
    return cast_frame(df, schema)


def parse_request(
    body: bytes | str, content_type: str | None, schema: Schema | None
) -> tuple[Any, dict[str, Any] | None]:
    """``(model input, params)`` of a request body with its Content-Type header."""
    mime = media_type(content_type)
    if mime == CONTENT_TYPE_CSV:
        return parse_csv_request(body, schema), None
    return parse_json_request(body, schema)


def predictions_json(predictions: Any) -> str:
    """The response body: ``{"predictions": ...}``."""
    return json.dumps({"predictions": jsonify.jsonable(predictions, pandas_orient="records")})
