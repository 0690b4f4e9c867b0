"""Events: the immutable facts appended to the log, and their JSON-lines codec.

Every user action becomes one event. On the wire an event is one JSON object per
line with the envelope ``{"v": 1, "eid": "<writer>-<seq>", "type": "...", "ts": <ms>}``
followed by its own fields. Types are extended, never repurposed; a new shape of
an existing type gets a new ``v``. Decoding goes through one registry and fails
loudly (``EventDecodeError``) on anything it does not know.

NaN and ±Infinity values of float fields (a metric's value) travel as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` because JSON has no literal for them
(orjson would write ``null``).
"""

from __future__ import annotations

import math
import time
import types
import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import orjson

from evtrack.errors import EventDecodeError

WIRE_VERSION = 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1  # every integer field is stored as int64


def now_ms() -> int:
    """The current time in epoch milliseconds: the clock of every event."""
    return int(time.time() * 1000)


_ENVELOPE = ("v", "eid", "type", "ts")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all events: a unique id (``<writer>-<seq>``) and a wall-clock time in ms."""

    type: ClassVar[str] = ""
    version: ClassVar[int] = WIRE_VERSION
    eid: str
    ts: int

    @property
    def order(self) -> tuple[int, str]:
        """The total order used to break ties between writers: (ts, eid)."""
        return (self.ts, self.eid)


_REGISTRY: dict[str, type[Event]] = {}
_FIELD_TYPES: dict[type[Event], tuple[tuple[str, tuple[type, ...], bool], ...]] = {}
# Per event type, for from_wire's fast path: (every allowed key, (field, exact types, optional)...).
_PLANS: dict[type[Event], tuple[frozenset[str], tuple[tuple[str, frozenset[type], bool], ...]]] = {}
_MISSING = object()
_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}  # every field, eid and ts first (field_values' order)
_BUILDERS: dict[str, Any] = {}  # wire type -> rebuild's constructor
_FLOAT_FIELDS: dict[type[Event], tuple[str, ...]] = {}  # fields whose non-finite values travel as strings


def _allowed(hint: Any) -> tuple[tuple[type, ...], bool]:
    """Turn a field's type hint into (accepted runtime types, optional?)."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    optional = type(None) in args
    accepted: list[type] = []
    for arg in args:
        origin = typing.get_origin(arg) or arg
        if origin is type(None):
            continue
        accepted.append(origin)
        if origin is float:
            accepted.append(int)
    return tuple(accepted), optional


def _builder(cls: type[Event]) -> Any:
    """``rebuild``'s constructor for ``cls``: a new object, each slot set by its own descriptor."""
    setters = tuple(getattr(cls, name).__set__ for name in _FIELD_NAMES[cls])  # the slots' own setters
    new = object.__new__

    def build(values: tuple) -> Event:
        event = new(cls)
        for set_field, value in zip(setters, values):
            set_field(event, value)
        return event

    return build


def register(cls: type[Event]) -> type[Event]:
    """Class decorator: add an event type to the decoding registry."""
    if cls.type in _REGISTRY:
        raise RuntimeError(f"event type {cls.type!r} registered twice")
    _REGISTRY[cls.type] = cls
    hints = typing.get_type_hints(cls)
    _FIELD_TYPES[cls] = tuple((f.name, *_allowed(hints[f.name])) for f in fields(cls) if f.name not in ("eid", "ts"))
    _PLANS[cls] = (
        frozenset(_ENVELOPE) | {name for name, _, _ in _FIELD_TYPES[cls]},
        tuple((name, frozenset(accepted), optional) for name, accepted, optional in _FIELD_TYPES[cls]),
    )
    _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    _BUILDERS[cls.type] = _builder(cls)
    _FLOAT_FIELDS[cls] = tuple(name for name, accepted, _ in _FIELD_TYPES[cls] if float in accepted)
    return cls


def event_types() -> dict[str, type[Event]]:
    """All registered event types by wire name."""
    return dict(_REGISTRY)


# --- experiments -------------------------------------------------------------


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentCreated(Event):
    """An experiment came into existence (its name was claimed in the catalog first)."""

    type: ClassVar[str] = "experiment_created"
    experiment_id: str
    name: str
    artifact_location: str
    tags: dict[str, str]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentRenamed(Event):
    """An experiment got a new name."""

    type: ClassVar[str] = "experiment_renamed"
    experiment_id: str
    name: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentDeleted(Event):
    """An experiment moved to the ``deleted`` lifecycle stage."""

    type: ClassVar[str] = "experiment_deleted"
    experiment_id: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentRestored(Event):
    """A deleted experiment came back to ``active``."""

    type: ClassVar[str] = "experiment_restored"
    experiment_id: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentTagSet(Event):
    """A tag on an experiment was set (last writer wins)."""

    type: ClassVar[str] = "experiment_tag_set"
    experiment_id: str
    key: str
    value: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentTagDeleted(Event):
    """A tag on an experiment was removed."""

    type: ClassVar[str] = "experiment_tag_deleted"
    experiment_id: str
    key: str


