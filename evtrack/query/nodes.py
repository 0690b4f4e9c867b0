"""The typed AST of a search filter and order_by list, and MLflow's default orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Entity = Literal["metric", "param", "tag", "attribute", "dataset"]
Value = float | int | str | tuple[str, ...] | None

NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
NULL_OPS = ("IS NULL", "IS NOT NULL")
LIST_OPS = ("IN", "NOT IN")


@dataclass(frozen=True, slots=True)
class Comparison:
    """One ``entity.key op value`` clause; ``pos`` (offset in the source) is not part of equality.

    ``op`` is one of NUMERIC_OPS, STRING_OPS, NULL_OPS or LIST_OPS (upper case).  ``value`` is a
    float for metrics, an int (or float) for numeric attributes, a str for string comparisons,
    a tuple of str for IN / NOT IN, and None for IS NULL / IS NOT NULL.
    """

    entity: Entity
    key: str
    op: str
    value: Value
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One order_by item: sort on ``entity.key``, ascending or not."""

    entity: Entity
    key: str
    ascending: bool = True


def effective_run_order(order_by: Sequence[OrderBy]) -> list[OrderBy]:
    """The order runs are returned in, as MLflow's SQL store: ``order_by``, then start_time DESC
    (unless ``order_by`` sorts on start_time), then run_id ASC."""
    result = list(order_by)
    if not any(o.entity == "attribute" and o.key == "start_time" for o in result):
        result.append(OrderBy("attribute", "start_time", False))
    if not any(o.entity == "attribute" and o.key == "run_id" for o in result):
        result.append(OrderBy("attribute", "run_id", True))
    return result


def effective_experiment_order(order_by: Sequence[OrderBy]) -> list[OrderBy]:
    """MLflow's experiment order: ``order_by`` (default creation_time DESC, experiment_id ASC),
    then experiment_id DESC as tie-breaker when the list does not mention it."""
    result = list(order_by) or [
        OrderBy("attribute", "creation_time", False),
        OrderBy("attribute", "experiment_id", True),
    ]
    if not any(o.key == "experiment_id" for o in result):
        result.append(OrderBy("attribute", "experiment_id", False))
    return result
