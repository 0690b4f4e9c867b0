"""State domains: what a feature adds to the folded state beside runs and experiments.

The core folds runs and experiments itself. A feature with state of its own (the model
registry) describes it once with a :class:`Domain` and registers it when its package is
imported (``evtrack/__init__`` imports every feature, so any process that uses evtrack
has them all): its events, its part of :class:`~evtrack.state.fold.State`, its tables
(single-partition, like the experiment tables) and the DuckDB views over them. The
compactor, the reader and the query engine then handle it like the built-in state,
without importing the feature. Its fold rules are ``@apply.register`` handlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    import pyarrow as pa

# The folded ``evtrack.state.fold.State`` (its module imports this one, so the hooks below
# name it only here, not by import).
FoldedState = Any

Columns = list[tuple[str, str, bool]]  # (name, type, nullable)


@dataclass(frozen=True)
class Domain:
    """A feature's own state: its events, its part of ``State``, its tables and views."""

    name: str  # the key of its part in ``State.parts``
    event_base: type  # every event of the domain is an instance of it
    new_part: Callable[[], Any]  # an empty part
    columns: Mapping[str, Columns]  # its tables, in order
    to_tables: Callable[[FoldedState], dict[str, "pa.Table"]]  # its part -> its tables
    load: Callable[[dict[str, "pa.Table"], FoldedState], Any]  # any subset of its tables -> its part
    views: tuple[str, ...] = ()  # SQL creating its DuckDB views over ``base_<table>``

    @property
    def tables(self) -> tuple[str, ...]:
        """Its table names."""
        return tuple(self.columns)


_DOMAINS: dict[str, Domain] = {}
_BY_CLASS: dict[type, Domain | None] = {}
_listeners: list[Callable[[Domain], None]] = []


def register_domain(domain: Domain) -> Domain:
    """Add a domain (once per name); the core modules that keep per-table data learn of it."""
    if domain.name in _DOMAINS:
        raise RuntimeError(f"state domain {domain.name!r} registered twice")
    _DOMAINS[domain.name] = domain
    _BY_CLASS.clear()
    for listener in _listeners:
        listener(domain)
    return domain


def on_register(listener: Callable[[Domain], None]) -> None:
    """Call ``listener`` for every domain, registered already or later."""
    _listeners.append(listener)
    for domain in _DOMAINS.values():
        listener(domain)


def domains() -> tuple[Domain, ...]:
    """Every registered domain, in registration order."""
    return tuple(_DOMAINS.values())


def domain(name: str) -> Domain:
    """The domain of that name."""
    return _DOMAINS[name]


def domain_of(event: object) -> Domain | None:
    """The domain an event belongs to (None: runs and experiments)."""
    cls = type(event)
    try:
        return _BY_CLASS[cls]
    except KeyError:
        found = next((d for d in _DOMAINS.values() if isinstance(event, d.event_base)), None)
        _BY_CLASS[cls] = found
        return found


def new_parts() -> dict[str, Any]:
    """An empty part of every domain, by name (a new ``State``'s ``parts``)."""
    return {name: d.new_part() for name, d in _DOMAINS.items()}
