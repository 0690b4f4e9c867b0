"""The ``MLmodel`` file: what a model directory holds and how to load it, in MLflow's layout.

A model directory looks like MLflow's::

    MLmodel                      # this module: YAML, keys sorted as MLflow writes them
    model.pkl | python_model.pkl # the serialized model (the flavor decides)
    requirements.txt  python_env.yaml  conda.yaml
    input_example.json  serving_input_example.json   # when an example was given

``MLmodel`` keys: ``artifact_path`` and ``run_id`` (left out when null),
``flavors``, ``model_uuid``, ``utc_time_created``, ``mlflow_version`` (the MLflow
release whose format evtrack writes, so MLflow-aware tools accept the file),
``evtrack_version``, ``signature`` (three JSON strings), ``saved_input_example_info``,
``model_size_bytes``, ``metadata``. Keys evtrack does not know (written by MLflow)
are kept and written back.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evtrack.errors import InvalidParameterError, ResourceNotFoundError
from evtrack.models.signature import ModelSignature, ParamSchema, Schema

MLMODEL_FILE_NAME = "MLmodel"
MLFLOW_FORMAT_VERSION = "3.17.2"
"""The MLflow release whose ``MLmodel`` format evtrack writes (as ``mlflow_version``)."""

_KNOWN = (
    "artifact_path",
    "run_id",
    "flavors",
    "model_uuid",
    "utc_time_created",
    "mlflow_version",
    "evtrack_version",
    "signature",
    "saved_input_example_info",
    "model_size_bytes",
    "metadata",
)


def installed_evtrack_version() -> str:
    """The installed evtrack version."""
    from evtrack.version import __version__

    return __version__


def utc_now_text() -> str:
    """The creation time as MLflow writes it: ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC."""
    return str(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))


class Model:
    """The content of an ``MLmodel`` file."""

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | None = None,
        flavors: dict[str, dict[str, Any]] | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: dict[str, Any] | None = None,
        model_uuid: str | None = None,
        mlflow_version: str | None = MLFLOW_FORMAT_VERSION,
        evtrack_version: str | None = None,
        metadata: dict[str, Any] | None = None,
        model_size_bytes: int | None = None,
        **extra: Any,
    ) -> None:
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = utc_time_created or utc_now_text()
        self.flavors: dict[str, dict[str, Any]] = dict(flavors or {})
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.mlflow_version = mlflow_version
        self.evtrack_version = evtrack_version or installed_evtrack_version()
        self.metadata = metadata
        self.model_size_bytes = model_size_bytes
        self.extra = extra  # keys written by MLflow that evtrack keeps as they are

    # -- content ------------------------------------------------------------------------

    def add_flavor(self, name: str, **params: Any) -> "Model":
        """Record a flavor and its configuration; returns self."""
        self.flavors[name] = params
        return self

    def flavor(self, name: str) -> dict[str, Any]:
        """The configuration of a flavor; ``InvalidParameterError`` naming the flavors there are."""
        if name not in self.flavors:
            raise InvalidParameterError(f"Model does not have the {name!r} flavor (it has {sorted(self.flavors)})")
        return self.flavors[name]

    def get_input_schema(self) -> Schema | None:
        """The input schema of the signature, if any."""
        return self.signature.inputs if self.signature else None

    def get_output_schema(self) -> Schema | None:
        """The output schema of the signature, if any."""
        return self.signature.outputs if self.signature else None

    def get_params_schema(self) -> ParamSchema | None:
        """The params schema of the signature, if any."""
        return self.signature.params if self.signature else None

    def load_input_example(self, path: str | os.PathLike) -> Any:
        """The input example saved in the model directory ``path`` (None when there is none)."""
        from evtrack.models.input_example import load_example

        return load_example(path, self.saved_input_example_info)

    # -- (de)serialization ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The ``MLmodel`` mapping (null ``artifact_path``/``run_id`` and empty fields left out)."""
        out: dict[str, Any] = dict(self.extra)
        out.update({"flavors": self.flavors, "model_uuid": self.model_uuid, "utc_time_created": self.utc_time_created})
        optional = {
            "artifact_path": self.artifact_path,
            "run_id": self.run_id,
            "mlflow_version": self.mlflow_version,
            "evtrack_version": self.evtrack_version,
            "signature": self.signature.to_dict() if self.signature else None,
            "saved_input_example_info": self.saved_input_example_info,
            "model_size_bytes": self.model_size_bytes,
            "metadata": self.metadata,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    def get_tags_dict(self) -> dict[str, Any]:
        """The entry of this model in the run's ``mlflow.log-model.history`` tag, as MLflow's."""
        d = self.to_dict()
        out = {k: d[k] for k in ("run_id", "artifact_path", "utc_time_created", "model_uuid") if k in d}
        out["flavors"] = {name: {k: v for k, v in conf.items() if k != "config"} for name, conf in self.flavors.items()}
        return out

    def to_yaml(self) -> str:
        """The ``MLmodel`` text (keys sorted, block style: as MLflow writes it)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), default_flow_style=False)

    def save(self, path: str | os.PathLike) -> None:
        """Write the ``MLmodel`` file ``path``."""
        Path(path).write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Model":
        """A model from an ``MLmodel`` mapping (written by evtrack or MLflow)."""
        if not isinstance(d, dict) or not isinstance(d.get("flavors"), dict):
            raise InvalidParameterError("An MLmodel file must be a mapping with a 'flavors' mapping")
        known = {k: d.get(k) for k in _KNOWN}
        extra = {k: v for k, v in d.items() if k not in _KNOWN}
        signature = ModelSignature.from_dict(known["signature"]) if known["signature"] else None
        model = cls(
            artifact_path=known["artifact_path"],
            run_id=known["run_id"],
            utc_time_created=known["utc_time_created"],
            flavors=known["flavors"],
            signature=signature,
            saved_input_example_info=known["saved_input_example_info"],
            model_uuid=known["model_uuid"],
            mlflow_version=known["mlflow_version"],
            metadata=known["metadata"],
            model_size_bytes=known["model_size_bytes"],
            **extra,
        )
        model.evtrack_version = known["evtrack_version"]  # None for a model saved by MLflow
        return model

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Model":
        """Read a local ``MLmodel`` file, or the one in a local model directory."""
        import yaml

        p = Path(path)
        if p.is_dir():
            p = p / MLMODEL_FILE_NAME
        if not p.is_file():
            raise ResourceNotFoundError(f'Could not find an "{MLMODEL_FILE_NAME}" file at "{path}"')
        with open(p, encoding="utf-8") as fh:
            return cls.from_dict(yaml.safe_load(fh))


def directory_size(path: str | os.PathLike) -> int:
    """The total size in bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


@dataclass
class ModelInfo:
    """What ``log_model`` returns: where the model is and what it is, as MLflow's ``ModelInfo``."""

    artifact_path: str
    model_uri: str
    run_id: str | None
    flavors: dict[str, dict[str, Any]]
    model_uuid: str
    utc_time_created: str
    signature: ModelSignature | None = None
    saved_input_example_info: dict[str, Any] | None = None
    mlflow_version: str | None = None
    evtrack_version: str | None = None
    metadata: dict[str, Any] | None = None
    registered_model_version: int | None = None
    signature_dict: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_model(cls, model: Model, model_uri: str) -> "ModelInfo":
        """The info of a model just logged at ``model_uri``."""
        return cls(
            artifact_path=model.artifact_path or "",
            model_uri=model_uri,
            run_id=model.run_id,
            flavors=model.flavors,
            model_uuid=model.model_uuid,
            utc_time_created=model.utc_time_created,
            signature=model.signature,
            saved_input_example_info=model.saved_input_example_info,
            mlflow_version=model.mlflow_version,
            evtrack_version=model.evtrack_version,
            metadata=model.metadata,
            signature_dict=model.signature.to_dict() if model.signature else None,
        )
