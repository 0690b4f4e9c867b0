"""Datasets for ``evtrack.log_input``, with the constructors of ``mlflow.data``.

    ds = evtrack.data.from_path("s3://bucket/taxi/2021-01.parquet")      # or a local file/dir
    ds = evtrack.data.from_pandas(df, source="s3://bucket/taxi.csv", targets="duration")
    ds = evtrack.data.from_arrow(table, name="trips")
    ds = evtrack.data.from_numpy(X, targets=y)
    evtrack.log_input(ds, context="training")

Each dataset has a name, a content digest (see ``evtrack.data.digests`` for what is
hashed; large files get a *sampled* hash, marked as such in the profile), a source,
a schema in MLflow's column-spec form and a profile (rows, size, digest method).
pandas, pyarrow and numpy are imported only by the constructor that needs them.
"""

from __future__ import annotations

import os
from typing import Any

from evtrack.data.dataset import (
    ArrowDataset,
    Dataset,
    DatasetSource,
    FileDataset,
    NumpyDataset,
    PandasDataset,
    resolve_source,
)
from evtrack.errors import InvalidParameterError

__all__ = [
    "Dataset",
    "DatasetSource",
    "FileDataset",
    "PandasDataset",
    "ArrowDataset",
    "NumpyDataset",
    "from_path",
    "from_pandas",
    "from_arrow",
    "from_numpy",
]


def _default_name(uri: str) -> str:
    base = uri.rstrip("/").rsplit("/", 1)[-1]
    return base or uri


def from_path(path: str | os.PathLike, name: str | None = None, digest: str | None = None) -> FileDataset:
    """A dataset from a local file or directory, a ``file://`` URI, an S3 object or an S3 prefix.

    The digest covers the content (sampled for large data, see ``evtrack.data.digests``);
    CSV, TSV, JSON-lines and Parquet files also get a schema and a row count.
    """
    from evtrack.data.files import describe

    uri = os.fspath(path)
    if not uri:
        raise InvalidParameterError("from_path needs a path or URI")
    computed, schema, profile, canonical = describe(uri)
    source = resolve_source(canonical)
    return FileDataset(
        name=name or _default_name(canonical), digest=digest or computed, source=source, schema=schema, profile=profile
    )


def _check_column(columns: Any, column: str | None, what: str) -> None:
    if column is not None and column not in list(columns):
        raise InvalidParameterError(f"The dataset does not contain the specified {what} column '{column}'.")


def from_pandas(
    df: Any, source: Any = None, targets: str | None = None, name: str | None = None, digest: str | None = None
) -> PandasDataset:
    """A dataset over a pandas DataFrame (as ``mlflow.data.from_pandas``); ``source`` says where it
    was read from (a path or URI), else the running script is recorded as its source."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidParameterError(f"from_pandas needs a pandas DataFrame, got {type(df).__name__}")
    _check_column(df.columns, targets, "targets")
    from evtrack.data import digests

    schema, computed = _pandas_schema_and_digest(df)
    profile = {"num_rows": int(len(df)), "num_elements": int(df.size), "digest_method": digests.TABLE}
    return PandasDataset(
        df,
        name=name,
        digest=digest or computed,
        source=resolve_source(source),
        schema=schema,
        profile=profile,
        targets=targets,
    )


def _pandas_schema_and_digest(df: Any) -> tuple[dict[str, Any] | None, str]:
    import pyarrow as pa

    from evtrack.data import digests

    try:
        table = pa.Table.from_pandas(df, preserve_index=None)
    except (pa.ArrowException, TypeError, ValueError):
        import hashlib

        import pandas as pd

        h = hashlib.sha256(b"evtrack-pandas-v1\0")
        h.update(repr([(str(c), str(t)) for c, t in df.dtypes.items()]).encode())
        h.update(pd.util.hash_pandas_object(df.astype(str), index=True).values.tobytes())
        return None, digests.short(h)
    nulls = [bool(df[c].isna().any()) for c in df.columns]
    data_columns = table.schema.names[: len(df.columns)]
    schema = digests.colspec(pa.schema([table.schema.field(n) for n in data_columns]), lambda i: not nulls[i])
    return schema, digests.table_digest(table)


def from_arrow(
    table: Any, source: Any = None, targets: str | None = None, name: str | None = None, digest: str | None = None
) -> ArrowDataset:
    """A dataset over a pyarrow Table or RecordBatch."""
    import pyarrow as pa

    from evtrack.data import digests

    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise InvalidParameterError(f"from_arrow needs a pyarrow Table, got {type(table).__name__}")
    _check_column(table.column_names, targets, "targets")
    schema = digests.colspec(table.schema, lambda i: table.column(i).null_count == 0)
    profile = {
        "num_rows": table.num_rows,
        "num_elements": table.num_rows * table.num_columns,
        "digest_method": digests.TABLE,
    }
    return ArrowDataset(
        table,
        name=name,
        digest=digest or digests.table_digest(table),
        source=resolve_source(source),
        schema=schema,
        profile=profile,
        targets=targets,
    )


def from_numpy(
    features: Any, source: Any = None, targets: Any = None, name: str | None = None, digest: str | None = None
) -> NumpyDataset:
    """A dataset over a numpy array of features and optional targets (as ``mlflow.data.from_numpy``)."""
    import json

    import numpy as np

    from evtrack.data import digests

    features = np.asarray(features)
    target_array = np.asarray(targets) if targets is not None else None

    def spec(a: Any) -> str:
        return json.dumps([{"type": "tensor", "tensor-spec": {"dtype": str(a.dtype), "shape": [-1, *a.shape[1:]]}}])

    schema = {
        "mlflow_tensorspec": {
            "features": spec(features),
            "targets": spec(target_array) if target_array is not None else None,
        }
    }
    profile: dict[str, Any] = {
        "features_shape": list(features.shape),
        "features_size": int(features.size),
        "features_nbytes": int(features.nbytes),
        "digest_method": digests.ARRAY,
    }
    if target_array is not None:
        profile.update(
            targets_shape=list(target_array.shape),
            targets_size=int(target_array.size),
            targets_nbytes=int(target_array.nbytes),
        )
    return NumpyDataset(
        features,
        target_array,
        name=name,
        digest=digest or digests.array_digest(features, target_array),
        source=resolve_source(source),
        schema=schema,
        profile=profile,
    )
