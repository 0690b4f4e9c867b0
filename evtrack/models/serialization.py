"""Pickling model objects while noting every module the pickle refers to.

The modules a pickle names are the modules loading it will import, so they are
what the model needs installed: ``dump`` returns their top-level names and
:mod:`evtrack.models.environment` turns them into pinned pip requirements. One
pass does both: the pickler's ``reducer_override`` hook sees every object that
is not a plain int, float, str, bytes, list, tuple, dict or set.
"""

from __future__ import annotations

import pickle
import types
from typing import Any

from evtrack.errors import InvalidParameterError

PICKLE = "pickle"
CLOUDPICKLE = "cloudpickle"
FORMATS = (PICKLE, CLOUDPICKLE)


def _module_of(obj: Any) -> str | None:
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    elif isinstance(obj, type) or isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
        name = getattr(obj, "__module__", None)
    else:
        name = type(obj).__module__
    return name.split(".")[0] if isinstance(name, str) and name else None


def _pickler_class(fmt: str) -> type:
    if fmt == PICKLE:
        return pickle.Pickler
    if fmt == CLOUDPICKLE:
        try:
            import cloudpickle
        except ImportError:
            raise InvalidParameterError(
                'Saving with cloudpickle needs the cloudpickle package: pip install "evtrack[models]"'
            ) from None
        return cloudpickle.Pickler
    raise InvalidParameterError(f"Unrecognized serialization format {fmt!r}; expected one of {list(FORMATS)}")


def dump(obj: Any, path: str, fmt: str = PICKLE) -> set[str]:
    """Serialize ``obj`` into the file ``path``; returns the top-level modules the pickle refers to."""
    base = _pickler_class(fmt)
    seen: set[str] = set()

    class RecordingPickler(base):  # type: ignore[misc, valid-type]
        def reducer_override(self, o: Any) -> Any:
            module = _module_of(o)
            if module:
                seen.add(module)
            parent = getattr(super(), "reducer_override", None)
            return parent(o) if parent is not None else NotImplemented

    with open(path, "wb") as fh:
        RecordingPickler(fh, protocol=pickle.DEFAULT_PROTOCOL).dump(obj)
    if fmt == CLOUDPICKLE:
        seen.add("cloudpickle")
    return seen


def load(path: str, fmt: str = PICKLE) -> Any:
    """Deserialize the object in ``path`` (only load models you trust: unpickling runs code)."""
    if fmt not in FORMATS:
        raise InvalidParameterError(f"Unrecognized serialization format {fmt!r}; expected one of {list(FORMATS)}")
    with open(path, "rb") as fh:
        return pickle.load(fh)