# --- runs --------------------------------------------------------------------


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RunCreated(Event):
    """A run started; its initial tags travel with it."""

    type: ClassVar[str] = "run_created"
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    start_time: int
    artifact_uri: str
    parent_run_id: str | None = None
    tags: dict[str, str]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RunUpdated(Event):
    """A run's status (with its end time) and/or its name changed."""

    type: ClassVar[str] = "run_updated"
    run_id: str
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RunDeleted(Event):
    """A run moved to the ``deleted`` lifecycle stage."""

    type: ClassVar[str] = "run_deleted"
    run_id: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RunRestored(Event):
    """A deleted run came back to ``active``."""

    type: ClassVar[str] = "run_restored"
    run_id: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ParamLogged(Event):
    """A parameter was logged; params are immutable (first value wins)."""

    type: ClassVar[str] = "param"
    run_id: str
    key: str
    value: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class MetricLogged(Event):
    """One point of a metric's history."""

    type: ClassVar[str] = "metric"
    run_id: str
    key: str
    value: float
    step: int
    timestamp: int


# A metric event as a read folds it: (run_id, key, value, step, timestamp). Readers hold the tail's
# points as these plain tuples: the garbage collector stops tracking a tuple of strings and numbers,
# while every event object stays tracked, and a server's full collections walked them all.
Point = tuple[str, str, float, int, int]


def as_point(e: MetricLogged) -> Point:
    """A metric event as a point."""
    return (e.run_id, e.key, e.value, e.step, e.timestamp)


def split_points(events: list[Event]) -> tuple[list[Point], list[Event]]:
    """The metric events as points, and the other events in their order."""
    points: list[Point] = []
    others: list[Event] = []
    for e in events:
        if e.__class__ is MetricLogged:
            points.append(as_point(e))  # type: ignore[arg-type]
        else:
            others.append(e)
    return points, others


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TagSet(Event):
    """A tag on a run was set (last writer wins)."""

    type: ClassVar[str] = "tag_set"
    run_id: str
    key: str
    value: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class TagDeleted(Event):
    """A tag on a run was removed."""

    type: ClassVar[str] = "tag_deleted"
    run_id: str
    key: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactLogged(Event):
    """A file was stored under the run's artifact root (path relative to it)."""

    type: ClassVar[str] = "artifact_logged"
    run_id: str
    path: str
    size: int
    digest: str  # "sha256:<hex>"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactDeleted(Event):
    """A file under the run's artifact root was deleted (one event per file, path relative to it)."""

    type: ClassVar[str] = "artifact_deleted"
    run_id: str
    path: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class InputLogged(Event):
    """A dataset was used by a run (MLflow's ``log_input``); schema and profile are JSON text."""

    type: ClassVar[str] = "input_logged"
    run_id: str
    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None
    context: str | None = None
    tags: dict[str, str]


# --- codec -------------------------------------------------------------------

_NONFINITE_OUT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
# How non-finite metric values travel in JSON (strings), and the floats they stand for.
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def wire_float(value: float) -> float | str:
    """A float as it travels in JSON: finite values as numbers, the others as strings."""
    if value - value == 0.0:  # finite
        return value
    return _NONFINITE_OUT[repr(value)]


def to_wire(event: Event) -> dict[str, Any]:
    """The JSON object of an event, envelope first."""
    cls = type(event)
    out: dict[str, Any] = {"v": cls.version, "eid": event.eid, "type": cls.type, "ts": event.ts}
    for name, _, _ in _FIELD_TYPES[cls]:
        out[name] = getattr(event, name)
    for name in _FLOAT_FIELDS[cls]:
        if out[name] is not None:
            out[name] = wire_float(out[name])
    return out


def encode(event: Event) -> bytes:
    """One JSON line (with the trailing newline) for an event."""
    return orjson.dumps(to_wire(event)) + b"\n"


def encode_metric_line(eid: str, ts: int, run_id: str, key: str, value: float, step: int, timestamp: int) -> bytes:
    """The JSON line of a metric event, built without an intermediate object (hot path)."""
    if value - value != 0.0:
        value = _NONFINITE_OUT[repr(value)]  # type: ignore[assignment]
    return (
        orjson.dumps(
            {
                "v": 1,
                "eid": eid,
                "type": "metric",
                "ts": ts,
                "run_id": run_id,
                "key": key,
                "value": value,
                "step": step,
                "timestamp": timestamp,
            }
        )
        + b"\n"
    )


def from_wire(obj: Any) -> Event:
    """Build an event from a decoded JSON object, checking envelope, type, version and field types."""
    if type(obj) is dict:
        etype = obj.get("type")
        cls = _REGISTRY.get(etype) if type(etype) is str else None
        if cls is not None:
            event = _well_typed(cls, obj)
            if event is not None:
                return event
    return _checked(obj)


