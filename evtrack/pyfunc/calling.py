"""How a model's predict function is called: how many inputs it takes, whether it takes ``params``."""

from __future__ import annotations

import inspect
from typing import Any


def positional_count(fn: Any) -> int:
    """The number of positional parameters of ``fn`` (1 when it cannot be inspected)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def accepts_params(fn: Any) -> bool:
    """True when ``fn`` takes a ``params`` keyword (or ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "params" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
