"""Model signatures in MLflow's schema format: column specs, tensor specs and params.

A signature is stored in the ``MLmodel`` file as three JSON strings (``inputs``,
``outputs``, ``params``), exactly as MLflow writes them, e.g.::

    inputs: '[{"type": "double", "name": "a", "required": true}]'
    outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'

Plain Python only: numpy and pandas are needed to infer or enforce a signature
(:mod:`evtrack.models.inference`, :mod:`evtrack.models.enforcement`), not to read one.
Column types MLflow knows but evtrack does not enforce (``array``, ``object``,
``map``, ``any``) are kept as their JSON dict so a signature survives a round trip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from evtrack.errors import InvalidParameterError

DATA_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")
"""MLflow's scalar column types, by the names written in signatures."""

NUMPY_DTYPES = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}
"""The numpy dtype each scalar type converts to."""


def _check_type(type_: Any) -> Any:
    if isinstance(type_, str):
        if type_ not in DATA_TYPES:
            raise InvalidParameterError(f"Unsupported type {type_!r}; expected one of {list(DATA_TYPES)}")
        return type_
    if isinstance(type_, dict) and isinstance(type_.get("type"), str):
        return type_  # array / object / map / any: kept as written
    raise InvalidParameterError(f"Unsupported column type {type_!r}")


@dataclass(frozen=True)
class ColSpec:
    """One column: a scalar type name (``"double"``…), an optional name, required or not."""

    type: Any
    name: str | None = None
    required: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", _check_type(self.type))

    @property
    def is_scalar(self) -> bool:
        """True for the scalar types evtrack converts and enforces."""
        return isinstance(self.type, str)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object MLflow writes for this column."""
        out: dict[str, Any] = {"type": self.type} if self.is_scalar else dict(self.type)
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ColSpec":
        """Read one column spec; non-scalar types keep their extra keys."""
        extra = {k: v for k, v in d.items() if k not in ("name", "required")}
        type_ = d["type"] if d["type"] in DATA_TYPES else extra
        return cls(type_, d.get("name"), bool(d.get("required", True)))


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: a numpy dtype name, a shape (-1 for a variable dimension), an optional name."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", str(self.dtype))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object MLflow writes for this tensor."""
        spec = {"type": "tensor", "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)}}
        return spec if self.name is None else {"name": self.name, **spec}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TensorSpec":
        """Read one tensor spec."""
        spec = d["tensor-spec"]
        return cls(spec["dtype"], tuple(spec["shape"]), d.get("name"))


def _spec_from_dict(d: dict[str, Any]) -> ColSpec | TensorSpec:
    if not isinstance(d, dict) or "type" not in d:
        raise InvalidParameterError(f"Invalid schema entry {d!r}: expected an object with a 'type'")
    return TensorSpec.from_dict(d) if d["type"] == "tensor" else ColSpec.from_dict(d)


@dataclass(frozen=True)
class Schema:
    """An ordered list of column specs, or of tensor specs (never a mix)."""

    inputs: tuple[ColSpec | TensorSpec, ...]

    def __init__(self, inputs: list[ColSpec | TensorSpec] | tuple[ColSpec | TensorSpec, ...]) -> None:
        inputs = tuple(inputs)
        if not inputs:
            raise InvalidParameterError("A schema needs at least one column or tensor")
        kinds = {isinstance(s, TensorSpec) for s in inputs}
        if len(kinds) > 1:
            raise InvalidParameterError("A schema holds either column specs or tensor specs, not both")
        names = [s.name for s in inputs]
        if any(n is None for n in names) and any(n is not None for n in names):
            raise InvalidParameterError("Either every input of a schema is named, or none is")
        object.__setattr__(self, "inputs", inputs)

    def is_tensor_spec(self) -> bool:
        """True when the schema is made of tensor specs."""
        return isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        """True when the inputs are named."""
        return self.inputs[0].name is not None

    def input_names(self) -> list[str]:
        """The names of the inputs (empty when unnamed)."""
        return [s.name for s in self.inputs if s.name is not None]

    def required_input_names(self) -> list[str]:
        """The names of the inputs a model cannot do without."""
        return [s.name for s in self.inputs if s.name is not None and (isinstance(s, TensorSpec) or s.required)]

    def to_dict(self) -> list[dict[str, Any]]:
        """The list of JSON objects MLflow writes."""
        return [s.to_dict() for s in self.inputs]

    def to_json(self) -> str:
        """The JSON string stored in ``MLmodel``."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "Schema":
        """Read a schema from its JSON string."""
        return cls([_spec_from_dict(d) for d in json.loads(text)])


@dataclass(frozen=True)
class ParamSpec:
    """One inference parameter: name, scalar type, default value and shape (None or (-1,))."""

    name: str
    type: Any  # a scalar type name; MLflow's object types are kept as their JSON dict
    default: Any
    shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", _check_type(self.type))
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(self.shape))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object MLflow writes for this param."""
        out = {
            "name": self.name,
            "default": self.default,
            "shape": list(self.shape) if self.shape is not None else None,
        }
        return {**out, "type": self.type} if isinstance(self.type, str) else {**out, **self.type}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ParamSpec":
        """Read one param spec; non-scalar types keep their extra keys."""
        extra = {k: v for k, v in d.items() if k not in ("name", "default", "shape")}
        type_ = d["type"] if d["type"] in DATA_TYPES else extra
        return cls(d["name"], type_, d.get("default"), d.get("shape"))


@dataclass(frozen=True)
class ParamSchema:
    """The parameters a model's ``predict`` accepts, with their defaults."""

    params: tuple[ParamSpec, ...]

    def __init__(self, params: list[ParamSpec] | tuple[ParamSpec, ...]) -> None:
        object.__setattr__(self, "params", tuple(params))

    def to_json(self) -> str:
        """The JSON string stored in ``MLmodel``."""
        return json.dumps([p.to_dict() for p in self.params])

    @classmethod
    def from_json(cls, text: str) -> "ParamSchema":
        """Read a param schema from its JSON string."""
        return cls([ParamSpec.from_dict(d) for d in json.loads(text)])


@dataclass(frozen=True)
class ModelSignature:
    """What a model takes and returns: input schema, output schema, params schema."""

    inputs: Schema | None = None
    outputs: Schema | None = None
    params: ParamSchema | None = field(default=None)

    def to_dict(self) -> dict[str, str | None]:
        """The ``signature`` mapping of ``MLmodel``: three JSON strings (or None)."""
        return {
            "inputs": self.inputs.to_json() if self.inputs else None,
            "outputs": self.outputs.to_json() if self.outputs else None,
            "params": self.params.to_json() if self.params else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSignature":
        """Read the ``signature`` mapping of ``MLmodel``."""
        return cls(
            Schema.from_json(d["inputs"]) if d.get("inputs") else None,
            Schema.from_json(d["outputs"]) if d.get("outputs") else None,
            ParamSchema.from_json(d["params"]) if d.get("params") else None,
        )