def _well_typed(cls: type[Event], obj: dict) -> Event | None:
    """The event when every field has exactly a type JSON decoding gives it; None for ``_checked`` to judge."""
    allowed, plan = _PLANS[cls]
    if not obj.keys() <= allowed:
        return None
    version, eid, ts = obj.get("v"), obj.get("eid"), obj.get("ts")
    if type(version) is not int or version != cls.version or type(eid) is not str or not eid:
        return None
    if type(ts) is not int or not I64_MIN <= ts <= I64_MAX:
        return None
    kwargs: dict[str, Any] = {"eid": eid, "ts": ts}
    for name, accepted, optional in plan:
        value = obj.get(name, _MISSING)
        kind = type(value)
        if kind is str:
            if str not in accepted:
                return None
        elif value is _MISSING:
            if not optional:
                return None
            continue
        elif value is None:
            if not optional:
                return None
        elif kind not in accepted:
            return None  # bool, or a type the field does not take (a float field's NaN strings too)
        elif kind is int:
            if float in accepted:
                value = float(value)
            elif not I64_MIN <= value <= I64_MAX:
                return None
        elif kind is dict:
            for k, v in value.items():
                if type(k) is not str or type(v) is not str:
                    return None
        kwargs[name] = value
    return cls(**kwargs)


def _checked(obj: Any) -> Event:
    """``from_wire`` field by field, raising ``EventDecodeError`` that names what is wrong."""
    if not isinstance(obj, dict):
        raise EventDecodeError(f"event is not a JSON object: {type(obj).__name__}")
    etype = obj.get("type")
    cls = _REGISTRY.get(etype) if isinstance(etype, str) else None
    if cls is None:
        raise EventDecodeError(f"unknown event type {etype!r}")
    version = obj.get("v")
    if type(version) is not int or version != cls.version:  # not 1.0 nor true
        raise EventDecodeError(f"unknown version {version!r} of event type {etype!r} (known: {cls.version})")
    eid, ts = obj.get("eid"), obj.get("ts")
    if not isinstance(eid, str) or not eid:
        raise EventDecodeError(f"event {etype!r} has no valid 'eid'")
    if not isinstance(ts, int) or isinstance(ts, bool) or not I64_MIN <= ts <= I64_MAX:
        raise EventDecodeError(f"event {eid} has no valid 64-bit integer 'ts'")
    kwargs: dict[str, Any] = {"eid": eid, "ts": ts}
    for name, accepted, optional in _FIELD_TYPES[cls]:
        if name not in obj:
            if optional:
                continue
            raise EventDecodeError(f"event {eid} ({etype}) lacks field {name!r}")
        value = obj[name]
        if isinstance(value, str) and name in _FLOAT_FIELDS[cls]:
            if value not in NONFINITE:
                raise EventDecodeError(f"event {eid} has a non-numeric metric value {value!r}")
            value = NONFINITE[value]
        elif value is None:
            if not optional:
                raise EventDecodeError(f"event {eid} ({etype}) has a null {name!r}")
        elif isinstance(value, bool) or not isinstance(value, accepted):
            raise EventDecodeError(f"event {eid} ({etype}) field {name!r} has type {type(value).__name__}")
        elif isinstance(value, dict) and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise EventDecodeError(f"event {eid} ({etype}) field {name!r} must map strings to strings")
        if float in accepted and isinstance(value, int):
            value = float(value)
        elif isinstance(value, int) and not I64_MIN <= value <= I64_MAX:
            raise EventDecodeError(f"event {eid} ({etype}) field {name!r} is out of the 64-bit integer range")
        kwargs[name] = value
    unknown = obj.keys() - kwargs.keys() - set(_ENVELOPE) - {n for n, _, _ in _FIELD_TYPES[cls]}
    if unknown:
        raise EventDecodeError(f"event {eid} ({etype}) has unknown fields {sorted(unknown)}")
    return cls(**kwargs)


def field_values(event: Event) -> tuple:
    """The event's fields' values, in declaration order (``rebuild`` turns them back into the event)."""
    return tuple(getattr(event, name) for name in _FIELD_NAMES[type(event)])


def field_names(etype: str) -> tuple[str, ...]:
    """The fields of wire type ``etype`` in ``field_values``' order (``KeyError`` for an unknown type)."""
    return _FIELD_NAMES[_REGISTRY[etype]]


def rebuild(etype: str, values: tuple) -> Event:
    """The event of wire type ``etype`` with ``field_values`` ``values``, not checked again.

    For events decoded (and checked) elsewhere, e.g. in a compaction worker:
    about a third of the cost of decoding the line again, and half of the
    dataclass constructor, which sets frozen fields one ``object.__setattr__`` at a time.
    """
    return _BUILDERS[etype](values)


def decode_line(line: bytes | str) -> Event:
    """Decode one JSON line into an event; ``EventDecodeError`` when it is not a valid event."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"malformed JSON line: {exc}") from None
    return from_wire(obj)


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of a segment that could not be decoded, kept for quarantine."""

    segment: str
    line_no: int
    raw: bytes
    error: str


def decode_segment(data: bytes, segment: str = "") -> tuple[list[Event], list[BadLine]]:
    """Decode a JSON-lines segment; bad lines are returned apart, never dropped silently."""
    good: list[Event] = []
    bad: list[BadLine] = []
    for no, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            good.append(decode_line(line))
        except EventDecodeError as exc:
            bad.append(BadLine(segment, no, line, exc.message))
    return good, bad
