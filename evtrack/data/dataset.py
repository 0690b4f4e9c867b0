"""``Dataset`` and ``DatasetSource``: what ``evtrack.log_input`` records, shaped like ``mlflow.data``.

A dataset has a name, a content digest, a source (its kind and URI), a schema
and a profile (row count, size, how the digest was computed). The data itself
is never uploaded: the run records where it came from and what it was.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from evtrack.entities import Dataset as DatasetEntity

CODE = "code"


@dataclass(frozen=True, slots=True)
class DatasetSource:
    """Where a dataset came from: a kind (``local``, ``s3``, ``http``, ``code``…) and a URI."""

    source_type: str
    uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The source as MLflow writes it: ``{"uri": …}`` (code sources name the entry script)."""
        if self.source_type == CODE:
            return {"tags": {"mlflow.source.name": self.uri or "<interactive>"}}
        return {"uri": self.uri}

    def to_json(self) -> str:
        """The source as JSON text (``Dataset.source`` of the recorded input)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def code_source() -> DatasetSource:
    """The source of data built in code: the script that built it."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    return DatasetSource(CODE, os.path.abspath(argv0) if argv0 and os.path.isfile(argv0) else argv0 or None)


def resolve_source(source: Any) -> DatasetSource:
    """A ``DatasetSource`` from what a user passed: None (code), a path or URI string, or a source."""
    if source is None:
        return code_source()
    if isinstance(source, DatasetSource):
        return source
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise TypeError(f"a dataset source must be a path or URI string, got {type(source).__name__}")
    scheme, sep, _ = source.partition("://")
    if sep and scheme.lower() == "file":
        return DatasetSource("local", source[len("file://") :])
    if sep and scheme.isascii() and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        kind = scheme.lower()
        return DatasetSource("http" if kind in ("http", "https") else kind, source)
    return DatasetSource("local", os.path.abspath(os.path.expanduser(source)))


class Dataset:
    """A dataset recorded with ``evtrack.log_input``: name, digest, source, schema, profile."""

    def __init__(
        self,
        name: str | None,
        digest: str,
        source: DatasetSource,
        schema: dict[str, Any] | None = None,
        profile: dict[str, Any] | None = None,
        targets: str | None = None,
    ) -> None:
        self._name = name
        self.digest = digest
        self.source = source
        self.schema = schema
        self.profile = profile
        self.targets = targets

    @property
    def name(self) -> str:
        """The dataset's name (``"dataset"`` when none was given, as in MLflow)."""
        return self._name if self._name else "dataset"

    @property
    def source_type(self) -> str:
        """The kind of the source (``local``, ``s3``, ``code``…)."""
        return self.source.source_type

    def to_dict(self) -> dict[str, str | None]:
        """MLflow's ``Dataset.to_dict``: name, digest, source, source_type, schema, profile."""
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source.to_json(),
            "source_type": self.source.source_type,
            "schema": json.dumps(self.schema) if self.schema is not None else None,
            "profile": json.dumps(self.profile) if self.profile is not None else None,
        }

    def to_json(self) -> str:
        """``to_dict`` as JSON text."""
        return json.dumps(self.to_dict())

    def to_entity(self) -> DatasetEntity:
        """The entity a run records (``evtrack.entities.Dataset``)."""
        d = self.to_dict()
        return DatasetEntity(
            d["name"],
            d["digest"],
            d["source_type"],
            d["source"],  # type: ignore[arg-type]
            d["schema"],
            d["profile"],
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, digest={self.digest!r}, "
            f"source={self.source.uri!r} [{self.source.source_type}])"
        )


class FileDataset(Dataset):
    """A dataset read from a file, a directory, an S3 object or an S3 prefix."""

    @property
    def path(self) -> str | None:
        """The path or URI the dataset was read from."""
        return self.source.uri


class PandasDataset(Dataset):
    """A dataset over a pandas DataFrame (``.df``), as ``mlflow.data.pandas_dataset.PandasDataset``."""

    def __init__(self, df: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.df = df


class ArrowDataset(Dataset):
    """A dataset over a pyarrow Table (``.table``)."""

    def __init__(self, table: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table


class NumpyDataset(Dataset):
    """A dataset over numpy arrays (``.features`` and optional ``.targets_array``)."""

    def __init__(self, features: Any, targets_array: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.features = features
        self.targets_array = targets_array
