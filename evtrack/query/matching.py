"""Evaluating parsed filters and order_by lists in Python, with MLflow's semantics.

For stores that filter in memory (and for tests of the SQL renderings): LIKE is
case-sensitive, ILIKE is not, a missing key never matches (not even ``!=``), and
sorting puts missing values last in both directions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from evtrack.query.nodes import NULL_OPS, Comparison, OrderBy, Value, effective_experiment_order


@functools.lru_cache(maxsize=512)
def like_to_regex(pattern: str, case_sensitive: bool = True) -> re.Pattern[str]:
    """A regex that matches a whole string iff SQL ``LIKE pattern`` does.

    ``%`` is any run of characters, ``_`` exactly one, everything else literal
    (no escape character); ``case_sensitive=False`` gives ILIKE.
    """
    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.compile(rf"\A(?:{body})\Z", flags)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "LIKE": lambda a, b: like_to_regex(b, True).match(a) is not None,
    "ILIKE": lambda a, b: like_to_regex(b, False).match(a) is not None,
    "IN": lambda a, b: a in b,
    "NOT IN": lambda a, b: a not in b,
}


def evaluate_comparison(op: str, lhs: Any, value: Value) -> bool:
    """MLflow's semantics for ``lhs op value``; a missing (None) ``lhs`` matches only IS NULL."""
    if op in NULL_OPS:
        return (lhs is None) == (op == "IS NULL")
    if lhs is None:
        return False
    return _COMPARE[op](lhs, value)


def match_experiment(
    filter: Sequence[Comparison],
    name: str,
    creation_time: int | None,
    last_update_time: int | None,
    tags: Mapping[str, str],
) -> bool:
    """Whether an experiment satisfies every comparison of a parsed experiment filter."""
    attributes = {"name": name, "creation_time": creation_time, "last_update_time": last_update_time}
    for c in filter:
        lhs = attributes[c.key] if c.entity == "attribute" else tags.get(c.key)
        if not evaluate_comparison(c.op, lhs, c.value):
            return False
    return True


@functools.total_ordering
class _SortValue:
    """A sort key part: ascending or descending, with None last in both directions."""

    __slots__ = ("value", "ascending")

    def __init__(self, value: Any, ascending: bool) -> None:
        self.value, self.ascending = value, ascending

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SortValue) and self.value == other.value

    def __lt__(self, other: _SortValue) -> bool:
        if self.value is None or other.value is None:
            return self.value is not None and other.value is None
        return self.value < other.value if self.ascending else other.value < self.value

    __hash__ = None  # type: ignore[assignment]


def _experiment_id_key(experiment_id: str) -> tuple[int, int | str]:
    return (0, int(experiment_id)) if experiment_id.isdigit() else (1, experiment_id)


def experiment_sort_key(order_by: Sequence[OrderBy] | None = None) -> Callable[[Any], tuple]:
    """A ``sorted`` key for objects with experiment_id, name, creation_time and last_update_time
    (e.g. ``evtrack.entities.Experiment``), following ``effective_experiment_order(order_by)``.

    Numeric experiment ids sort numerically (as MLflow's SQL store does), before any others.
    """
    order = effective_experiment_order(order_by or ())

    def key(experiment: Any) -> tuple:
        parts = []
        for o in order:
            value = getattr(experiment, o.key)
            if o.key == "experiment_id" and value is not None:
                value = _experiment_id_key(str(value))
            parts.append(_SortValue(value, o.ascending))
        return tuple(parts)

    return key
